"""The REST API beside the gateway: ``POST /client/v4/accounts/{a}/ai/...``.

Source: cloudflare-docs ``ai-gateway/usage/rest-api.mdx`` (summarised in docs/PHASE4_API_ENDPOINTS.md):

* ``ai/v1/chat/completions`` (OpenAI chat completions), ``ai/v1/messages`` (Anthropic Messages),
  ``ai/v1/responses`` (OpenAI Responses), ``ai/run`` (``{model, input}`` for every model);
* a Cloudflare API token "that has AI Gateway permission" in ``Authorization: Bearer``, with the v4 API's
  auth, envelope and budget (``cftwin.auth.require``);
* the gateway named by ``cf-aig-gateway-id``, else the account's ``default`` gateway (created on first use,
  as the data plane creates it); ``cf-aig-*`` request headers apply as on the gateway;
* models ``author/model``: ``openai/…``, ``anthropic/…``, ``google/…`` (Google's author is ``google``; its
  gateway provider is ``google-ai-studio``);
* third-party models are billed through Unified Billing (``cftwin.dataplane.billing``).

Past the token check a request runs the gateway's own pipeline (``run_gateway_request``): rate limit, key,
cache, retries, log. Its refusals keep the gateway's shape; the REST API's own refusals are v4 errors.

ASSUMPTION: the permission is ``ai_gateway:run`` (Run is the permission to send traffic through a gateway;
Read and Edit alone are refused 403). ASSUMPTION: when the gateway holds a BYOK key (alias ``default``) for
the provider, that key pays (the credential order third parties quote from ``unified-billing.mdx``: request
key, then stored key, then Unified Billing); otherwise Unified Billing does. A provider key in the request
is not read: ``Authorization`` holds the Cloudflare token. No response header says which paid (no source
names one); the log's ``wholesale`` does.

ASSUMPTION: a ``cf-aig-gateway-id`` naming no gateway answers 400 / 2001 in the v4 envelope. ASSUMPTION: a
model whose author is not a provider answers 400 / 2005 (v4 envelope); ``@cf/…`` Workers AI models and
Cloudflare providers the twin does not emulate answer 501 (a limit of the twin, not Cloudflare's answer).
ASSUMPTION: the log's path is the REST path after ``ai/`` (``v1/chat/completions``, ``v1/messages``,
``v1/responses``, ``run``), ``compatibility_mode`` false.
ASSUMPTION (Responses): the input (a string, or messages with text content) is answered with one
``message`` output item and ``usage``; no tools, no state (``previous_response_id`` is refused), no stream.
ASSUMPTION (``ai/run``): a third-party model's ``result`` is ``{"response": text, "usage": {...}}``, the
shape of Workers AI's text generation; ``input`` is a prompt string, a list of messages, or an object with
``messages`` or ``prompt``; no stream.
ASSUMPTION (messages): the twin serves ``ai/v1/messages`` for ``anthropic/…`` models only (501 otherwise).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.auth import require
from cftwin.context import TwinContext, twin_context
from cftwin.dataplane.compat import from_native, to_native
from cftwin.dataplane.errors import CODE_GATEWAY_NOT_FOUND, CODE_INVALID_PROVIDER, CODE_NO_ROUTE
from cftwin.dataplane.options import read_options
from cftwin.dataplane.responses import (
    GatewayFlow,
    GatewayTarget,
    default_gateway,
    header_dict,
    parse_json,
    run_gateway_request,
)
from cftwin.envelope import CloudflareAPIError, validation_error
from cftwin.gateways.models import KNOWN_PROVIDER_SLUGS, get_gateway
from cftwin.logs.models import new_log_id
from cftwin.providers.engine import ProviderResult, dumps
from cftwin.providers.registry import PROVIDERS

__all__ = ["AUTHORS", "PERMISSION", "routes"]

PERMISSION: Final = "ai_gateway:run"
#: The REST API's model authors -> the gateway's provider slugs (rest-api.mdx: ``google/gemini-3-flash``).
AUTHORS: Final = {"openai": "openai", "anthropic": "anthropic", "google": "google-ai-studio"}
_PREFIX: Final = "/client/v4/accounts/{account_id}/ai/"

Reshape = Callable[[ProviderResult], ProviderResult]


def _refuse(status: int, code: int, message: str) -> CloudflareAPIError:
    return CloudflareAPIError.single(status, code, message)


def _provider_of(model: Any) -> tuple[str, str]:
    """``("google-ai-studio", "gemini-2.5-flash")`` for ``"google/gemini-2.5-flash"``; a v4 error otherwise."""
    if not isinstance(model, str) or not model:
        raise validation_error("'model' is required: 'author/model', e.g. 'openai/gpt-4o-mini'", ["body", "model"])
    if model.startswith("@cf/"):
        raise _refuse(501, CODE_INVALID_PROVIDER, f"the twin does not emulate Workers AI models ('{model}'); it "
                      "emulates openai/…, anthropic/… and google/… models")
    author, sep, name = model.partition("/")
    if not sep or not author or not name:
        raise _refuse(400, CODE_INVALID_PROVIDER, f"Invalid model '{model}': expected 'author/model', e.g. "
                      "'openai/gpt-4o-mini', 'anthropic/claude-sonnet-4', 'google/gemini-2.5-flash'")
    slug = AUTHORS.get(author, author)
    if slug not in PROVIDERS:
        if slug in KNOWN_PROVIDER_SLUGS:
            raise _refuse(501, CODE_INVALID_PROVIDER, f"the twin does not emulate provider '{author}'; it emulates "
                          f"{', '.join(sorted(AUTHORS))}")
        raise _refuse(400, CODE_INVALID_PROVIDER, f"Invalid model author '{author}' in '{model}': use "
                      f"{', '.join(sorted(AUTHORS))} (Google's author is 'google', not 'google-ai-studio')")
    if author not in AUTHORS:  # a gateway slug spelled as the author, e.g. google-ai-studio/…
        raise _refuse(400, CODE_INVALID_PROVIDER, f"Invalid model author '{author}' in '{model}': the REST API "
                      f"names the author, e.g. 'google/{name}'")
    return slug, name


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content
                         if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text"))
    return ""


def _no_stream(fields: dict[str, Any], endpoint: str) -> None:
    if fields.get("stream") is True:
        raise validation_error(f"the twin's {endpoint} does not stream; send stream false", ["body", "stream"])


def _responses_chat(fields: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a Responses API request."""
    _no_stream(fields, "ai/v1/responses")
    if fields.get("previous_response_id") is not None:
        raise validation_error("the twin keeps no responses: previous_response_id is not emulated",
                               ["body", "previous_response_id"])
    given = fields.get("input")
    if isinstance(given, str):
        messages: list[dict[str, Any]] = [{"role": "user", "content": given}]
    elif isinstance(given, list) and given and all(isinstance(m, dict) for m in given):
        messages = [{"role": m.get("role") if m.get("role") in ("user", "assistant", "system", "developer")
                     else "user", "content": _text(m.get("content"))} for m in given]
    else:
        raise validation_error("'input' must be a string or a non-empty list of messages", ["body", "input"])
    if isinstance(fields.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": fields["instructions"]})
    chat: dict[str, Any] = {"messages": messages}
    if fields.get("max_output_tokens") is not None:
        chat["max_tokens"] = fields["max_output_tokens"]
    for name in ("temperature", "top_p"):
        if name in fields:
            chat[name] = fields[name]
    return chat


def _run_chat(fields: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for an ``ai/run`` envelope."""
    _no_stream(fields, "ai/run")
    given = fields.get("input")
    if isinstance(given, dict):
        options = {k: v for k, v in given.items() if k in ("max_tokens", "temperature", "top_p")}
        given = given.get("messages", given.get("prompt"))
    else:
        options = {}
    if isinstance(given, str) and given:
        messages: list[Any] = [{"role": "user", "content": given}]
    elif isinstance(given, list) and given:
        messages = given
    else:
        raise validation_error("'input' must be a prompt string, a list of messages, or an object with "
                               "'messages' or 'prompt'", ["body", "input"])
    return {"messages": messages, **options}


def _json_of(result: ProviderResult) -> dict[str, Any] | None:
    data = result.data if isinstance(result.data, dict) else None
    if data is None:
        try:
            parsed = json.loads(result.body)
        except ValueError:
            return None
        data = parsed if isinstance(parsed, dict) else None
    return data


def _chat_text(completion: dict[str, Any]) -> tuple[str, str]:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return str(message.get("content") or ""), str(choice.get("finish_reason") or "stop")


def _as_response(fields: dict[str, Any]) -> Reshape:
    def reshape(result: ProviderResult) -> ProviderResult:
        completion = _json_of(result) if result.status == 200 else None
        if completion is None:
            return result
        text, finish = _chat_text(completion)
        tokens_in, tokens_out = result.tokens_in or 0, result.tokens_out or 0
        capped = finish == "length"
        body = {
            "id": "resp_" + secrets.token_hex(24), "object": "response", "created_at": int(time.time()),
            "status": "incomplete" if capped else "completed", "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if capped else None,
            "instructions": fields.get("instructions"), "max_output_tokens": fields.get("max_output_tokens"),
            "model": result.model, "parallel_tool_calls": True, "previous_response_id": None,
            "output": [{
                "type": "message", "id": "msg_" + secrets.token_hex(24),
                "status": "incomplete" if capped else "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }],
            "reasoning": {"effort": None, "summary": None}, "store": False,
            "temperature": fields.get("temperature", 1.0), "top_p": fields.get("top_p", 1.0),
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "truncation": "disabled",
            "usage": {
                "input_tokens": tokens_in, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": tokens_out, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tokens_in + tokens_out,
            },
            "metadata": fields.get("metadata") if isinstance(fields.get("metadata"), dict) else {},
        }
        return ProviderResult(status=200, data=body, model=result.model, tokens_in=result.tokens_in,
                              tokens_out=result.tokens_out)
    return reshape


def _as_run_envelope(result: ProviderResult) -> ProviderResult:
    completion = _json_of(result) if result.status == 200 else None
    if completion is None:
        return result
    text, _ = _chat_text(completion)
    tokens_in, tokens_out = result.tokens_in or 0, result.tokens_out or 0
    usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
    return ProviderResult(status=200, data={"result": {"response": text, "usage": usage}, "success": True,
                                            "errors": [], "messages": []},
                          model=result.model, tokens_in=result.tokens_in, tokens_out=result.tokens_out)


def _chain(first: Reshape, then: Reshape) -> Reshape:
    return lambda result: then(first(result))


def _target(endpoint: str, fields: dict[str, Any]) -> tuple[GatewayTarget, Reshape | None]:
    """What the provider is asked, and how its answer is reshaped for the endpoint."""
    slug, model = _provider_of(fields.get("model"))
    provider = PROVIDERS[slug]
    log_path = endpoint
    if endpoint == "v1/messages":
        if slug != "anthropic":
            raise _refuse(501, CODE_NO_ROUTE, f"the twin serves ai/v1/messages for anthropic/… models only, not "
                          f"'{fields.get('model')}'; use ai/v1/chat/completions")
        native = {**fields, "model": model}
        return GatewayTarget(provider, slug, model, log_path, "v1/messages", native, fields.get("stream") is True), None
    if endpoint == "v1/chat/completions":
        chat, reshape_more = fields, None
    elif endpoint == "v1/responses":
        chat, reshape_more = _responses_chat(fields), _as_response(fields)
    else:
        chat, reshape_more = _run_chat(fields), _as_run_envelope
    compat = to_native(slug, model, {**chat, "model": model})
    target = GatewayTarget(provider, slug, model, log_path, compat.path, compat.body, compat.stream, compat=compat)

    def translate(result: ProviderResult) -> ProviderResult:
        return from_native(compat, result)
    return target, translate if reshape_more is None else _chain(translate, reshape_more)


def _gateway(ctx: TwinContext, account_id: str, headers: dict[str, str]) -> dict[str, Any]:
    gateway_id = (headers.get("cf-aig-gateway-id") or "").strip() or "default"
    gateway = get_gateway(ctx.db, account_id, gateway_id)
    if gateway is None and gateway_id == "default":
        gateway = default_gateway(ctx, account_id)
    if gateway is None:
        raise _refuse(400, CODE_GATEWAY_NOT_FOUND, f"Please configure AI Gateway in the Cloudflare dashboard: no "
                      f"gateway '{gateway_id}' (cf-aig-gateway-id) on this account")
    return gateway


async def _serve(request: Request, endpoint: str) -> Response:
    started = time.perf_counter()
    ctx = twin_context(request)
    account_id: str = request.path_params["account_id"]
    require(request, account_id, PERMISSION)
    headers = header_dict(request)
    body = await request.body()
    fields = parse_json(body)
    if not isinstance(fields, dict):
        raise validation_error("the body must be a JSON object", ["body"])
    target, reshape = _target(endpoint, fields)
    gateway = _gateway(ctx, account_id, headers)
    log_id = new_log_id()
    flow = GatewayFlow(ctx, request, account_id, gateway, target, read_options(headers, gateway),
                       # The logged request is the one the caller sent, model name as given.
                       body if body else dumps(fields), log_id, started,
                       {"cf-aig-step": "0", "cf-aig-request-id": log_id}, headers)
    return await run_gateway_request(flow, request_key=None, byok_alias=None, translated=True, reshape=reshape,
                                     unified_billing=True)


async def chat_completions(request: Request) -> Response:
    return await _serve(request, "v1/chat/completions")


async def messages(request: Request) -> Response:
    return await _serve(request, "v1/messages")


async def responses(request: Request) -> Response:
    return await _serve(request, "v1/responses")


async def run(request: Request) -> Response:
    return await _serve(request, "run")


routes: list[BaseRoute] = [
    Route(_PREFIX + "v1/chat/completions", chat_completions, methods=["POST"]),
    Route(_PREFIX + "v1/messages", messages, methods=["POST"]),
    Route(_PREFIX + "v1/responses", responses, methods=["POST"]),
    Route(_PREFIX + "run", run, methods=["POST"]),
]
