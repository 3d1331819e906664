"""``/v1/{account_id}/{gateway_id}/...``: the gateway data plane.

* ``.../{provider}/{provider path}`` (provider-native: ``openai/chat/completions``,
  ``anthropic/v1/messages``, ``google-ai-studio/v1beta/models/{m}:generateContent``),
* ``.../compat/chat/completions`` (OpenAI format, ``model`` = ``{provider}/{model}``),
* ``POST /v1/{account_id}/{gateway_id}`` (the universal endpoint: an array of fallback steps).

Every request runs the same steps (see ``cftwin.dataplane``). Response headers: ``cf-aig-step``
(``0``, or the universal step that answered), ``cf-aig-request-id``, and ``cf-aig-log-id`` (the same
ULID) when the request was logged; ``cf-aig-cache-status`` (``HIT`` / ``MISS``) when caching applied.
ASSUMPTION: ``cf-aig-model`` / ``cf-aig-provider`` are sent only by dynamic routes (not emulated), so
these endpoints do not send them.

What is logged: ASSUMPTION: every request past authentication, gateway refusals such as 2003 (rate
limited), 2040 and 408 included (``success`` false, their status); a request refused with 401 / 2009
is not logged (it is not the gateway owner's traffic), and neither is one to a gateway that does not
exist. ``cf-aig-collect-log: true|false`` overrides the gateway's ``collect_logs`` for the request.

ASSUMPTION (compat): the log names the real provider and model (``google-ai-studio``,
``gemini-2.5-flash``), path ``compat/chat/completions``, ``compatibility_mode`` true; the answer's
``model`` is the bare model; a provider's error passes through in the provider's own format.

ASSUMPTION (cache): ``cf-aig-skip-cache: true`` neither reads nor writes the cache and sends no
``cf-aig-cache-status``. Retries (``cf-aig-max-attempts``) follow a provider 429/5xx or a timeout;
``cf-aig-request-timeout`` applies to each attempt (time to the provider's first byte).

The gateway ``default`` is created by the first authenticated request to it, as Cloudflare does.

Why one module of about 560 lines: it is the one pass a data-plane request makes (target, admission,
attempts, finish, the universal endpoint's steps), read top to bottom; what stands apart already lives
beside it (options, keys, cache, compat, logwriter, billing, ratelimit, errors), and this is the hot path
``bench/throughput.py`` measures, kept in one place for whoever optimises it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.convertors import PathConvertor, register_url_convertor
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cftwin import jsonbody
from cftwin.auth import account_gateway_limit, find_token
from cftwin.context import TwinContext, twin_context
from cftwin.dataplane import billing
from cftwin.dataplane import cache as gateway_cache
from cftwin.dataplane.compat import CompatTarget, from_native, split_model, to_native
from cftwin.dataplane.errors import (
    CODE_BAD_REQUEST,
    CODE_GATEWAY_NOT_FOUND,
    CODE_INVALID_PROVIDER,
    CODE_NO_ROUTE,
    CODE_RATE_LIMITED,
    CODE_TIMEOUT,
    CODE_UNAUTHORIZED,
    gateway_error,
)
from cftwin.dataplane.keys import KeyChoice, KeyRefusal, resolve_key
from cftwin.dataplane.logwriter import LogWriter
from cftwin.dataplane.options import (
    MAX_ATTEMPTS,
    MAX_RETRY_DELAY_MS,
    RequestOptions,
    read_options,
    retry_delay_ms,
)
from cftwin.dataplane.ratelimit import limits_of
from cftwin.gateways.models import KNOWN_PROVIDER_SLUGS, count_gateways, create_gateway, get_gateway
from cftwin.limits import MAX_CACHEABLE_REQUEST_BYTES, MAX_STORED_LOG_BYTES
from cftwin.logs.models import LogRow, new_log_id
from cftwin.providers.engine import Provider, ProviderRequest, ProviderResult, bearer_value, dumps
from cftwin.providers.google import model_from_path
from cftwin.providers.pricing import cost_usd
from cftwin.providers.registry import PROVIDERS
from cftwin.providers.responses import render

__all__ = [
    "GatewayFlow", "GatewayTarget", "default_gateway", "header_dict", "parse_json", "routes", "run_gateway_request",
]

_RUN_PERMISSION: Final = "ai_gateway:run"
_RETRYABLE: Final = frozenset({429, 500, 502, 503, 504, 529})
#: What the gateway sends a provider with a request it translated (compat): the provider's own headers.
_COMPAT_HEADERS: Final = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
#: Immutable, so one serves every request without a query string (Starlette would parse one per request).
_NO_QUERY: Final = QueryParams("")


@dataclass(slots=True)
class GatewayTarget:
    """What a request asks for, once its path and body are read."""

    provider: Provider | None  # None: refused before any provider (``refusal`` says why)
    slug: str
    model: str
    path: str  # the provider path, as logged
    call_path: str  # the provider's own path the call goes to
    parsed: Any
    stream: bool
    compat: CompatTarget | None = None
    refusal: Response | None = None


def _authorized(ctx: TwinContext, account_id: str, header: str | None) -> bool:
    value = bearer_value(header)
    if value is None:
        return False
    token = find_token(ctx.db, value)
    return (
        token is not None
        and token.status == "active"
        and account_id in token.account_ids
        and _RUN_PERMISSION in token.permissions
    )


def parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return jsonbody.loads(body)
    except ValueError:
        return None


def _target(rest: str, body: bytes) -> GatewayTarget:
    slug, _, provider_path = rest.partition("/")
    parsed = parse_json(body)
    fields = parsed if isinstance(parsed, dict) else {}
    stream = fields.get("stream") is True
    if slug == "compat":
        model_field = fields.get("model")
        split = split_model(model_field)
        shown = model_field if isinstance(model_field, str) else ""
        if provider_path != "chat/completions":
            return GatewayTarget(None, "compat", shown, rest, rest, parsed, stream,
                           refusal=gateway_error(400, CODE_NO_ROUTE, "No route for the URI"))
        if split is None or split[0] not in PROVIDERS:
            # ASSUMPTION: e.g. "google/gemini-2.5-flash" (not Cloudflare's slug google-ai-studio), or a
            # model without a provider prefix, is refused by the gateway before any provider.
            prefix = split[0] if split else ""
            message = (f"Invalid provider '{prefix}' in model '{shown}': use '{{provider}}/{{model}}' with a provider "
                       f"slug such as google-ai-studio, openai or anthropic" if split else
                       f"Invalid model '{shown}': expected '{{provider}}/{{model}}', e.g. "
                       "'google-ai-studio/gemini-2.5-flash'")
            return GatewayTarget(None, prefix or "compat", split[1] if split else shown, rest, rest, parsed, stream,
                           refusal=gateway_error(400, CODE_INVALID_PROVIDER, message))
        provider_slug, model = split
        compat = to_native(provider_slug, model, fields)
        return GatewayTarget(PROVIDERS[provider_slug], provider_slug, model, rest, compat.path, compat.body,
                       stream, compat=compat)
    return _native_target(slug, provider_path, parsed)


def _native_target(slug: str, provider_path: str, parsed: Any) -> GatewayTarget:
    """A provider-native request: ``{slug}/{provider_path}`` with the (parsed) body."""
    fields = parsed if isinstance(parsed, dict) else {}
    stream = fields.get("stream") is True
    provider = PROVIDERS.get(slug)
    if provider is None:
        if slug in KNOWN_PROVIDER_SLUGS:
            message = f"the twin does not emulate provider '{slug}'; it emulates {', '.join(sorted(PROVIDERS))}"
            return GatewayTarget(None, slug, "", provider_path, provider_path, parsed, stream,
                           refusal=gateway_error(501, CODE_NO_ROUTE, message))
        return GatewayTarget(None, slug or "unknown", "", provider_path, provider_path, parsed, stream,
                       refusal=gateway_error(400, CODE_NO_ROUTE, "No route for the URI"))
    if slug == "openai":
        # .../openai/ replaces https://api.openai.com/v1/ (so .../openai/v1/... is OpenAI's /v1/v1/...: a 404).
        requested = fields.get("model")
        return GatewayTarget(provider, slug, requested if isinstance(requested, str) else "", provider_path,
                       "v1/" + provider_path, parsed, stream)
    if slug == "google-ai-studio":
        found = model_from_path(provider_path)
        stream = found is not None and found[2] == "streamGenerateContent"
        return GatewayTarget(provider, slug, found[1] if found else "", provider_path, provider_path, parsed, stream)
    requested = fields.get("model")
    return GatewayTarget(provider, slug, requested if isinstance(requested, str) else "", provider_path, provider_path,
                   parsed, stream)


async def _call(ctx: TwinContext, provider: Provider, call: ProviderRequest,
                options: RequestOptions) -> ProviderResult | None:
    """The provider's answer after retries (5xx/429) and per-attempt timeouts; None: the last attempt timed out."""
    result: ProviderResult | None = None
    for attempt in range(1, options.max_attempts + 1):
        try:
            if options.timeout_ms is not None:
                result = await asyncio.wait_for(provider.handle(ctx, call), options.timeout_ms / 1000)
            else:
                result = await provider.handle(ctx, call)
        except TimeoutError:
            result = None
        if result is not None and result.status not in _RETRYABLE:
            return result
        if attempt < options.max_attempts:
            await asyncio.sleep(retry_delay_ms(options, attempt) / 1000)
    return result


