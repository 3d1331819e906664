"""HTTP handlers: ``/client/v4/accounts/{account_id}/secrets_store/...`` (stores, secrets, quota).

Secret values are accepted (create, PATCH) and never returned. Limits of the open beta: one store
per account and 100 secrets per account (``TwinOptions.secrets_store_limit`` / ``secrets_quota``).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.context import TwinContext, authorized_account, twin_context
from cftwin.envelope import (
    CODE_SECRETS_REFUSED,
    CloudflareAPIError,
    ok,
    page_slice,
    read_json,
    read_json_object,
    secrets_invalid,
    secrets_not_found,
    secrets_refused,
    validation_error,
)
from cftwin.secrets_store import models
from cftwin.timing import with_secret_status
from cftwin.validation import choice_param, parse_bool_param, parse_page_params, secret_value

__all__ = ["check_secret_quota", "routes"]

_PREFIX: Final = "/client/v4/accounts/{account_id}/secrets_store"
MAX_NAME_CHARS: Final = 255


def check_secret_quota(context: TwinContext, account_id: str, adding: int) -> None:
    """400 / 1003 when ``adding`` secrets would pass the account's quota."""
    quota = context.options.secrets_quota
    if models.count_secrets(context.db, account_id) + adding > quota:
        # ASSUMPTION: over the secrets quota is 1003 with the recorded word maximum_stores_exceeded (the
        # only quota word recorded for Secrets Store; no source shows the secrets-quota answer itself).
        raise secrets_refused(
            "maximum_stores_exceeded", f"the account may hold at most {quota} secrets (Secrets Store quota)"
        )


def _order(request: Request, allowed: tuple[str, ...], default: str) -> tuple[str, str]:
    return choice_param(request, "order", allowed, default), choice_param(request, "direction", ("asc", "desc"), "asc")


def _existing_store(context: TwinContext, account_id: str, store_id: str) -> dict[str, Any]:
    store = models.get_store(context.db, account_id, store_id)
    if store is None:
        raise secrets_not_found("store_not_found", f"no store {store_id!r} in this account")
    return store


def _name(value: Any, path: list[str]) -> str:
    if value == "":
        raise secrets_invalid("secret_name_empty", "a secret needs a name", path)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_CHARS or any(c.isspace() for c in value):
        raise validation_error(f"name must be 1-{MAX_NAME_CHARS} characters without spaces", path)
    return value


def _scopes(value: Any, path: list[str]) -> list[str]:
    if not isinstance(value, list):
        raise validation_error(f"scopes must be a list of {', '.join(models.SCOPES)}", path)
    if not value:
        # Recorded for duplicate; ASSUMPTION: create and PATCH answer an empty list the same way.
        raise secrets_invalid("secret_scopes_empty", "a secret needs at least one scope", path)
    unknown = [s for s in value if s not in models.SCOPES]
    if unknown:
        raise secrets_invalid(
            "secret_scope_invalid", f"{unknown[0]!r} is not a scope; use {', '.join(models.SCOPES)}", path
        )
    return sorted(set(value), key=models.SCOPES.index)


