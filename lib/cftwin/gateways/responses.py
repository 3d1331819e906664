"""HTTP handlers: ``/client/v4/accounts/{account_id}/ai-gateway/gateways[...]``.

Validation follows the order Cloudflare's edge does: authentication and permission, then the
request (400 / 7001 with ``path``), then existence (404 / 7002), then conflicts and limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.auth import account_gateway_limit, has_permission, require
from cftwin.context import TwinContext, authorized_account, twin_context
from cftwin.envelope import (
    CODE_AUTH,
    CloudflareAPIError,
    already_exists,
    not_found,
    ok,
    page_slice,
    quota_exceeded,
    read_json_object,
    validation_error,
)
from cftwin.gateways import models
from cftwin.gateways.body import validate_gateway, validate_gateway_id
from cftwin.logs import models as logs
from cftwin.secrets_store import models as secrets
from cftwin.validation import boolean, parse_page_params, secret_value

__all__ = ["routes", "secret_preview"]

_PREFIX: Final = "/client/v4/accounts/{account_id}/ai-gateway/gateways"
CLOUDFLARE_GATEWAY_HOST: Final = "https://gateway.ai.cloudflare.com/v1"


def secret_preview(value: str) -> str:
    """What the API shows of a stored key.

    ASSUMPTION: Cloudflare's exact mask is not documented; the twin shows the last 4 characters only
    (``"****wxyz"``; ``"****"`` for keys shorter than 12), which reveals no more than common practice.
    """
    return "****" + value[-4:] if len(value) >= 12 else "****"


# --- gateways ---------------------------------------------------------------------------------


def _path_gateway_id(request: Request, name: str = "gateway_id") -> str:
    return validate_gateway_id(request.path_params[name], ["path", name])


def _existing_gateway(context: TwinContext, account_id: str, gateway_id: str) -> dict[str, Any]:
    gateway = models.get_gateway(context.db, account_id, gateway_id)
    if gateway is None:
        raise not_found()
    return gateway


def _bad_request_with_result(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """For operations whose 400 declares ``result: {}`` (gateway list, url, provider-config list)."""

    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except CloudflareAPIError as error:
            if error.status == 400 and error.result is None:
                error.result = {}
            raise
        return response

    return wrapped


@_bad_request_with_result
async def list_gateways(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    # ASSUMPTION: per_page 1..100 (2026 transcriptions), default 20; the 2024 spec had a minimum of 5.
    page, per_page = parse_page_params(request, 20, 1, 100)
    search = request.query_params.get("search") or None
    items = models.list_gateways(twin_context(request).db, account_id, search)
    chunk, info = page_slice(items, page, per_page)
    return ok(chunk, info)


async def create_gateway(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:write")
    context = twin_context(request)
    body = await read_json_object(request)
    if "id" not in body:
        raise validation_error("id is required", ["body", "id"])
    gateway_id = validate_gateway_id(body["id"], ["body", "id"])
    gateway = validate_gateway(context, account_id, body, None)
    gateway["is_default"] = gateway_id == "default"
    with context.db.transaction():
        if models.get_gateway(context.db, account_id, gateway_id) is not None:
            raise already_exists(f"A gateway with id '{gateway_id}' already exists", ["body", "id"])
        limit = account_gateway_limit(context.db, account_id, context.options.gateway_limit)
        if models.count_gateways(context.db, account_id) >= limit:
            # Every error of this operation's 400 carries a path (its schema, aig-config-create-gateway).
            raise quota_exceeded(f"Maximum number of gateways ({limit}) reached for this account", path=["body"])
        created = models.create_gateway(context.db, account_id, {"id": gateway_id, **gateway})
    return ok(created)


async def get_gateway(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    gateway_id = _path_gateway_id(request, "id")
    return ok(_existing_gateway(twin_context(request), account_id, gateway_id))


async def update_gateway(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:write")
    context = twin_context(request)
    gateway_id = _path_gateway_id(request, "id")
    body = await read_json_object(request)
    with context.db.transaction():
        existing = _existing_gateway(context, account_id, gateway_id)
        gateway = validate_gateway(context, account_id, body, existing)
        updated = models.replace_gateway(context.db, account_id, gateway_id, gateway)
    if updated is None:
        raise not_found()
    return ok(updated)


async def delete_gateway(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:write")
    gateway_id = _path_gateway_id(request, "id")
    db = twin_context(request).db
    # A gateway re-created with the same id must not show the old one's logs: both go together.
    with db.transaction():
        deleted = models.delete_gateway(db, account_id, gateway_id)
        if deleted is not None:
            logs.delete_gateway_logs(db, account_id, gateway_id)
    if deleted is None:
        raise not_found()
    return ok(deleted)


@_bad_request_with_result
async def gateway_url(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    context = twin_context(request)
    gateway_id = _path_gateway_id(request)
    provider = request.path_params["provider"]
    # ASSUMPTION: the provider must be a slug the gateway serves (or "compat"); 7001 otherwise.
    if provider not in models.KNOWN_PROVIDER_SLUGS and provider != "compat":
        raise validation_error(f"unknown provider {provider!r}", ["path", "provider"])
    _existing_gateway(context, account_id, gateway_id)
    # ASSUMPTION: Cloudflare answers https://gateway.ai.cloudflare.com/v1/{a}/{g}/{provider}; the twin
    # answers its own data-plane base URL instead, so that the URL it gives is one that works.
    base = context.options.gateway_base_url or CLOUDFLARE_GATEWAY_HOST
    return ok(f"{base.rstrip('/')}/{account_id}/{gateway_id}/{provider}")


# --- provider configs -------------------------------------------------------------------------


def _byok_write_account(request: Request) -> str:
    """``authorized_account`` for provider-config writes."""
    # The spec lists "Secrets Store Write" as the token group for provider-config writes; the twin
    # asks for it on top of AI Gateway Write.
    account_id: str = request.path_params["account_id"]
    token = require(request, account_id, "ai_gateway:write")
    if not has_permission(token, "secrets_store:write"):
        raise CloudflareAPIError.single(403, CODE_AUTH, "Authentication error")
    return account_id


_ALIAS_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _gateway_store(context: TwinContext, account_id: str, gateway: dict[str, Any]) -> str:
    store_id = gateway.get("store_id")
    if not store_id or secrets.get_store(context.db, account_id, store_id) is None:
        raise validation_error(
            "the gateway has no Secrets Store: create one and set the gateway's store_id before storing a key",
            ["body", "secret"],
        )
    return str(store_id)


def _store_secret(context: TwinContext, account_id: str, store_id: str, name: str, value: str) -> dict[str, Any]:
    if secrets.find_secret_by_name(context.db, account_id, store_id, name) is None:
        from cftwin.secrets_store.responses import check_secret_quota

        check_secret_quota(context, account_id, 1)
    return secrets.put_secret(context.db, account_id, store_id, name, value, scopes=["ai_gateway"])


@_bad_request_with_result
async def list_provider_configs(request: Request) -> Response:
    account_id = authorized_account(request, "ai_gateway:read")
    context = twin_context(request)
    gateway_id = _path_gateway_id(request)
    page, per_page = parse_page_params(request, 20, 1, 100)
    _existing_gateway(context, account_id, gateway_id)
    chunk, info = page_slice(models.list_provider_configs(context.db, account_id, gateway_id), page, per_page)
    return ok(chunk, info)


async def create_provider_config(request: Request) -> Response:
    account_id = _byok_write_account(request)
    context = twin_context(request)
    gateway_id = _path_gateway_id(request)
    body = await read_json_object(request)
    for name in ("provider_slug", "default_config", "alias"):
        if name not in body:
            raise validation_error(f"{name} is required", ["body", name])
    slug = body["provider_slug"]
    if not isinstance(slug, str) or slug not in models.KNOWN_PROVIDER_SLUGS:
        raise validation_error(f"unknown provider_slug {slug!r}", ["body", "provider_slug"])
    alias = body["alias"]
    # ASSUMPTION: an alias is 1-64 of letters, digits, '_' and '-' (it becomes part of a secret name).
    if not isinstance(alias, str) or not 1 <= len(alias) <= 64 or not set(alias) <= _ALIAS_CHARS:
        raise validation_error("alias must be 1-64 letters, digits, '_' or '-'", ["body", "alias"])
    default_config = boolean(body["default_config"], ["body", "default_config"])
    rate_limit = body.get("rate_limit")
    if rate_limit is not None and (
        isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float) or rate_limit < 0
    ):
        raise validation_error("rate_limit must be a non-negative number", ["body", "rate_limit"])
    period = body.get("rate_limit_period", 60)
    if period is None:
        period = 60
    if isinstance(period, bool) or not isinstance(period, int | float) or period <= 0:
        raise validation_error("rate_limit_period must be a positive number", ["body", "rate_limit_period"])
    has_secret, has_secret_id = body.get("secret") is not None, body.get("secret_id") is not None
    if has_secret and has_secret_id:
        # ASSUMPTION: a config takes a new key or an existing secret, not both.
        raise validation_error("give secret or secret_id, not both", ["body", "secret_id"])
    if not has_secret and not has_secret_id:
        raise validation_error("secret (the provider key) or secret_id is required", ["body", "secret"])
    value = secret_value(body["secret"], ["body", "secret"]) if has_secret else None
    secret_id = body.get("secret_id")
    if has_secret_id and (not isinstance(secret_id, str) or not secret_id):
        raise validation_error("secret_id must be a non-empty string", ["body", "secret_id"])
    with context.db.transaction():
        gateway = _existing_gateway(context, account_id, gateway_id)
        if models.find_provider_config(context.db, account_id, gateway_id, slug, alias) is not None:
            # ASSUMPTION: a duplicate provider config is answered as a duplicate gateway is (7001).
            raise already_exists(f"A provider config for '{slug}' with alias '{alias}' already exists on this gateway",
                                 ["body", "alias"])
        if value is not None:
            store_id = _gateway_store(context, account_id, gateway)
            # ASSUMPTION: the key is stored as the secret the gateway looks up at run time,
            # {gateway_id}_{provider_slug}_{alias} (scope ai_gateway), replacing its value if it exists.
            stored = _store_secret(context, account_id, store_id, models.secret_name(gateway_id, slug, alias), value)
            secret_id, preview = stored["id"], secret_preview(value)
        else:
            assert isinstance(secret_id, str)
            existing_secret = secrets.find_secret(context.db, account_id, secret_id)
            if existing_secret is None:
                raise validation_error(f"secret_id {secret_id!r} is not a secret of this account",
                                       ["body", "secret_id"])
            if "ai_gateway" not in existing_secret["scopes"]:
                raise validation_error("the secret must have the ai_gateway scope", ["body", "secret_id"])
            # The store keeps only the value's last 4 characters (when it has 12 or more): the same preview.
            preview = "****" + (secrets.read_secret_hint_by_id(context.db, account_id, secret_id) or "")
        created = models.create_provider_config(
            context.db, account_id, gateway_id, provider_slug=slug, alias=alias, default_config=default_config,
            secret_id=secret_id, secret_preview=preview,
            rate_limit=float(rate_limit) if rate_limit is not None else None, rate_limit_period=float(period),
        )
    return ok(created)


async def update_provider_config(request: Request) -> Response:
    account_id = _byok_write_account(request)
    context = twin_context(request)
    gateway_id = _path_gateway_id(request)
    config_id = request.path_params["config_id"]
    body = await read_json_object(request)
    if "secret" not in body:
        raise validation_error("secret is required", ["body", "secret"])
    value = secret_value(body["secret"], ["body", "secret"])
    with context.db.transaction():
        gateway = _existing_gateway(context, account_id, gateway_id)
        config = models.get_provider_config(context.db, account_id, gateway_id, config_id)
        if config is None:
            raise not_found()
        current = secrets.find_secret(context.db, account_id, config["secret_id"])
        if current is not None:
            # Rotation writes the new value into the secret the config points at.
            secrets.update_secret(context.db, account_id, current["store_id"], current["id"], value=value)
            secret_id = current["id"]
        else:
            store_id = _gateway_store(context, account_id, gateway)
            name = models.secret_name(gateway_id, config["provider_slug"], config["alias"])
            secret_id = _store_secret(context, account_id, store_id, name, value)["id"]
        updated = models.update_provider_config_secret(
            context.db, account_id, gateway_id, config_id, secret_id=secret_id, secret_preview=secret_preview(value)
        )
    if updated is None:
        raise not_found()
    return ok(updated)


async def delete_provider_config(request: Request) -> Response:
    account_id = _byok_write_account(request)
    context = twin_context(request)
    gateway_id = _path_gateway_id(request)
    _existing_gateway(context, account_id, gateway_id)
    # ASSUMPTION: deleting a config leaves its Secrets Store secret in place (the store is the user's).
    deleted = models.delete_provider_config(context.db, account_id, gateway_id, request.path_params["config_id"])
    if deleted is None:
        raise not_found()
    return ok(deleted)


routes: list[BaseRoute] = [
    Route(_PREFIX, list_gateways, methods=["GET"]),
    Route(_PREFIX, create_gateway, methods=["POST"]),
    Route(_PREFIX + "/{id}", get_gateway, methods=["GET"]),
    Route(_PREFIX + "/{id}", update_gateway, methods=["PUT"]),
    Route(_PREFIX + "/{id}", delete_gateway, methods=["DELETE"]),
    Route(_PREFIX + "/{gateway_id}/url/{provider}", gateway_url, methods=["GET"]),
    Route(_PREFIX + "/{gateway_id}/provider_configs", list_provider_configs, methods=["GET"]),
    Route(_PREFIX + "/{gateway_id}/provider_configs", create_provider_config, methods=["POST"]),
    Route(_PREFIX + "/{gateway_id}/provider_configs/{config_id}", update_provider_config, methods=["PUT"]),
    Route(_PREFIX + "/{gateway_id}/provider_configs/{config_id}", delete_provider_config, methods=["DELETE"]),
]