def _cost(slug: str, model: str, result_tokens: tuple[int | None, int | None],
          options: RequestOptions) -> tuple[float, bool]:
    tokens_in, tokens_out = result_tokens
    if options.custom_cost is not None:
        per_in, per_out = options.custom_cost
        return round((tokens_in or 0) * per_in + (tokens_out or 0) * per_out, 10), True
    return cost_usd(slug, model, tokens_in, tokens_out), False


def header_dict(request: Request) -> dict[str, str]:
    """The request headers as a plain dict (names lower-case; the first of repeated names wins):
    one pass here instead of a scan of the header list for every lookup."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])}


def _log_writer(request: Request) -> LogWriter:
    state = request.app.state
    writer: LogWriter | None = getattr(state, "dataplane_log_writer", None)
    if writer is None:
        writer = LogWriter()
        state.dataplane_log_writer = writer
    return writer


@dataclass(slots=True)
class GatewayFlow:
    """One gateway request on its way through: what ``_finish`` needs to log and answer it."""

    ctx: TwinContext
    request: Request
    account_id: str
    gateway: dict[str, Any]
    target: GatewayTarget
    options: RequestOptions
    body: bytes
    log_id: str
    started: float
    headers: dict[str, str]
    request_headers: dict[str, str]
    #: Paid through Unified Billing (Cloudflare's key, the account's credits): the log's ``wholesale``.
    wholesale: bool = False


# Cloudflare's default gateway, as auto-created on the first authenticated request to id "default":
# authenticated, logs on, caching off, rate limiting off.
_DEFAULT_GATEWAY: Final[dict[str, Any]] = {
    "id": "default", "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
    "rate_limiting_interval": 0, "rate_limiting_limit": 0, "rate_limiting_technique": "fixed",
    "authentication": True, "is_default": True, "log_management": None, "log_management_strategy": None,
    "logpush": False, "logpush_public_key": None, "retry_backoff": None, "retry_delay": None,
    "retry_max_attempts": None, "store_id": None, "workers_ai_billing_mode": "postpaid", "zdr": False,
}


def default_gateway(ctx: TwinContext, account_id: str) -> dict[str, Any] | None:
    """Create the account's ``default`` gateway (None when the account is at its gateway limit)."""
    db = ctx.db
    if count_gateways(db, account_id) >= account_gateway_limit(db, account_id, ctx.options.gateway_limit):
        return None
    try:
        return create_gateway(db, account_id, dict(_DEFAULT_GATEWAY))
    except sqlite3.IntegrityError:  # created by a concurrent request
        return get_gateway(db, account_id, "default")


