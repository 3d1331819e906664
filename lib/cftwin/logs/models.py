"""The gateway logs table: what the data plane writes for every request, and what the logs API reads.

Every write goes through this module so that the per-gateway row count (``log_counts``, see
``cftwin.logs.counts``) stays exact. This module is the service's one door: other services reach the logs
only through the names it exports, so it re-exports what ``ids`` (log ids, timestamps), ``rows`` (``LogRow``,
the fields each read shows) and ``queries`` (the reads) hold.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from cftwin.accounts import FREE_LOGS_PER_ACCOUNT, account_profile
from cftwin.db import Database
from cftwin.gateways.models import get_gateway
from cftwin.logs.counts import add_count, count_logs
from cftwin.logs.ids import format_timestamp, new_log_id, parse_timestamp, ulid_at
from cftwin.logs.queries import get_log, get_log_body, list_logs, log_stats
from cftwin.logs.rows import (
    COLUMNS,
    DETAIL_FIELDS,
    HEAD_LIMIT,
    LIST_FIELDS,
    ORDER_COLUMNS,
    ROW_FIELDS,
    LogRow,
    created_at_of,
    encode_metadata,
    order_clause,
    to_record,
)

__all__ = [
    "DEFAULT_LOG_CAP",
    "DETAIL_FIELDS",
    "HEAD_LIMIT",
    "LIST_FIELDS",
    "ORDER_COLUMNS",
    "LogRow",
    "count_logs",
    "delete_gateway_logs",
    "delete_logs",
    "format_timestamp",
    "get_log",
    "get_log_body",
    "insert_log",
    "insert_log_tuples",
    "insert_logs",
    "last_log_seq",
    "list_logs",
    "log_stats",
    "logs_after",
    "new_log_id",
    "parse_timestamp",
    "ulid_at",
    "update_log",
]


#: Stored logs per gateway when the gateway sets no ``log_management`` (Cloudflare's paid-plan limit).
# ASSUMPTION: without ``log_management`` the plan limit (10 million per gateway) applies, with STOP_INSERTING.
DEFAULT_LOG_CAP: Final = 10_000_000

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS logs (
        seq                    INTEGER PRIMARY KEY,
        id                     TEXT NOT NULL UNIQUE,
        account_id             TEXT NOT NULL,
        gateway_id             TEXT NOT NULL,
        created_at             TEXT NOT NULL,
        provider               TEXT NOT NULL,
        model                  TEXT NOT NULL,
        model_type             TEXT,
        path                   TEXT NOT NULL,
        duration               INTEGER NOT NULL,
        success                INTEGER NOT NULL,
        cached                 INTEGER NOT NULL,
        status_code            INTEGER,
        tokens_in              INTEGER,
        tokens_out             INTEGER,
        cost                   REAL,
        custom_cost            INTEGER NOT NULL DEFAULT 0,
        metadata               TEXT,
        event_id               TEXT,
        step                   INTEGER,
        request_content_type   TEXT,
        response_content_type  TEXT,
        request_type           TEXT,
        request_body           TEXT,
        response_body          TEXT,
        request_head           TEXT,
        request_head_complete  INTEGER,
        request_size           INTEGER,
        response_head          TEXT,
        response_head_complete INTEGER,
        response_size          INTEGER,
        feedback               REAL,
        score                  REAL,
        user_agent             TEXT,
        authentication         INTEGER,
        wholesale              INTEGER,
        compatibility_mode     INTEGER,
        dlp_action             TEXT
    );
    CREATE INDEX IF NOT EXISTS logs_by_time ON logs (account_id, gateway_id, created_at, id);
    CREATE INDEX IF NOT EXISTS logs_by_provider ON logs (account_id, gateway_id, provider, created_at);
    CREATE INDEX IF NOT EXISTS logs_by_model ON logs (account_id, gateway_id, model, created_at);
    CREATE TABLE IF NOT EXISTS log_counts (
        account_id TEXT NOT NULL,
        gateway_id TEXT NOT NULL,
        stored     INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        PRIMARY KEY (account_id, gateway_id)
    ) WITHOUT ROWID;
    """


# --- writes -------------------------------------------------------------------------------------

Strategy = Literal["STOP_INSERTING", "DELETE_OLDEST"]


def _log_limit(db: Database, account_id: str, gateway_id: str) -> tuple[int, Strategy, bool]:
    """The gateway's cap, its strategy, and whether (free plan) the whole account's logs count against a cap too
    (``_store`` reads how many the account holds in its transaction).

    Legacy Logs storage (limits.mdx): paid, 10 million per gateway; free, 100,000 across the account's
    gateways. ``log_management`` lowers the gateway's own cap. An account on Logs powered by Workers
    Observability has no such caps (ASSUMPTION: Workers Logs' own daily limits are not emulated).
    """
    profile = account_profile(db, account_id)
    if profile.log_system == "observability":
        return 2**62, "STOP_INSERTING", False
    free = profile.plan == "free"
    plan_cap = FREE_LOGS_PER_ACCOUNT if free else DEFAULT_LOG_CAP
    gateway = get_gateway(db, account_id, gateway_id)
    if gateway is None:
        return plan_cap, "STOP_INSERTING", free
    cap = gateway.get("log_management")
    strategy = gateway.get("log_management_strategy")
    # ASSUMPTION: a cap without a strategy stops inserting (the default is not documented).
    chosen: Strategy = "DELETE_OLDEST" if strategy == "DELETE_OLDEST" else "STOP_INSERTING"
    if not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
        return plan_cap, chosen, free
    return min(cap, plan_cap), chosen, free


