"""What the logs API reads: a page of logs, one log, its payloads, and the truth about a gateway's logs.

Totals and min/max stats are cached in the database's ``memo`` against the gateway's count version
(``cftwin.logs.counts``), so that a repeated page does not count the table again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from cftwin.db import Database
from cftwin.logs.counts import stored_and_version
from cftwin.logs.rows import BOOL_FIELDS, DETAIL_FIELDS, LIST_FIELDS, order_clause

__all__ = ["get_log", "get_log_body", "list_logs", "log_stats"]

_CACHE_LIMIT: Final = 512


def _cache_for(db: Database) -> dict[tuple[Any, ...], tuple[int, Any]]:
    cache: dict[tuple[Any, ...], tuple[int, Any]] = db.memo.setdefault("logs.queries", {})
    return cache


#: The only log fields the schema lets be null (``nullable: true`` in Cloudflare's OpenAPI, list and detail).
_NULLABLE_FIELDS: Final = frozenset({"tokens_in", "tokens_out"})


def _to_item(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(names, row, strict=True))
    for name in BOOL_FIELDS.intersection(item):
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
    stored, version = stored_and_version(db, account_id, gateway_id)
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

    Takes the same ``where`` / order parameters as ``models.delete_logs``: one condition from
    ``cftwin.logs.filters`` selects what a page shows and what a delete removes.

    Past the last page the page is empty (the SDKs' auto-pagination stops on it).
    """
    total, stats = _summary(db, account_id, gateway_id, where, params, stats=meta_info)
    offset = (page - 1) * per_page
    items: list[dict[str, Any]] = []
    if offset < total:
        condition = f" AND ({where})" if where else ""
        rows = db.query(
            f"SELECT {', '.join(LIST_FIELDS)} FROM logs WHERE account_id = ? AND gateway_id = ?{condition} "
            f"ORDER BY {order_clause(order_by, descending)} LIMIT ? OFFSET ?",
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