def _admit(ctx: TwinContext, account_id: str, gateway_id: str,
           headers: dict[str, str]) -> dict[str, Any] | Response:
    """The gateway, once the request may use it; else the gateway's refusal (not logged)."""
    db = ctx.db
    gateway = get_gateway(db, account_id, gateway_id)
    if gateway is None and gateway_id == "default" and _authorized(ctx, account_id,
                                                                    headers.get("cf-aig-authorization")):
        gateway = default_gateway(ctx, account_id)
    if gateway is None:
        return gateway_error(400, CODE_GATEWAY_NOT_FOUND, "Please configure AI Gateway in the Cloudflare dashboard")
    if gateway.get("authentication") and not _authorized(ctx, account_id, headers.get("cf-aig-authorization")):
        return gateway_error(401, CODE_UNAUTHORIZED, "Unauthorized")
    return gateway


def _rate_limited(flow: GatewayFlow) -> bool:
    limits = limits_of(flow.gateway)
    if limits is None:
        return False
    key = (flow.account_id, str(flow.gateway["id"]), str(flow.gateway.get("created_at")))
    allowed, _ = flow.ctx.gateway_limiter.allow(key, *limits)
    return not allowed


async def gateway_endpoint(request: Request) -> Response:
    started = time.perf_counter()
    ctx = twin_context(request)
    account_id: str = request.path_params["account_id"]
    gateway_id: str = request.path_params["gateway_id"]
    headers = header_dict(request)
    admitted = _admit(ctx, account_id, gateway_id, headers)
    if isinstance(admitted, Response):
        return admitted
    gateway = admitted

    body = await request.body()
    target = _target(request.path_params["rest"], body)
    options = read_options(headers, gateway)
    log_id = new_log_id()
    flow = GatewayFlow(ctx, request, account_id, gateway, target, options, body, log_id, started,
                 {"cf-aig-step": "0", "cf-aig-request-id": log_id}, headers)
    compat = target.compat
    if compat is None or target.provider is None:
        request_key = target.provider.request_key(headers, request.query_params) if target.provider else None
        return await run_gateway_request(flow, request_key=request_key, byok_alias=options.byok_alias)
    # On the compat endpoint a provider key travels as Authorization: Bearer, whatever the provider;
    # only provider-native endpoints honour cf-aig-byok-alias (compat uses the default key).
    return await run_gateway_request(flow, request_key=bearer_value(headers.get("authorization")), byok_alias=None,
                                     translated=True, reshape=lambda result: from_native(compat, result))