def _comment(value: Any, path: list[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 1024:
        raise validation_error("comment must be a string of at most 1024 characters", path)
    return value


# --- stores -----------------------------------------------------------------------------------

# Shaped like gateways.responses' handlers (authorize, validate, one transaction, ok) but not shared with
# them: each service's checks and their order are its own, and are read in place against Cloudflare's.


async def list_stores(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:read")
    page, per_page = parse_page_params(request, 20, 1, 100)
    order, direction = _order(request, ("name", "created", "modified"), "created")
    stores = models.list_stores(twin_context(request).db, account_id, order=order, direction=direction)
    chunk, info = page_slice(stores, page, per_page)
    return ok(chunk, info)


async def create_store(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:write")
    context = twin_context(request)
    body = await read_json_object(request)
    if "name" not in body:
        raise validation_error("name is required", ["body", "name"])
    name = _name(body["name"], ["body", "name"])
    with context.db.transaction():
        limit = context.options.secrets_store_limit
        if len(models.list_stores(context.db, account_id)) >= limit:
            # Open beta: one store per account; the second is 1003 maximum_stores_exceeded (recorded).
            raise secrets_refused(
                "maximum_stores_exceeded", f"an account may have {limit} store(s): use the existing store"
            )
        store = models.create_store(context.db, account_id, name)
    return ok(store)


async def get_store(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:read")
    return ok(_existing_store(twin_context(request), account_id, request.path_params["store_id"]))


async def delete_store(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:write")
    context = twin_context(request)
    store_id = request.path_params["store_id"]
    force = parse_bool_param(request, "force")
    with context.db.transaction():
        _existing_store(context, account_id, store_id)
        if not force and models.store_secret_count(context.db, store_id) > 0:
            # ASSUMPTION: 409 (TS stores.ts names store_not_empty) with Secrets Store's refusal code 1003.
            raise CloudflareAPIError.single(
                409, CODE_SECRETS_REFUSED,
                "store_not_empty: the store still holds secrets; delete them or pass force=true",
            )
        models.delete_store(context.db, account_id, store_id)
    return ok(None)


# --- secrets ----------------------------------------------------------------------------------


async def create_secrets(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:write")
    context = twin_context(request)
    store_id = request.path_params["store_id"]
    body = await read_json(request)
    if not isinstance(body, list) or not body:
        raise validation_error("the body must be a non-empty JSON array of secrets", ["body"])
    items: list[dict[str, Any]] = []
    for index, raw in enumerate(body):
        where = ["body", str(index)]
        if not isinstance(raw, dict):
            raise validation_error("each secret must be a JSON object", where)
        if "name" not in raw:
            raise secrets_invalid("secret_name_empty", "a secret needs a name", [*where, "name"])
        for field in ("value", "scopes"):
            if field not in raw:
                raise validation_error(f"{field} is required", [*where, field])
        items.append({
            "name": _name(raw["name"], [*where, "name"]),
            "value": secret_value(raw["value"], [*where, "value"]),
            "scopes": _scopes(raw["scopes"], [*where, "scopes"]),
            "comment": _comment(raw.get("comment"), [*where, "comment"]),
        })
    names = [item["name"] for item in items]
    if len(set(names)) != len(names):
        raise secrets_refused("secret_name_already_exists", "the request names a secret twice")
    with context.db.transaction():
        _existing_store(context, account_id, store_id)
        for name in names:
            if models.find_secret_by_name(context.db, account_id, store_id, name) is not None:
                raise secrets_refused("secret_name_already_exists", f"a secret named '{name}' is in this store")
        check_secret_quota(context, account_id, len(items))
        created = models.create_secrets(context.db, account_id, store_id, items)
    return ok([_shown(context, s) for s in created])


async def list_secrets(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:read")
    context = twin_context(request)
    store_id = request.path_params["store_id"]
    page, per_page = parse_page_params(request, 20, 1, 100)
    order, direction = _order(request, ("name", "comment", "created", "modified", "status"), "created")
    # The SDKs send arrays as repeated keys (scopes=a&scopes=b); scopes[]= is accepted too.
    scopes = request.query_params.getlist("scopes") + request.query_params.getlist("scopes[]")
    for scope in scopes:
        if scope not in models.SCOPES:
            raise validation_error(f"scopes must be among {', '.join(models.SCOPES)}", ["query", "scopes"])
    _existing_store(context, account_id, store_id)
    found = models.list_secrets(
        context.db, account_id, store_id, search=request.query_params.get("search") or None, scopes=scopes,
        order=order, direction=direction,
    )
    chunk, info = page_slice(found, page, per_page)
    return ok([_shown(context, s) for s in chunk], info)


def _shown(context: TwinContext, secret: dict[str, Any]) -> dict[str, Any]:
    # A new secret reads "pending" for a moment (TwinOptions.secret_pending_s, cftwin.timing).
    return with_secret_status(secret, context.options.secret_pending_s)


def _existing_secret(context: TwinContext, account_id: str, store_id: str, secret_id: str) -> dict[str, Any]:
    _existing_store(context, account_id, store_id)
    secret = models.get_secret(context.db, account_id, store_id, secret_id)
    if secret is None:
        raise _secret_not_found(secret_id)
    return secret


def _secret_not_found(secret_id: str) -> CloudflareAPIError:
    return secrets_not_found("secret_not_found", f"no secret {secret_id!r} in this store")


async def get_secret(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:read")
    params = request.path_params
    context = twin_context(request)
    return ok(_shown(context, _existing_secret(context, account_id, params["store_id"], params["secret_id"])))


async def edit_secret(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:write")
    context = twin_context(request)
    store_id, secret_id = request.path_params["store_id"], request.path_params["secret_id"]
    body = await read_json_object(request)
    value = secret_value(body["value"], ["body", "value"]) if "value" in body else None
    comment = _comment(body["comment"], ["body", "comment"]) if "comment" in body else None
    scopes = _scopes(body["scopes"], ["body", "scopes"]) if "scopes" in body else None
    with context.db.transaction():
        _existing_secret(context, account_id, store_id, secret_id)
        updated = models.update_secret(
            context.db, account_id, store_id, secret_id, value=value, comment=comment, scopes=scopes
        )
    if updated is None:
        raise _secret_not_found(secret_id)
    return ok(_shown(context, updated))


async def delete_secret(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:write")
    context = twin_context(request)
    store_id, secret_id = request.path_params["store_id"], request.path_params["secret_id"]
    with context.db.transaction():
        _existing_secret(context, account_id, store_id, secret_id)
        models.delete_secret(context.db, account_id, store_id, secret_id)
    return ok(None)


async def quota(request: Request) -> Response:
    account_id = authorized_account(request, "secrets_store:read")
    context = twin_context(request)
    usage = models.count_secrets(context.db, account_id)
    return ok({"secrets": {"quota": context.options.secrets_quota, "usage": usage}})


routes: list[BaseRoute] = [
    Route(_PREFIX + "/quota", quota, methods=["GET"]),
    Route(_PREFIX + "/stores", list_stores, methods=["GET"]),
    Route(_PREFIX + "/stores", create_store, methods=["POST"]),
    Route(_PREFIX + "/stores/{store_id}", get_store, methods=["GET"]),
    Route(_PREFIX + "/stores/{store_id}", delete_store, methods=["DELETE"]),
    Route(_PREFIX + "/stores/{store_id}/secrets", list_secrets, methods=["GET"]),
    Route(_PREFIX + "/stores/{store_id}/secrets", create_secrets, methods=["POST"]),
    Route(_PREFIX + "/stores/{store_id}/secrets/{secret_id}", get_secret, methods=["GET"]),
    Route(_PREFIX + "/stores/{store_id}/secrets/{secret_id}", edit_secret, methods=["PATCH"]),
    Route(_PREFIX + "/stores/{store_id}/secrets/{secret_id}", delete_secret, methods=["DELETE"]),
]
