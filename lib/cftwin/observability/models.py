"""A Workers Observability ``events`` query over the gateway request logs the twin stores.

The query's shape is the official SDKs' (cloudflare-python ``workers/observability/telemetry.query``,
``TelemetryQueryParams`` / ``TelemetryQueryResponse``): a timeframe in Unix ms, ``parameters.filters`` as
leaves ``{key, operation, type, value}`` or groups ``{kind: "group", filterCombination, filters}``,
``limit`` and a cursor ``offset`` ("the ``$metadata.id`` of the last event").

What AI Gateway writes into those events is not published. ASSUMPTION (docs/TWIN.md): one event per logged
request, in dataset ``ai-gateway``; ``$metadata`` carries the request (``id`` and ``requestId`` = the
``cf-aig-log-id``, ``service`` = the gateway id, ``type`` ``ai-gateway``, ``statusCode``, ``duration``,
``provider``, ``url`` = the provider path, ``startTime``/``endTime``, ``level`` ``info``/``error``); and
``source`` is the gateway's log fields as Legacy Logs names them (``gateway_id``, ``provider``, ``model``,
``tokens_in``, ``tokens_out``, ``cost``, ``cached``, ``success``, ``status_code``, ``duration``,
``created_at``, ``path``, ``metadata`` as an object, ...). Keys filter as ``$metadata.<name>``, ``dataset``,
or a ``source`` field by its name (``model``, ``metadata.aigw_run_id``). Events come newest first; events
older than the plan's retention are gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cftwin.accounts import account_profile
from cftwin.db import Database
from cftwin.logs.models import format_timestamp, parse_timestamp

__all__ = ["DATASET", "DEFAULT_LIMIT", "MAX_LIMIT", "FilterError", "check_filters", "event_of", "query_events"]

DATASET: Final = "ai-gateway"
#: ASSUMPTION: at most 2,000 events a query (third-party clients of the API page with 1,000-2,000); 50 by default.
MAX_LIMIT: Final = 2000
DEFAULT_LIMIT: Final = 50

_COLUMNS: Final = (
    "id", "gateway_id", "created_at", "provider", "model", "model_type", "path", "duration", "success", "cached",
    "status_code", "tokens_in", "tokens_out", "cost", "custom_cost", "metadata", "request_type", "step",
    "user_agent",
)
_BOOLS: Final = frozenset({"success", "cached", "custom_cost"})


class FilterError(ValueError):
    """A filter the query cannot apply; ``path`` names it in the request body."""

    def __init__(self, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.path = path


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def event_of(account_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored log as a Workers Observability event."""
    source: dict[str, Any] = {name: row[name] for name in _COLUMNS if name not in ("id", "user_agent")}
    source["log_id"] = row["id"]
    for name in _BOOLS:
        source[name] = bool(source[name])
    metadata = row["metadata"]
    source["metadata"] = json.loads(metadata) if isinstance(metadata, str) and metadata else None
    started = _ms(parse_timestamp(str(row["created_at"])))
    status = row["status_code"]
    meta: dict[str, Any] = {
        "id": row["id"], "requestId": row["id"], "account": account_id, "service": row["gateway_id"],
        "type": DATASET, "origin": DATASET, "provider": row["provider"], "url": row["path"],
        "statusCode": status, "duration": int(row["duration"] or 0), "startTime": started,
        "endTime": started + int(row["duration"] or 0), "level": "info" if row["success"] else "error",
        "message": f"{row['provider']}/{row['model']} {status}",
    }
    return {"$metadata": meta, "dataset": DATASET, "source": source, "timestamp": started}


def _lookup(event: Mapping[str, Any], key: str) -> Any:
    if key == "dataset":
        return event["dataset"]
    if key.startswith("$metadata."):
        return event["$metadata"].get(key.removeprefix("$metadata."))
    value: Any = event["source"]
    for part in key.removeprefix("source.").split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