async def run_gateway_request(
    flow: GatewayFlow,
    *,
    request_key: str | None,
    byok_alias: str | None,
    translated: bool = False,
    reshape: Callable[[ProviderResult], ProviderResult] | None = None,
    unified_billing: bool = False,
) -> Response:
    """A request admitted to its gateway (``flow``: target, options, log id chosen), from the rate limit on:
    key choice, cache, the provider call with retries, ``reshape`` of a fresh answer, the log.

    ``translated``: the provider is sent ``target.parsed`` with the provider's own headers (a request the
    gateway rewrote), not the request's body and headers. ``unified_billing``: with no key on the request
    and no BYOK key, Cloudflare's own key pays from the account's credits (the REST API).
    """
    ctx, target, options, headers = flow.ctx, flow.target, flow.options, flow.request_headers
    db = ctx.db
    account_id, gateway = flow.account_id, flow.gateway
    gateway_id = str(gateway["id"])
    if target.refusal is not None:
        return await _finish(flow, refusal=target.refusal)
    provider = target.provider
    assert provider is not None
    if _rate_limited(flow):
        return await _finish(flow, refusal=gateway_error(429, CODE_RATE_LIMITED, "Rate limited"))

    query = flow.request.query_params if flow.request.scope.get("query_string") else _NO_QUERY
    choice = resolve_key(db, account_id, gateway, target.slug, request_key, byok_alias,
                         secret_pending_s=ctx.options.secret_pending_s)
    if isinstance(choice, KeyRefusal):
        return await _finish(flow, refusal=gateway_error(choice.status, choice.code, choice.message, extended=True))
    if unified_billing and choice.source == "none":
        if billing.balance_usd(db, account_id, ctx.options.unified_billing_credits_usd) <= 0:
            return await _finish(flow, refusal=billing.no_credits_response())
        choice = KeyChoice(billing.wholesale_key(db, target.slug), "unified")
        flow.wholesale = True

    cache_key: str | None = None
    if options.cache_ttl_s > 0 and not target.stream and len(flow.body) <= MAX_CACHEABLE_REQUEST_BYTES:
        if options.cache_key is not None:
            cache_key = gateway_cache.cache_key(account_id, gateway_id, "custom", options.cache_key)
        else:
            # cache_invalidate_on_update: the gateway's modified_at is part of the key, so an update
            # makes every earlier entry unreachable.
            invalidation = str(gateway.get("modified_at")) if gateway.get("cache_invalidate_on_update") else ""
            cache_key = gateway_cache.cache_key(account_id, gateway_id, target.slug, target.path, target.model,
                                                flow.body, choice.source, request_key or "", invalidation)
        if not options.skip_cache:
            hit = gateway_cache.cache_get(db, cache_key)
            flow.headers["cf-aig-cache-status"] = "HIT" if hit is not None else "MISS"
            if hit is not None:
                return await _finish(flow, cached=True, result=ProviderResult(
                    status=hit.status, raw=hit.body, content_type=hit.content_type, model=hit.model,
                    tokens_in=hit.tokens_in, tokens_out=hit.tokens_out))

    if ctx.options.gateway_overhead_ms > 0:
        await asyncio.sleep(ctx.options.gateway_overhead_ms / 1000)
    call = ProviderRequest(
        method=flow.request.method, path=target.call_path, query=query,
        headers=_COMPAT_HEADERS if translated else headers,
        # A translated request goes over as its parsed value; nothing re-encodes it.
        body=b"" if translated else flow.body, key=choice.key,
        parsed=target.parsed if isinstance(target.parsed, dict) else None,
    )
    result = await _call(ctx, provider, call, options)
    if result is None:
        return await _finish(flow, refusal=gateway_error(408, CODE_TIMEOUT, "Request timed out"))
    if reshape is not None:
        result = reshape(result)
    if cache_key is not None and not options.skip_cache and result.status == 200 and not result.streamed:
        gateway_cache.cache_put(db, cache_key, account_id, gateway_id, gateway_cache.CachedResponse(
            result.status, result.content_type, result.body, target.slug, result.model or target.model,
            result.tokens_in, result.tokens_out), options.cache_ttl_s,
            readable_after_s=flow.ctx.options.cache_write_delay_s)
    return await _finish(flow, result=result)


