"""The control-plane logs endpoints (``/client/v4/accounts/{a}/ai-gateway/gateways/{g}/logs...``).

Order of checks, as Cloudflare's schema-validated API does it: the token (401/403, the API budget),
then the request's own shape (400 / 7001 with a path), then the gateway and the log (404 / 7002).
A page of the list is one indexed query; its ``total_count`` comes from the maintained count (or a
cached filtered count), and the body is serialised once, compactly.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin import jsonbody
from cftwin.accounts import account_profile
from cftwin.context import TwinContext, authorized_account, twin_context
from cftwin.envelope import not_found, ok, read_json_object, validation_error
from cftwin.gateways.models import get_gateway
from cftwin.logs import models
from cftwin.logs.encodings import parse_query_filters
from cftwin.logs.filters import build_condition, invalid, legacy_filters
from cftwin.validation import is_gateway_id

__all__ = [
    "DEFAULT_PER_PAGE",
    "DELETE_LIMIT",
    "LIST_ORDER_BY",
    "MAX_PER_PAGE",
    "routes",
]

LOGS_PATH: Final = "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs"
DEFAULT_PER_PAGE: Final = 20
# ASSUMPTION: per_page runs 1..50 (the 2024 spec said 5..50; newer transcriptions say 1..50).
MIN_PER_PAGE: Final = 1
MAX_PER_PAGE: Final = 50
DELETE_LIMIT: Final = 10_000
# The list operation orders by six columns (the SDKs' ``LogListParams.order_by``, generated from the
# spec); only the delete operation also takes cost, tokens, duration and feedback (2026 spec).
LIST_ORDER_BY: Final = ("created_at", "provider", "model", "model_type", "success", "cached")
DELETE_ORDER_BY: Final = (*LIST_ORDER_BY, "cost", "tokens_in", "tokens_out", "duration", "feedback")
# ASSUMPTION: the list's default direction is ascending, as the 2024 spec's ``direction`` and the
# 2026 delete operation's ``order_by_direction`` declare (the newer list default is not published).
DEFAULT_DIRECTION: Final = "asc"
_DIGITS: Final = re.compile(r"^[0-9]{1,18}$")


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        status_code=status,
        media_type="application/json",
    )


# --- query parameters ---------------------------------------------------------------------------


def _last(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    return values[-1] if values else None


# Like validation._int_param, but the logs API reads the last of repeated parameters and answers with
# its own 400 shape (result {}, 'whole number'): kept apart so neither endpoint's text changes.
def _int(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = _last(request, name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.match(raw):
        raise invalid(f"{name} must be a whole number", ["query", name])
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise invalid(f"{name} must be {bounds}", ["query", name])
    return value


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = _last(request, name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise invalid(f"{name} must be one of {', '.join(choices)}", ["query", name])
    return raw


def _flag(request: Request, name: str) -> bool:
    raw = _last(request, name)
    if raw is None or raw == "":
        return False
    if raw in {"true", "false"}:
        return raw == "true"
    raise invalid(f"{name} must be true or false", ["query", name])


def _direction(request: Request) -> bool:
    """True for descending: ``order_by_direction``, else the deprecated ``direction``."""
    name = "order_by_direction" if _last(request, "order_by_direction") not in (None, "") else "direction"
    return _choice(request, name, ("asc", "desc"), DEFAULT_DIRECTION) == "desc"


def _condition(request: Request, *, legacy: bool) -> tuple[str, list[Any]]:
    pairs = request.query_params.multi_items()
    filters = parse_query_filters(pairs)
    if legacy:
        filters += legacy_filters(pairs)
    search = _last(request, "search") if legacy else None
    return build_condition(filters, search or None)


def _holds_legacy_logs(context: TwinContext, account_id: str) -> bool:
    """ASSUMPTION: on an account with Logs powered by Workers Observability (created since 2026-09-24) the
    Legacy Logs API still answers, but holds nothing: lists are empty, a log id is not found, a delete
    deletes nothing. No source says what Cloudflare answers there; "04 finds nothing" is what users report.
    """
    return account_profile(context.db, account_id).log_system == "legacy"


def _gateway_exists(context: TwinContext, account_id: str, gateway_id: str) -> None:
    # Every logs operation declares the gateway id's pattern on its path parameter: an id no gateway
    # can have is a 7001, as on the gateway operations, not a 404.
    if not is_gateway_id(gateway_id):
        raise invalid("gateway_id must be 1-64 characters of a-z, 0-9 and '_', joined by single '-'",
                      ["path", "gateway_id"])
    if get_gateway(context.db, account_id, gateway_id) is None:
        raise not_found()


# --- handlers -----------------------------------------------------------------------------------


async def list_gateway_logs(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    gateway_id = request.path_params["gateway_id"]
    page = _int(request, "page", 1, 1, None)
    per_page = _int(request, "per_page", DEFAULT_PER_PAGE, MIN_PER_PAGE, MAX_PER_PAGE)
    order_by = _choice(request, "order_by", LIST_ORDER_BY, "created_at")
    descending = _direction(request)
    meta_info = _flag(request, "meta_info")
    where, params = _condition(request, legacy=True)
    context = twin_context(request)
    _gateway_exists(context, account_id, gateway_id)
    if not _holds_legacy_logs(context, account_id):
        where, params = "0", []
    items, info = models.list_logs(
        context.db,
        account_id,
        gateway_id,
        where,
        params,
        order_by=order_by,
        descending=descending,
        page=page,
        per_page=per_page,
        meta_info=meta_info,
    )
    return _json({"success": True, "errors": [], "messages": [], "result": items, "result_info": info})


async def delete_gateway_logs(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:write")
    gateway_id = request.path_params["gateway_id"]
    limit = _int(request, "limit", DELETE_LIMIT, 1, DELETE_LIMIT)
    order_by = _choice(request, "order_by", DELETE_ORDER_BY, "created_at")
    descending = _choice(request, "order_by_direction", ("asc", "desc"), "asc") == "desc"
    where, params = _condition(request, legacy=False)
    context = twin_context(request)
    _gateway_exists(context, account_id, gateway_id)
    if not _holds_legacy_logs(context, account_id):
        return _json({"success": True})
    # ASSUMPTION: Cloudflare deletes asynchronously (total_count stays stale for a while); the twin
    # deletes before it answers, so a test sees the effect at once.
    models.delete_logs(
        context.db, account_id, gateway_id, where, params, order_by=order_by, descending=descending, limit=limit
    )
    # The operation declares only {"success": true} (no result), and the SDK parses exactly that.
    return _json({"success": True})


async def get_gateway_log(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    gateway_id = request.path_params["gateway_id"]
    context = twin_context(request)
    _gateway_exists(context, account_id, gateway_id)
    log = models.get_log(context.db, account_id, gateway_id, request.path_params["log_id"])
    if log is None or not _holds_legacy_logs(context, account_id):
        raise not_found()
    return _json({"success": True, "errors": [], "messages": [], "result": log})


def _bounded_number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise validation_error(f"{name} must be a number from {lo:g} to {hi:g}, or null", ["body", name])
    return float(value)


def _metadata(value: object) -> dict[str, str | int | float | bool] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise validation_error("metadata must be an object, or null", ["body", "metadata"])
    for key, item in value.items():
        if not isinstance(item, (str, int, float, bool)) or (isinstance(item, float) and not math.isfinite(item)):
            raise validation_error("metadata values are strings, numbers or booleans", ["body", "metadata", key])
    return dict(value)


async def patch_gateway_log(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:write")
    gateway_id = request.path_params["gateway_id"]
    body = await read_json_object(request)
    # ASSUMPTION: an explicit null clears the field; an absent field is left as it is.
    changes: dict[str, Any] = {}
    if "feedback" in body:
        changes["feedback"] = _bounded_number(body, "feedback", -1, 1)
    if "score" in body:
        changes["score"] = _bounded_number(body, "score", 0, 100)
    if "metadata" in body:
        changes["metadata"] = _metadata(body["metadata"])
    context = twin_context(request)
    _gateway_exists(context, account_id, gateway_id)
    log_id = request.path_params["log_id"]
    if not _holds_legacy_logs(context, account_id) or not models.update_log(
            context.db, account_id, gateway_id, log_id, changes):
        raise not_found()
    return ok({})


async def _payload(request: Request, which: Literal["request", "response"]) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    gateway_id = request.path_params["gateway_id"]
    context = twin_context(request)
    _gateway_exists(context, account_id, gateway_id)
    found, body, content_type = models.get_log_body(
        context.db, account_id, gateway_id, request.path_params["log_id"], which
    )
    # ASSUMPTION: a log whose payload was not kept (cf-aig-collect-log-payload: false, or seeded
    # without payloads) answers 404 / 7002, as an unknown log does.
    if not found or body is None or not _holds_legacy_logs(context, account_id):
        raise not_found()
    # ASSUMPTION: the stored payload itself, unwrapped (the spec's 200 schema is a bare object and the
    # SDK returns the body as is): JSON payloads as JSON, anything else with its own content type.
    media_type = content_type or "application/json"
    if "json" in media_type.lower():
        try:
            jsonbody.loads(body)
        except ValueError:
            media_type = "text/plain; charset=utf-8"
    return Response(body.encode("utf-8"), media_type=media_type)


async def get_gateway_log_request(request: Request) -> Response:
    return await _payload(request, "request")


async def get_gateway_log_response(request: Request) -> Response:
    return await _payload(request, "response")


routes: list[BaseRoute] = [
    Route(LOGS_PATH, list_gateway_logs, methods=["GET"]),
    Route(LOGS_PATH, delete_gateway_logs, methods=["DELETE"]),
    Route(LOGS_PATH + "/{log_id}", get_gateway_log, methods=["GET"]),
    Route(LOGS_PATH + "/{log_id}", patch_gateway_log, methods=["PATCH"]),
    Route(LOGS_PATH + "/{log_id}/request", get_gateway_log_request, methods=["GET"]),
    Route(LOGS_PATH + "/{log_id}/response", get_gateway_log_response, methods=["GET"]),
]
