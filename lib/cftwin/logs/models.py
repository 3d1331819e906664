"""The gateway logs table: what the data plane writes for every request, and what the logs API reads.

Every write goes through this module so that the per-gateway row count (``log_counts``) stays exact:
``log_management`` is enforced from it without a ``COUNT(*)``, and a page of the logs API answers
``total_count`` without scanning the table. The count row also carries a ``version`` that changes on
every write; query results that are costly to compute (filtered counts, min/max stats) are cached in
the process against it.

Timestamps are stored as fixed-width RFC 3339 UTC strings with microseconds
(``2026-07-01T12:00:00.000000Z``), so that string order is time order.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cftwin import jsonbody
from cftwin.accounts import FREE_LOGS_PER_ACCOUNT, account_profile
from cftwin.db import Database
from cftwin.gateways.models import get_gateway

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

#: What a log keeps of a payload in ``request_head`` / ``response_head``.
# ASSUMPTION: Cloudflare does not document the head's length; the twin keeps the first 4,096 characters.
HEAD_LIMIT: Final = 4096
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


# --- ids and timestamps -------------------------------------------------------------------------

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two Crockford characters: a ULID is 13 table look-ups, not 26 divisions.
_PAIRS: Final = tuple(_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024))


def ulid_at(ms: int, randomness: int) -> str:
    """The ULID for millisecond ``ms`` (Unix epoch) and 80 bits of ``randomness``: 26 Crockford characters."""
    t = ms & 0xFFFF_FFFF_FFFF  # 48 bits in 10 characters (50 bits, the top two zero)
    r = randomness & ((1 << 80) - 1)  # 80 bits in 16 characters
    p = _PAIRS
    return (
        p[t >> 40] + p[(t >> 30) & 1023] + p[(t >> 20) & 1023] + p[(t >> 10) & 1023] + p[t & 1023]
        + p[r >> 70] + p[(r >> 60) & 1023] + p[(r >> 50) & 1023] + p[(r >> 40) & 1023]
        + p[(r >> 30) & 1023] + p[(r >> 20) & 1023] + p[(r >> 10) & 1023] + p[r & 1023]
    )


class _MonotonicUlid:
    """ULIDs that sort in the order they were made, even within one millisecond (the ULID spec's rule)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self, ms: int | None = None) -> str:
        with self._lock:
            now = time.time_ns() // 1_000_000 if ms is None else ms
            if now == self._last_ms or (ms is None and now < self._last_ms):
                now = self._last_ms
                randomness = self._last_random + 1
                if randomness >= 1 << 80:
                    now += 1
                    randomness = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                # One bit short of 80, so that many ids in one millisecond cannot overflow the field.
                randomness = int.from_bytes(os.urandom(10), "big") >> 1
            if now >= self._last_ms:
                self._last_ms, self._last_random = now, randomness
            return ulid_at(now, randomness)


_ULIDS: Final = _MonotonicUlid()


def new_log_id(created_at: datetime | None = None) -> str:
    """A new log id (a ULID, as Cloudflare's ``cf-aig-log-id``), monotonic within a millisecond."""
    return _ULIDS.new(None if created_at is None else int(created_at.timestamp() * 1000))


def format_timestamp(value: datetime) -> str:
    """``value`` as stored and returned: RFC 3339 UTC, microseconds, fixed width."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        v = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}."
        f"{v.microsecond:06d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 date-time (or date); naive values are UTC. ``ValueError`` when it is not one."""
    s = text.strip()
    if not s or len(s) > 64:
        raise ValueError("not a date-time")
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    parsed = datetime.fromisoformat(s)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- the row ------------------------------------------------------------------------------------


@dataclass
class LogRow:
    """One gateway log, as the data plane (or the seeder) hands it over.

    ``id`` and ``created_at`` are made at insert time when left ``None``. ``metadata`` is the
    ``cf-aig-metadata`` object (a mapping, or its JSON text); it is stored and returned as JSON text.
    Heads and sizes default from the bodies.
    """

    provider: str
    model: str
    path: str
    duration: int = 0
    success: bool = True
    cached: bool = False
    status_code: int | None = 200
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = 0.0
    custom_cost: bool = False
    model_type: str | None = None
    metadata: Mapping[str, str | int | float | bool] | str | None = None
    event_id: str | None = None
    step: int | None = 0
    request_content_type: str | None = None
    response_content_type: str | None = None
    request_type: str | None = None
    request_body: str | bytes | None = None
    response_body: str | bytes | None = None
    request_head: str | None = None
    request_head_complete: bool | None = None
    request_size: int | None = None
    response_head: str | None = None
    response_head_complete: bool | None = None
    response_size: int | None = None
    feedback: float | None = None
    score: float | None = None
    user_agent: str | None = None
    authentication: bool | None = None
    wholesale: bool | None = None
    compatibility_mode: bool | None = None
    dlp_action: str | None = None
    id: str | None = None
    created_at: datetime | str | None = None


_ROW_FIELDS: Final = tuple(f.name for f in fields(LogRow))
_COLUMNS: Final = ("account_id", "gateway_id", *_ROW_FIELDS)

#: The fields of a list item (as the SDK's ``LogListResponse``): no payloads.
LIST_FIELDS: Final = (
    "id",
    "created_at",
    "provider",
    "model",
    "model_type",
    "path",
    "duration",
    "success",
    "cached",
    "status_code",
    "tokens_in",
    "tokens_out",
    "cost",
    "custom_cost",
    "metadata",
    "request_content_type",
    "response_content_type",
    "request_type",
    "step",
)
#: The fields of ``GET .../logs/{id}`` (``LogGetResponse``).
DETAIL_FIELDS: Final = (
    *LIST_FIELDS,
    "request_head",
    "request_head_complete",
    "request_size",
    "response_head",
    "response_head_complete",
    "response_size",
)
_BOOL_FIELDS: Final = frozenset({"success", "cached", "custom_cost", "request_head_complete", "response_head_complete"})

#: ``order_by`` name -> column.
ORDER_COLUMNS: Final[Mapping[str, str]] = {
    "created_at": "created_at",
    "provider": "provider",
    "model": "model",
    "model_type": "model_type",
    "success": "success",
    "cached": "cached",
    "cost": "cost",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
    "duration": "duration",
    "feedback": "feedback",
}


def _text(body: str | bytes | None) -> str | None:
    if body is None or isinstance(body, str):
        return body
    return body.decode("utf-8", errors="replace")


def _encode_metadata(metadata: Mapping[str, Any] | str | None) -> str | None:
    if metadata is None:
        return None
    if isinstance(metadata, str):
        try:
            parsed = jsonbody.loads(metadata)
        except ValueError:
            raise ValueError("metadata must be a JSON object") from None
        metadata = parsed
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata must be a JSON object")
    return json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _created(row: LogRow) -> datetime:
    created = row.created_at
    if created is None:
        return datetime.now(UTC)
    if isinstance(created, str):
        return parse_timestamp(created)
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def _record(account_id: str, gateway_id: str, row: LogRow) -> tuple[Any, ...]:
    created_dt = _created(row)
    if row.id is None:
        # Written back, so that the caller knows the ids of the rows it handed over.
        row.id = new_log_id(created_dt)
    request_body = _text(row.request_body)
    response_body = _text(row.response_body)
    values: dict[str, Any] = {
        "account_id": account_id,
        "gateway_id": gateway_id,
        **{name: getattr(row, name) for name in _ROW_FIELDS},
        "created_at": format_timestamp(created_dt),
        "metadata": _encode_metadata(row.metadata),
        "request_body": request_body,
        "response_body": response_body,
    }
    for prefix, body in (("request", request_body), ("response", response_body)):
        if values[f"{prefix}_head"] is None and body is not None:
            values[f"{prefix}_head"] = body[:HEAD_LIMIT]
            if values[f"{prefix}_head_complete"] is None:
                values[f"{prefix}_head_complete"] = len(body) <= HEAD_LIMIT
        if values[f"{prefix}_size"] is None and body is not None:
            values[f"{prefix}_size"] = len(body.encode("utf-8"))
    return tuple(values[c] for c in _COLUMNS)


# --- counts, versions, caches -------------------------------------------------------------------

_CACHE_LIMIT: Final = 512


def _cache_for(db: Database) -> dict[tuple[Any, ...], tuple[int, Any]]:
    cache: dict[tuple[Any, ...], tuple[int, Any]] = db.memo.setdefault("logs.queries", {})
    return cache


def _counts(db: Database, account_id: str, gateway_id: str) -> tuple[int, int]:
    row = db.query_one(
        "SELECT stored, version FROM log_counts WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id)
    )
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def _add_count(db: Database, conn: Any, account_id: str, gateway_id: str, delta: int) -> None:
    conn.execute(
        "INSERT INTO log_counts (account_id, gateway_id, stored, version) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (account_id, gateway_id) DO UPDATE SET stored = stored + excluded.stored, "
        "version = excluded.version",
        (account_id, gateway_id, delta, db.next_version()),
    )


def count_logs(db: Database, account_id: str, gateway_id: str) -> int:
    """How many logs the gateway holds (from the maintained count, not a scan)."""
    return _counts(db, account_id, gateway_id)[0]


# --- writes -------------------------------------------------------------------------------------

Strategy = Literal["STOP_INSERTING", "DELETE_OLDEST"]


def _log_limit(db: Database, account_id: str, gateway_id: str) -> tuple[int, Strategy, int | None]:
    """The gateway's cap, its strategy, and (free plan) how many logs the whole account may still store.

    Legacy Logs storage (limits.mdx): paid, 10 million per gateway; free, 100,000 across the account's
    gateways. ``log_management`` lowers the gateway's own cap. An account on Logs powered by Workers
    Observability has no such caps (ASSUMPTION: Workers Logs' own daily limits are not emulated).
    """
    profile = account_profile(db, account_id)
    if profile.log_system == "observability":
        return 2**62, "STOP_INSERTING", None
    free = profile.plan == "free"
    plan_cap = FREE_LOGS_PER_ACCOUNT if free else DEFAULT_LOG_CAP
    account_room: int | None = None
    if free:
        row = db.query_one("SELECT COALESCE(SUM(stored), 0) FROM log_counts WHERE account_id = ?", (account_id,))
        account_room = max(0, FREE_LOGS_PER_ACCOUNT - int(row[0] if row is not None else 0))
    gateway = get_gateway(db, account_id, gateway_id)
    if gateway is None:
        return plan_cap, "STOP_INSERTING", account_room
    cap = gateway.get("log_management")
    strategy = gateway.get("log_management_strategy")
    # ASSUMPTION: a cap without a strategy stops inserting (the default is not documented).
    chosen: Strategy = "DELETE_OLDEST" if strategy == "DELETE_OLDEST" else "STOP_INSERTING"
    if not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
        return plan_cap, chosen, account_room
    return min(cap, plan_cap), chosen, account_room


def insert_logs(db: Database, account_id: str, gateway_id: str, rows: Iterable[LogRow]) -> int:
    """Store ``rows`` for the gateway in one transaction; how many were stored. Rows without an
    ``id`` get one (set on the row).

    The gateway's ``log_management`` applies: with ``STOP_INSERTING`` the rows past the cap are
    dropped; with ``DELETE_OLDEST`` the gateway's oldest logs make room (and of a batch larger than
    the cap only its newest rows are kept).
    """
    records = [_record(account_id, gateway_id, row) for row in rows]
    return _store(db, account_id, gateway_id, _COLUMNS, records)


def insert_log_tuples(
    db: Database, account_id: str, gateway_id: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> int:
    """The bulk path (seeding): ``records`` hold ``columns`` of ``logs`` (not ``account_id``/``gateway_id``),
    already in stored form (``created_at`` from ``format_timestamp``, booleans as 0/1, metadata as JSON
    text). Binding only the columns given keeps 100,000 rows to about a second. Same rules as ``insert_logs``.
    """
    unknown = set(columns) - set(_ROW_FIELDS)
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
    cap, strategy, account_room = _log_limit(db, account_id, gateway_id)
    created_index = columns.index("created_at")
    id_index = columns.index("id")
    sql = f"INSERT INTO logs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    with db.transaction() as conn:
        found = conn.execute(
            "SELECT stored FROM log_counts WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id)
        ).fetchone()
        stored = int(found[0]) if found is not None else 0
        deleted = 0
        # The free plan's account-wide room counts as a lower cap for this gateway: what it already holds
        # plus what the account may still store.
        if account_room is not None:
            cap = min(cap, stored + account_room)
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
            conn.executemany(sql, records)
        if records or deleted:
            _add_count(db, conn, account_id, gateway_id, len(records) - deleted)
    return len(records)


def insert_log(db: Database, account_id: str, gateway_id: str, row: LogRow) -> str:
    """Store one log; its id (the ``cf-aig-log-id``), made here when ``row.id`` is ``None``.

    The id is returned even when ``log_management`` dropped the row (Cloudflare still names the request).
    """
    if row.id is None:
        row.id = new_log_id(None if row.created_at is None else _created(row))
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
    order = _order_clause(order_by, descending)
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
            _add_count(db, conn, account_id, gateway_id, -deleted)
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
        values["metadata"] = _encode_metadata(values["metadata"])
    with db.transaction() as conn:
        found = conn.execute(
            "SELECT seq FROM logs WHERE account_id = ? AND gateway_id = ? AND id = ?", (account_id, gateway_id, log_id)
        ).fetchone()
        if found is None:
            return False
        if values:
            assignments = ", ".join(f"{name} = ?" for name in values)
            conn.execute(f"UPDATE logs SET {assignments} WHERE seq = ?", (*values.values(), found[0]))
            _add_count(db, conn, account_id, gateway_id, 0)
    return True


# --- reads --------------------------------------------------------------------------------------


def _order_clause(order_by: str, descending: bool) -> str:
    column = ORDER_COLUMNS.get(order_by)
    if column is None:
        raise ValueError(f"cannot order logs by {order_by!r}")
    direction = "DESC" if descending else "ASC"
    if column == "created_at":
        return f"created_at {direction}, id {direction}"
    return f"{column} {direction}, created_at {direction}, id {direction}"


#: The only log fields the schema lets be null (``nullable: true`` in Cloudflare's OpenAPI, list and detail).
_NULLABLE_FIELDS: Final = frozenset({"tokens_in", "tokens_out"})


def _to_item(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(names, row, strict=True))
    for name in _BOOL_FIELDS.intersection(item):
        value = item[name]
        if value is not None:
            item[name] = bool(value)
    # Cloudflare's OpenAPI (aig-config-list-gateway-logs, aig-config-get-gateway-log-detail) types every other
    # optional field as a plain string, number or boolean, and the SDKs as optional (``metadata?: string``):
    # a field without a value is left out, not sent as null.
    return {k: v for k, v in item.items() if v is not None or k in _NULLABLE_FIELDS}


_STATS_SQL: Final = (
    "COUNT(*), MIN(cost), MAX(cost), MIN(duration), MAX(duration), MIN(tokens_in), MAX(tokens_in), "
    "MIN(tokens_out), MAX(tokens_out), MIN(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0)), "
    "MAX(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0))"
)
_STATS_NAMES: Final = (
    "min_cost",
    "max_cost",
    "min_duration",
    "max_duration",
    "min_tokens_in",
    "max_tokens_in",
    "min_tokens_out",
    "max_tokens_out",
    "min_total_tokens",
    "max_total_tokens",
)


def _summary(
    db: Database, account_id: str, gateway_id: str, where: str, params: Sequence[Any], *, stats: bool
) -> tuple[int, dict[str, Any]]:
    """``(total_count, min/max stats)`` of the matching logs, cached against the gateway's version."""
    stored, version = _counts(db, account_id, gateway_id)
    if stored == 0:
        return 0, dict.fromkeys(_STATS_NAMES, 0) if stats else {}
    if not where and not stats:
        return stored, {}
    cache = _cache_for(db)
    key = (account_id, gateway_id, where, tuple(params), stats)
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        total, info = hit[1]
        return int(total), dict(info)
    condition = f" AND ({where})" if where else ""
    select = _STATS_SQL if stats else "COUNT(*)"
    row = db.query_one(
        f"SELECT {select} FROM logs WHERE account_id = ? AND gateway_id = ?{condition}",
        (account_id, gateway_id, *params),
    )
    assert row is not None
    total = int(row[0])
    info = {name: (row[i + 1] if row[i + 1] is not None else 0) for i, name in enumerate(_STATS_NAMES)} if stats else {}
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = (version, (total, info))
    return total, dict(info)


def list_logs(
    db: Database,
    account_id: str,
    gateway_id: str,
    where: str = "",
    params: Sequence[Any] = (),
    *,
    order_by: str = "created_at",
    descending: bool = False,
    page: int = 1,
    per_page: int = 20,
    meta_info: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of the gateway's logs matching ``where``, and its ``result_info``.

    Past the last page the page is empty (the SDKs' auto-pagination stops on it).
    """
    total, stats = _summary(db, account_id, gateway_id, where, params, stats=meta_info)
    offset = (page - 1) * per_page
    items: list[dict[str, Any]] = []
    if offset < total:
        condition = f" AND ({where})" if where else ""
        rows = db.query(
            f"SELECT {', '.join(LIST_FIELDS)} FROM logs WHERE account_id = ? AND gateway_id = ?{condition} "
            f"ORDER BY {_order_clause(order_by, descending)} LIMIT ? OFFSET ?",
            (account_id, gateway_id, *params, per_page, offset),
        )
        items = [_to_item(LIST_FIELDS, row) for row in rows]
    info: dict[str, Any] = {"page": page, "per_page": per_page, "count": len(items), "total_count": total}
    info.update(stats)
    return items, info


def get_log(db: Database, account_id: str, gateway_id: str, log_id: str) -> dict[str, Any] | None:
    """One log as ``GET .../logs/{id}`` shows it (no payloads), or None."""
    row = db.query_one(
        f"SELECT {', '.join(DETAIL_FIELDS)} FROM logs WHERE account_id = ? AND gateway_id = ? AND id = ?",
        (account_id, gateway_id, log_id),
    )
    return None if row is None else _to_item(DETAIL_FIELDS, row)


def get_log_body(
    db: Database, account_id: str, gateway_id: str, log_id: str, which: Literal["request", "response"]
) -> tuple[bool, str | None, str | None]:
    """``(found, body, content_type)`` of the stored request or response payload of one log."""
    row = db.query_one(
        f"SELECT {which}_body, {which}_content_type FROM logs WHERE account_id = ? AND gateway_id = ? AND id = ?",
        (account_id, gateway_id, log_id),
    )
    if row is None:
        return False, None, None
    return True, row[0], row[1]


def log_stats(db: Database, account_id: str, gateway_id: str) -> dict[str, Any]:
    """The truth about a gateway's stored logs: totals, and the same per provider and per model."""
    select = (
        "COUNT(*), COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost), 0.0), "
        "COALESCE(SUM(success), 0), COALESCE(SUM(cached), 0), MIN(created_at), MAX(created_at)"
    )
    base = "FROM logs WHERE account_id = ? AND gateway_id = ?"
    args = (account_id, gateway_id)

    def totals(row: Sequence[Any]) -> dict[str, Any]:
        return {
            "count": int(row[0]),
            "tokens_in": int(row[1]),
            "tokens_out": int(row[2]),
            "cost": float(row[3]),
            "success": int(row[4]),
            "errors": int(row[0]) - int(row[4]),
            "cached": int(row[5]),
        }

    whole = db.query_one(f"SELECT {select} {base}", args)
    assert whole is not None
    result = totals(whole)
    result["first_created_at"] = whole[6]
    result["last_created_at"] = whole[7]
    result["by_provider"] = {
        r[0]: totals(r[1:]) for r in db.query(f"SELECT provider, {select} {base} GROUP BY provider", args)
    }
    result["by_model"] = {
        f"{r[0]}/{r[1]}": {"provider": r[0], "model": r[1], **totals(r[2:])}
        for r in db.query(f"SELECT provider, model, {select} {base} GROUP BY provider, model", args)
    }
    return result


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