async def _finish(
    flow: GatewayFlow, *, result: ProviderResult | None = None, refusal: Response | None = None, cached: bool = False
) -> Response:
    """Write the log (when collected) and build the response."""
    target, options = flow.target, flow.options
    if refusal is not None:
        status, response_body, content_type = refusal.status_code, bytes(refusal.body), "application/json"
        tokens: tuple[int | None, int | None] = (None, None)
        model = target.model
    else:
        assert result is not None
        status, response_body, content_type = result.status, result.payload, result.content_type
        tokens = (result.tokens_in, result.tokens_out) if result.status == 200 else (None, None)
        model = result.model or target.model
    success = 200 <= status < 300
    if flow.wholesale and success and not cached:
        # Unified Billing pays the provider's price, whatever cf-aig-custom-cost says the log should show.
        billing.spend(flow.ctx.db, flow.account_id, cost_usd(target.slug, model, *tokens))
    payload = options.collect_payload
    stored_bytes = len(flow.body) + len(response_body) if payload else 0
    # Legacy Logs does not store a log over 10 MB (cftwin.limits): the request is served, unlogged.
    if options.collect_log and stored_bytes <= MAX_STORED_LOG_BYTES:
        # ASSUMPTION: a cache hit costs nothing (no provider call), so its log's cost is 0.
        cost, custom = _cost(target.slug, model, tokens, options) if success and not cached else (0.0, False)
        request_headers = flow.request_headers
        await _log_writer(flow.request).write(flow.ctx.db, flow.account_id, flow.gateway["id"], LogRow(
            id=flow.log_id,
            provider=target.slug,
            model=model,
            path=target.path,
            duration=int((time.perf_counter() - flow.started) * 1000),
            success=success,
            cached=cached,
            status_code=status,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost=cost,
            custom_cost=custom,
            metadata=options.metadata,
            event_id=options.event_id,
            step=int(flow.headers["cf-aig-step"]),
            request_content_type=request_headers.get("content-type"),
            response_content_type=content_type,
            request_body=flow.body if payload else None,
            response_body=response_body if payload else None,
            user_agent=request_headers.get("user-agent"),
            authentication=bool(flow.gateway.get("authentication")),
            wholesale=flow.wholesale,
            compatibility_mode=target.path.startswith("compat/"),
        ), delay_s=flow.ctx.options.log_delay_s)
        flow.headers["cf-aig-log-id"] = flow.log_id
    if refusal is not None:
        refusal.headers.update(flow.headers)
        return refusal
    assert result is not None
    return render(result, flow.headers)