def insert_logs(db: Database, account_id: str, gateway_id: str, rows: Iterable[LogRow]) -> int:
    """Store ``rows`` for the gateway in one transaction; how many were stored. Rows without an
    ``id`` get one (set on the row).

    The gateway's ``log_management`` applies: with ``STOP_INSERTING`` the rows past the cap are
    dropped; with ``DELETE_OLDEST`` the gateway's oldest logs make room (and of a batch larger than
    the cap only its newest rows are kept).
    """
    records = [to_record(account_id, gateway_id, row) for row in rows]
    return _store(db, account_id, gateway_id, COLUMNS, records)


def insert_log_tuples(
    db: Database, account_id: str, gateway_id: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> int:
    """The bulk path (seeding): ``records`` hold ``columns`` of ``logs`` (not ``account_id``/``gateway_id``),
    already in stored form (``created_at`` from ``format_timestamp``, booleans as 0/1, metadata as JSON
    text). Binding only the columns given keeps 100,000 rows to about a second. Same rules as ``insert_logs``.
    """
    unknown = set(columns) - set(ROW_FIELDS)
    if unknown or not {"id", "created_at", "provider", "model", "path", "duration", "success", "cached"} <= set(
        columns
    ):
        raise ValueError(f"bad log columns: {sorted(unknown) or list(columns)}")
    full = ("account_id", "gateway_id", *columns)
    return _store(db, account_id, gateway_id, full, [(account_id, gateway_id, *r) for r in records])


def _store(
    db: Database, account_id: str, gateway_id: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> int:
    if not records:
        return 0
    cap, strategy, account_wide = _log_limit(db, account_id, gateway_id)
    created_index = columns.index("created_at")
    id_index = columns.index("id")
    # Only logs and their counts change: the token, gateway and secret reads of the next requests stay kept.
    with db.transaction(touches=("logs", "log_counts")) as conn:
        if account_wide:
            # The free plan's account-wide room counts as a lower cap for this gateway: what it already holds
            # plus what the account may still store. One read gives both counts.
            found = conn.execute(
                "SELECT COALESCE(SUM(CASE WHEN gateway_id = ? THEN stored END), 0), COALESCE(SUM(stored), 0) "
                "FROM log_counts WHERE account_id = ?", (gateway_id, account_id)
            ).fetchone()
            stored = int(found[0])
            cap = min(cap, stored + max(0, FREE_LOGS_PER_ACCOUNT - int(found[1])))
        else:
            found = conn.execute(
                "SELECT stored FROM log_counts WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id)
            ).fetchone()
            stored = int(found[0]) if found is not None else 0
        deleted = 0
        if cap <= 0:
            records = []
        elif stored + len(records) > cap:
            if strategy == "STOP_INSERTING":
                records = records[: max(0, cap - stored)]
            else:
                if len(records) > cap:
                    records = sorted(records, key=lambda r: (r[created_index], r[id_index]))[-cap:]
                excess = stored + len(records) - cap
                if excess > 0:
                    deleted = conn.execute(
                        "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE account_id = ? AND gateway_id = ? "
                        "ORDER BY created_at, id LIMIT ?)",
                        (account_id, gateway_id, excess),
                    ).rowcount
        if records:
            _insert(db, conn, columns, records)
        if records or deleted:
            add_count(db, conn, account_id, gateway_id, len(records) - deleted)
    return len(records)


class _InsertPlan:
    """The INSERTs for records of ``columns``: each names only the columns the record gives a value, besides
    those that may not be left out. A column left out is stored as the NULL a None would bind, and a data-plane
    row leaves half its columns NULL: binding only the others halves SQLite's cost per row."""

    def __init__(self, columns: Sequence[str], omittable: frozenset[str]) -> None:
        self.columns = tuple(columns)
        self.optional = tuple(i for i, name in enumerate(columns) if name in omittable)
        self._optional_values: Callable[[tuple[Any, ...]], Any] = (
            operator.itemgetter(*self.optional) if self.optional else (lambda record: ()))
        self._statements: dict[tuple[bool, ...], tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {}

    def key(self, record: tuple[Any, ...]) -> tuple[bool, ...]:
        """Which optional columns ``record`` gives a value."""
        values = self._optional_values(record)
        if len(self.optional) == 1:
            values = (values,)
        return tuple(map(operator.is_not, values, itertools.repeat(None)))

    def statement(self, key: tuple[bool, ...]) -> tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]]:
        """The INSERT for records of ``key``, and what picks their bound values out of a record."""
        found = self._statements.get(key)
        if found is None:
            left_out = {i for i, given in zip(self.optional, key, strict=True) if not given}
            kept = [i for i in range(len(self.columns)) if i not in left_out]
            names = ", ".join(self.columns[i] for i in kept)
            sql = f"INSERT INTO logs ({names}) VALUES ({', '.join('?' for _ in kept)})"
            pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
                operator.itemgetter(*kept) if len(kept) > 1 else (lambda record: tuple(record[i] for i in kept)))
            found = self._statements[key] = (sql, pick)
        return found