_OPERATIONS: Final = {
    "=": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "INCLUDES": "includes",
    "DOES_NOT_INCLUDE": "not_includes", "MATCH_REGEX": "regex", "EXISTS": "exists", "DOES_NOT_EXIST": "is_null",
    "IN": "in", "NOT_IN": "not_in", "STARTS_WITH": "starts_with", "ENDS_WITH": "ends_with",
}
_KNOWN: Final = frozenset({"includes", "not_includes", "starts_with", "ends_with", "regex", "exists", "is_null",
                           "in", "not_in", "eq", "neq", "gt", "gte", "lt", "lte"})


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "number":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def _leaf_matches(event: Mapping[str, Any], leaf: Mapping[str, Any]) -> bool:
    operation = _OPERATIONS.get(str(leaf["operation"]), str(leaf["operation"]))
    kind = str(leaf["type"])
    found = _typed(_lookup(event, str(leaf["key"])), kind)
    if operation == "exists":
        return found is not None
    if operation == "is_null":
        return found is None
    wanted = leaf.get("value")
    if operation in ("in", "not_in"):
        members = [m.strip() for m in str(wanted).split(",")]
        inside = found is not None and (str(found) in members or (kind == "number" and any(
            _number(m) == found for m in members)))
        return inside if operation == "in" else not inside
    if found is None:
        return operation == "neq"
    if kind == "string":
        text, probe = str(found), str(wanted)
        return {
            "eq": text == probe, "neq": text != probe, "includes": probe in text, "not_includes": probe not in text,
            "starts_with": text.startswith(probe), "ends_with": text.endswith(probe),
            "regex": re.search(probe, text) is not None,
            "gt": text > probe, "gte": text >= probe, "lt": text < probe, "lte": text <= probe,
        }[operation]
    target = _typed(wanted, kind) if kind == "boolean" else _number(wanted)
    if target is None:
        return False
    outcomes: dict[str, bool] = {"eq": found == target, "neq": found != target, "gt": found > target,
                                 "gte": found >= target, "lt": found < target, "lte": found <= target}
    return outcomes.get(operation, False)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_filters(filters: Any, path: list[str]) -> None:
    """FilterError for a filter tree the API's schema refuses."""
    if not isinstance(filters, list):
        raise FilterError("filters must be an array", path)
    for index, node in enumerate(filters):
        where = [*path, str(index)]
        if not isinstance(node, dict):
            raise FilterError("a filter must be an object", where)
        if node.get("kind") == "group":
            if str(node.get("filterCombination", "")).lower() not in ("and", "or"):
                raise FilterError("a filter group needs filterCombination and or or", [*where, "filterCombination"])
            check_filters(node.get("filters"), [*where, "filters"])
            continue
        if not isinstance(node.get("key"), str) or not node["key"]:
            raise FilterError("a filter needs a key", [*where, "key"])
        operation = node.get("operation")
        if _OPERATIONS.get(str(operation), str(operation)) not in _KNOWN:
            raise FilterError(f"operation {operation!r} is not one of the API's", [*where, "operation"])
        if node.get("type") not in ("string", "number", "boolean"):
            raise FilterError("type must be string, number or boolean", [*where, "type"])
        if node.get("operation") in ("regex", "MATCH_REGEX"):
            try:
                re.compile(str(node.get("value", "")))
            except re.error:
                raise FilterError("the regex does not compile", [*where, "value"]) from None


def _matches(event: Mapping[str, Any], filters: Sequence[Mapping[str, Any]], combination: str) -> bool:
    results = (
        _matches(event, node["filters"], str(node["filterCombination"]).lower()) if node.get("kind") == "group"
        else _leaf_matches(event, node)
        for node in filters
    )
    return any(results) if combination == "or" else all(results)


def query_events(
    db: Database,
    account_id: str,
    *,
    since_ms: int,
    until_ms: int,
    filters: Sequence[Mapping[str, Any]] = (),
    combination: str = "and",
    datasets: Sequence[str] = (),
    limit: int = DEFAULT_LIMIT,
    offset: str | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The account's events in ``[since_ms, until_ms]`` that match, newest first, after the ``offset`` cursor;
    and how many rows were read (the run's ``rows_read``)."""
    profile = account_profile(db, account_id)
    # ASSUMPTION: an account on Legacy Logs writes no gateway events to Workers Observability.
    if profile.log_system != "observability" or (datasets and DATASET not in datasets):
        return [], 0
    retention = timedelta(days=profile.retention_days)
    oldest = max(since_ms, _ms((now or datetime.now(UTC)) - retention))
    if oldest > until_ms:
        return [], 0
    low = format_timestamp(datetime.fromtimestamp(oldest / 1000, UTC))
    high = format_timestamp(datetime.fromtimestamp((until_ms + 1) / 1000, UTC))  # exclusive: until_ms is in
    params: list[Any] = [account_id, low, high]
    cursor = ""
    if offset:
        found = db.query_one("SELECT created_at, id FROM logs WHERE account_id = ? AND id = ?", (account_id, offset))
        if found is None:
            return [], 0
        cursor = " AND (created_at < ? OR (created_at = ? AND id < ?))"
        params += [found["created_at"], found["created_at"], found["id"]]
    rows = db.query(
        f"SELECT {', '.join(_COLUMNS)} FROM logs WHERE account_id = ? AND created_at >= ? AND created_at < ?{cursor} "
        "ORDER BY created_at DESC, id DESC",
        tuple(params),
    )
    events: list[dict[str, Any]] = []
    read = 0
    for row in rows:
        read += 1
        event = event_of(account_id, dict(zip(_COLUMNS, row, strict=True)))
        if _matches(event, filters, combination):
            events.append(event)
            if len(events) >= limit:
                break
    return events, read