_BACKOFFS: Final = ("constant", "linear", "exponential")


def _step_options(options: RequestOptions, config: Any) -> RequestOptions:
    """A universal step's ``config`` (requestTimeout, maxAttempts, retryDelay, backoff) over the request's."""
    if not isinstance(config, dict):
        return options
    changes: dict[str, Any] = {}
    for name, field_name in (("requestTimeout", "timeout_ms"), ("maxAttempts", "max_attempts"),
                             ("retryDelay", "retry_delay_ms")):
        value = config.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            changes[field_name] = value
    if "max_attempts" in changes:
        changes["max_attempts"] = min(MAX_ATTEMPTS, max(1, changes["max_attempts"]))
    if "retry_delay_ms" in changes:
        changes["retry_delay_ms"] = min(MAX_RETRY_DELAY_MS, changes["retry_delay_ms"])
    if changes.get("timeout_ms") == 0:
        changes["timeout_ms"] = None
    if config.get("backoff") in _BACKOFFS:
        changes["backoff"] = config["backoff"]
    return dataclasses.replace(options, **changes)


_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "x-api-key", "x-goog-api-key", "cf-aig-authorization"})


def _redacted_step(step: dict[str, Any]) -> dict[str, Any]:
    headers = step.get("headers")
    if not isinstance(headers, dict):
        return step
    return {**step, "headers": {k: "***" if str(k).lower() in _CREDENTIAL_HEADERS else v for k, v in headers.items()}}