def _insert_plan(db: Database, columns: Sequence[str]) -> _InsertPlan:
    plans: dict[tuple[str, ...], _InsertPlan] = db.memo.setdefault("logs.insert_plans", {})
    plan = plans.get(tuple(columns))
    if plan is None:
        # Only a nullable column whose default is NULL may be left out: leaving out custom_cost would store its
        # default 0, and a NOT NULL column's None must still be refused.
        info = db.query("PRAGMA table_info(logs)")
        omittable = frozenset(r["name"] for r in info if not r["notnull"] and r["dflt_value"] is None and not r["pk"])
        plan = plans[tuple(columns)] = _InsertPlan(columns, omittable)
    return plan


def _insert(db: Database, conn: Any, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
    """Insert ``records`` in their order (their ``seq`` order), a run of records alike in one statement."""
    plan = _insert_plan(db, columns)
    keys = [plan.key(record) for record in records]
    start = 0
    while start < len(records):
        end = start + 1
        while end < len(records) and keys[end] == keys[start]:
            end += 1
        sql, pick = plan.statement(keys[start])
        conn.executemany(sql, map(pick, records[start:end]))
        start = end


def insert_log(db: Database, account_id: str, gateway_id: str, row: LogRow) -> str:
    """Store one log; its id (the ``cf-aig-log-id``), made here when ``row.id`` is ``None``.

    The id is returned even when ``log_management`` dropped the row (Cloudflare still names the request).
    """
    if row.id is None:
        row.id = new_log_id(None if row.created_at is None else created_at_of(row))
    insert_logs(db, account_id, gateway_id, [row])
    return row.id


def delete_logs(
    db: Database,
    account_id: str,
    gateway_id: str,
    where: str = "",
    params: Sequence[Any] = (),
    *,
    order_by: str = "created_at",
    descending: bool = False,
    limit: int | None = None,
) -> int:
    """Delete the gateway's logs matching ``where`` (a SQL condition over ``logs`` from ``filters``),
    the first ``limit`` of them in the given order; how many were deleted."""
    order = order_clause(order_by, descending)
    condition = f" AND ({where})" if where else ""
    limit_sql = " LIMIT ?" if limit is not None else ""
    args: list[Any] = [account_id, gateway_id, *params]
    if limit is not None:
        args.append(limit)
    with db.transaction() as conn:
        deleted = conn.execute(
            "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE account_id = ? AND gateway_id = ?"
            f"{condition} ORDER BY {order}{limit_sql})",
            args,
        ).rowcount
        if deleted:
            add_count(db, conn, account_id, gateway_id, -deleted)
    return int(deleted)


def delete_gateway_logs(db: Database, account_id: str, gateway_id: str) -> int:
    """Every log of the gateway (for when the gateway itself is deleted); how many."""
    with db.transaction() as conn:
        deleted = conn.execute(
            "DELETE FROM logs WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id)
        ).rowcount
        conn.execute("DELETE FROM log_counts WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id))
    return int(deleted)


_EDITABLE: Final = frozenset({"feedback", "score", "metadata"})


def update_log(db: Database, account_id: str, gateway_id: str, log_id: str, changes: Mapping[str, Any]) -> bool:
    """Set ``feedback``, ``score`` and/or ``metadata`` (replacing it; ``None`` clears) on one log.

    False when the log does not exist.
    """
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise ValueError(f"cannot edit log fields {sorted(unknown)}")
    values = dict(changes)
    if "metadata" in values:
        values["metadata"] = encode_metadata(values["metadata"])
    with db.transaction() as conn:
        found = conn.execute(
            "SELECT seq FROM logs WHERE account_id = ? AND gateway_id = ? AND id = ?", (account_id, gateway_id, log_id)
        ).fetchone()
        if found is None:
            return False
        if values:
            assignments = ", ".join(f"{name} = ?" for name in values)
            conn.execute(f"UPDATE logs SET {assignments} WHERE seq = ?", (*values.values(), found[0]))
            add_count(db, conn, account_id, gateway_id, 0)
    return True


# --- export (Logpush) ---------------------------------------------------------------------------

#: What an export reads of a log.
EXPORT_COLUMNS: Final = ("seq", "gateway_id", "created_at", "provider", "model", "path", "duration", "cached",
                         "status_code", "cost", "metadata", "request_body", "response_body")


def last_log_seq(db: Database, account_id: str) -> int:
    """The insertion number of the account's newest log (0 with none): where an export starts."""
    row = db.query_one("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE account_id = ?", (account_id,))
    return int(row[0]) if row is not None else 0


def logs_after(db: Database, account_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
    """The account's logs stored after insertion number ``seq``, oldest first, at most ``limit``."""
    rows = db.query(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM logs WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (account_id, seq, limit),
    )
    return [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in rows]
