"""``POST /client/v4/accounts/{account_id}/workers/observability/telemetry/query`` (view ``events``).

Checks in the order of the v4 API: the token (401, 403 without Workers Observability read, the API budget),
then the body against the SDK's ``TelemetryQueryParams`` (400 / 7001 with a path; ASSUMPTION: this API
validates its schema as the AI Gateway API does). Only the ``events`` view is emulated; another view is a
400 saying so (a twin limit, documented in docs/TWIN.md), never an empty success.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.context import authorized_account, twin_context
from cftwin.envelope import now_iso, ok, read_json_object, validation_error
from cftwin.observability.models import DEFAULT_LIMIT, MAX_LIMIT, FilterError, check_filters, query_events

__all__ = ["QUERY_PATH", "routes"]

QUERY_PATH: Final = "/client/v4/accounts/{account_id}/workers/observability/telemetry/query"
#: ASSUMPTION: the permission group "Workers Observability" Read (the API's token needs it; not published).
PERMISSION: Final = "workers_observability:read"
_VIEWS: Final = ("traces", "events", "calculations", "invocations", "requests", "agents")


def _number(body: dict[str, Any], name: str, path: list[str]) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise validation_error(f"{name} must be a number (Unix time in milliseconds)", path)
    return float(value)


def _limit(body: dict[str, Any]) -> int:
    value = body.get("limit", DEFAULT_LIMIT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= MAX_LIMIT:
        raise validation_error(f"limit must be a number from 1 to {MAX_LIMIT}", ["body", "limit"])
    return int(value)


async def telemetry_query(request: Request) -> Response:
    account_id = authorized_account(request, PERMISSION)
    started = time.perf_counter()
    body = await read_json_object(request)
    query_id = body.get("queryId")
    if not isinstance(query_id, str) or not query_id:
        raise validation_error("queryId is required", ["body", "queryId"])
    timeframe = body.get("timeframe")
    if not isinstance(timeframe, dict):
        raise validation_error("timeframe {from, to} is required", ["body", "timeframe"])
    until = _number(timeframe, "to", ["body", "timeframe", "to"])
    since = _number(timeframe, "from", ["body", "timeframe", "from"]) if "from" in timeframe else 0.0
    if since >= until:
        raise validation_error("timeframe.from must be earlier than timeframe.to", ["body", "timeframe"])
    view = body.get("view", "events")
    if view not in _VIEWS:
        raise validation_error(f"view must be one of {', '.join(_VIEWS)}", ["body", "view"])
    if view != "events":
        raise validation_error(f"the twin emulates the events view only, not {view!r}", ["body", "view"])
    limit = _limit(body)
    offset = body.get("offset")
    if offset is not None and not isinstance(offset, str):
        raise validation_error("offset is the $metadata.id of the last event", ["body", "offset"])
    if body.get("offsetDirection", "next") not in ("next", "prev"):
        raise validation_error("offsetDirection is next or prev", ["body", "offsetDirection"])
    if body.get("offsetDirection") == "prev":
        raise validation_error("the twin pages forward only (offsetDirection next)", ["body", "offsetDirection"])
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise validation_error("parameters must be an object", ["body", "parameters"])
    filters = parameters.get("filters") or []
    try:
        check_filters(filters, ["body", "parameters", "filters"])
    except FilterError as exc:
        raise validation_error(str(exc), exc.path) from None
    combination = str(parameters.get("filterCombination", "and")).lower()
    if combination not in ("and", "or"):
        raise validation_error("filterCombination is and or or", ["body", "parameters", "filterCombination"])
    datasets = parameters.get("datasets") or []
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise validation_error("datasets must be an array of strings", ["body", "parameters", "datasets"])
    if isinstance(parameters.get("limit"), int) and not isinstance(parameters.get("limit"), bool):
        limit = min(limit, int(parameters["limit"]))
    context = twin_context(request)
    events, rows_read = query_events(
        context.db, account_id, since_ms=int(since), until_ms=int(until), filters=filters,
        combination=combination, datasets=datasets, limit=limit, offset=offset,
    )
    elapsed = time.perf_counter() - started
    statistics = {"bytes_read": float(rows_read * 512), "elapsed": elapsed, "rows_read": float(rows_read)}
    stamp = now_iso()
    run = {
        "id": secrets.token_hex(16), "accountId": account_id, "dry": bool(body.get("dry", False)),
        "granularity": float(body.get("granularity") or 0), "status": "COMPLETED",
        "timeframe": {"from": int(since), "to": int(until)}, "userId": "twin", "created": stamp,
        "updated": stamp, "statistics": statistics,
        "query": {"id": query_id, "adhoc": True, "created": stamp, "createdBy": "twin", "name": query_id,
                  "parameters": parameters, "updated": stamp, "updatedBy": "twin"},
    }
    kinds = {str: "string", bool: "boolean", int: "number", float: "number"}
    fields = sorted({(f"$metadata.{k}", kinds[type(v)]) for e in events for k, v in e["$metadata"].items()
                     if type(v) in kinds})
    result = {
        "run": run, "statistics": statistics,
        "events": {"count": len(events), "events": events,
                   "fields": [{"key": k, "type": t} for k, t in fields]},
    }
    return ok(result)


routes: list[BaseRoute] = [Route(QUERY_PATH, telemetry_query, methods=["POST"])]