async def universal_endpoint(request: Request) -> Response:
    """``POST /v1/{account_id}/{gateway_id}``: a JSON array of steps ``{provider, endpoint, headers, query,
    config?}`` tried in order; the first that succeeds answers, with ``cf-aig-step`` its index.

    ASSUMPTION: a step falls back to the next on any non-2xx answer or a timeout; the request is
    logged once, for the step that answered (or the last one tried), with that step's index. Provider
    keys come from each step's ``headers``, else the gateway's default BYOK key.
    """
    started = time.perf_counter()
    ctx = twin_context(request)
    account_id: str = request.path_params["account_id"]
    headers = header_dict(request)
    admitted = _admit(ctx, account_id, request.path_params["gateway_id"], headers)
    if isinstance(admitted, Response):
        return admitted
    gateway = admitted
    body = await request.body()
    parsed = parse_json(body)
    steps = [parsed] if isinstance(parsed, dict) else parsed
    log_id = new_log_id()
    flow = GatewayFlow(ctx, request, account_id, gateway, GatewayTarget(None, "universal", "", "", "", parsed, False),
                 read_options(headers, gateway), body, log_id, started,
                 {"cf-aig-step": "0", "cf-aig-request-id": log_id}, headers)
    if not isinstance(steps, list) or not steps or not all(isinstance(step, dict) for step in steps):
        return await _finish(flow, refusal=gateway_error(
            400, CODE_BAD_REQUEST, "The universal endpoint takes a JSON array of steps {provider, endpoint, "
            "headers, query}"))
    # Steps carry provider keys in their headers: the logged copy of the body never holds them.
    flow.body = dumps([_redacted_step(step) for step in steps])
    if _rate_limited(flow):
        return await _finish(flow, refusal=gateway_error(429, CODE_RATE_LIMITED, "Rate limited"))
    if ctx.options.gateway_overhead_ms > 0:
        await asyncio.sleep(ctx.options.gateway_overhead_ms / 1000)
    outcome: ProviderResult | Response | None = None
    for index, step in enumerate(steps):
        flow.headers["cf-aig-step"] = str(index)
        raw_headers = step.get("headers")
        step_headers = ({str(k).lower(): str(v) for k, v in raw_headers.items()}
                        if isinstance(raw_headers, dict) else {})
        query = step.get("query")
        target = _native_target(str(step.get("provider") or ""), str(step.get("endpoint") or "").lstrip("/"), query)
        flow.target = target
        if target.refusal is not None or target.provider is None:
            outcome = target.refusal
            continue
        choice = resolve_key(ctx.db, account_id, gateway, target.slug, target.provider.request_key(step_headers, {}),
                             None, secret_pending_s=ctx.options.secret_pending_s)
        if isinstance(choice, KeyRefusal):
            outcome = gateway_error(choice.status, choice.code, choice.message, extended=True)
            continue
        call = ProviderRequest(method="POST", path=target.call_path, query={}, headers=step_headers, body=b"",
                               key=choice.key, parsed=query if isinstance(query, dict) else None)
        result = await _call(ctx, target.provider, call, _step_options(flow.options, step.get("config")))
        if result is None:
            outcome = gateway_error(408, CODE_TIMEOUT, "Request timed out")
            continue
        outcome = result
        if 200 <= result.status < 300:
            break
    if isinstance(outcome, ProviderResult):
        return await _finish(flow, result=outcome)
    assert outcome is not None
    return await _finish(flow, refusal=outcome)


class _SubPath(PathConvertor):
    """A path of at least one character: ``{rest:cftwin_subpath}`` never takes ``/v1/{a}/{g}/`` itself."""

    regex = ".+"


register_url_convertor("cftwin_subpath", _SubPath())

# Starlette tries routes in order: the provider and compat endpoints (nearly every request) first, on a path that
# is never the universal endpoint's; then the universal endpoint; then the endpoints again for what is left
# (GET .../{gateway_id}/, which the universal endpoint refuses with 405 on its method alone): as before.
routes = [
    Route("/v1/{account_id}/{gateway_id}/{rest:cftwin_subpath}", gateway_endpoint, methods=["GET", "POST"]),
    Route("/v1/{account_id}/{gateway_id}", universal_endpoint, methods=["POST"]),
    Route("/v1/{account_id}/{gateway_id}/", universal_endpoint, methods=["POST"]),
    Route("/v1/{account_id}/{gateway_id}/{rest:path}", gateway_endpoint, methods=["GET", "POST"]),
]
