"""The twin's admin API under ``/__twin__`` (not a Cloudflare path): mounted only when
``TwinOptions.admin_enabled``, and answering loopback clients only (``TwinMiddleware``).

| method | path | body | answer |
|---|---|---|---|
| GET | /health | - | ``{"status": "ok"}`` |
| POST | /reset | - | drops every row of every table (re-seed afterwards) |
| POST | /accounts | ``{account_id, gateway_limit?, plan?, log_system?}`` | 201 the same, as in force |
| POST | /tokens | ``{value?, account_id, permissions[]}`` | 201 ``{id, value}`` |
| DELETE | /tokens/{id} | - | revokes it (``{"id": ...}``; 404 when unknown) |
| GET, PUT | /config | TwinOptions fields | the options after the change |
| POST | /seed | a ``TwinSeed`` as JSON | ``{"account_id": ...}`` |
| PUT, DELETE | /faults | a fault spec as a JSON string or a JSON object | the spec in force |

Errors are ``{"error": "<one line>"}`` with 400 / 404. Every request needs the admin token
(``cftwin.adminauth``: 401 without it, 403 for a foreign Host or Origin, 415 for a body that is not JSON).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cftwin import jsonbody
from cftwin.accounts import account_profile, created_at_for, set_account_profile
from cftwin.adminauth import admin_error
from cftwin.auth import PERMISSIONS, TOKEN_KINDS, create_account, create_token, revoke_token
from cftwin.context import TwinContext, twin_context
from cftwin.faults import FaultInjector, FaultSpec, parse_fault_spec
from cftwin.seed import TwinSeed, apply_seed

__all__ = ["routes"]


class _BadRequest(Exception):
    pass


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = jsonbody.loads(raw) if raw.strip() else {}
    except ValueError:
        raise _BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _handles_bad_requests(handler: Any) -> Any:
    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except (_BadRequest, ValueError) as exc:
            return admin_error(400, str(exc))
        return response

    wrapped.__name__ = handler.__name__
    return wrapped


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def reset(request: Request) -> Response:
    context = twin_context(request)
    context.db.reset()
    context.budget.clear()
    context.gateway_limiter.clear()
    return JSONResponse({"status": "reset"})


async def add_account(request: Request) -> Response:
    body = await _json_object(request)
    account = body.get("account_id")
    limit = body.get("gateway_limit")
    if not isinstance(account, str) or not account:
        raise _BadRequest("account_id must be a non-empty string")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise _BadRequest("gateway_limit must be a non-negative integer")
    plan = body.get("plan")
    log_system = body.get("log_system")
    if plan is not None and plan not in ("free", "paid"):
        raise _BadRequest("plan must be free or paid")
    if log_system is not None and log_system not in ("legacy", "observability"):
        raise _BadRequest("log_system must be legacy or observability")
    db = twin_context(request).db
    create_account(db, account, gateway_limit=limit)
    if plan is not None or log_system is not None:
        current = account_profile(db, account)
        set_account_profile(db, account, plan=plan or current.plan,
                            created_at=created_at_for(log_system) if log_system else current.created_at)
    profile = account_profile(db, account)
    return JSONResponse({"account_id": account, "gateway_limit": limit, "plan": profile.plan,
                         "log_system": profile.log_system}, status_code=201)


async def add_token(request: Request) -> Response:
    body = await _json_object(request)
    account = body.get("account_id")
    permissions = body.get("permissions")
    value = body.get("value")
    if not isinstance(account, str) or not account:
        raise _BadRequest("account_id must be a non-empty string")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise _BadRequest(f"permissions must be a list of {list(PERMISSIONS)}")
    if value is not None and (not isinstance(value, str) or not value):
        raise _BadRequest("value must be a non-empty string")
    kind = body.get("kind", "account")
    user = body.get("user", "user")
    if kind not in TOKEN_KINDS:
        raise _BadRequest(f"kind must be one of {list(TOKEN_KINDS)}")
    if not isinstance(user, str) or not user:
        raise _BadRequest("user must be a non-empty string (the owner of a user token)")
    db = twin_context(request).db
    create_account(db, account)
    token = create_token(db, [account], permissions, value=value, kind=kind, user=user)
    return JSONResponse({"id": token.id, "value": token.value}, status_code=201)


async def delete_token(request: Request) -> Response:
    token_id = request.path_params["token_id"]
    if not revoke_token(twin_context(request).db, token_id):
        return admin_error(404, f"no token {token_id!r}")
    twin_context(request).budget.clear()
    return JSONResponse({"id": token_id})


def _options_json(context: TwinContext) -> dict[str, Any]:
    return dataclasses.asdict(context.options)


async def get_config(request: Request) -> Response:
    return JSONResponse(_options_json(twin_context(request)))


async def put_config(request: Request) -> Response:
    context = twin_context(request)
    body = await _json_object(request)
    context.options.update(body)
    return JSONResponse(_options_json(context))


async def seed(request: Request) -> Response:
    body = await _json_object(request)
    twin_seed = TwinSeed.from_json(body)
    apply_seed(twin_context(request), twin_seed)
    return JSONResponse({"account_id": twin_seed.account_id})


async def put_faults(request: Request) -> Response:
    # JSON only (the admin API's one media type, cftwin.adminauth): the spec as a JSON string, or an object.
    try:
        parsed = jsonbody.loads(await request.body())
    except ValueError:
        raise _BadRequest('the body is not valid JSON: send the spec as a JSON string ("seed=1,...") or '
                          "object") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("spec"), str):
        parsed = parsed["spec"]
    if not isinstance(parsed, str | dict):
        raise _BadRequest("the body must be a fault spec string or object")
    spec_input: str | dict[str, Any] = parsed
    spec = parse_fault_spec(spec_input)
    context = twin_context(request)
    if context.faults is None:
        context.faults = FaultInjector(spec)
    else:
        context.faults.set_spec(spec)
    return JSONResponse({"spec": spec.to_string()})


async def delete_faults(request: Request) -> Response:
    context = twin_context(request)
    if context.faults is not None:
        context.faults.set_spec(FaultSpec())
    return JSONResponse({"spec": FaultSpec().to_string()})


routes: list[BaseRoute] = [
    Route("/health", health, methods=["GET"]),
    Route("/reset", reset, methods=["POST"]),
    Route("/accounts", _handles_bad_requests(add_account), methods=["POST"]),
    Route("/tokens", _handles_bad_requests(add_token), methods=["POST"]),
    Route("/tokens/{token_id}", delete_token, methods=["DELETE"]),
    Route("/config", get_config, methods=["GET"]),
    Route("/config", _handles_bad_requests(put_config), methods=["PUT"]),
    Route("/seed", _handles_bad_requests(seed), methods=["POST"]),
    Route("/faults", _handles_bad_requests(put_faults), methods=["PUT"]),
    Route("/faults", delete_faults, methods=["DELETE"]),
]
