"""The emulated Anthropic API: ``POST v1/messages`` (and streaming), ``GET v1/models``.

The key travels as ``x-api-key`` or ``Authorization: Bearer`` (anthropic 2.x sends the latter).
Errors are ``{"type": "error", "error": {type, message}, "request_id": ...}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Final

from cftwin import jsonbody
from cftwin.context import TwinContext
from cftwin.providers import pricing
from cftwin.providers.engine import (
    Completion,
    ProviderRequest,
    ProviderResult,
    bearer_value,
    complete,
    json_result,
    sse_event,
    upstream_conditions,
)
from cftwin.providers.models import is_provider_key_valid

__all__ = ["PROVIDER", "AnthropicProvider", "anthropic_error", "message_body", "prompt_text"]

SLUG: Final = "anthropic"

_SERVER_ERRORS: Final[dict[int, tuple[str, str]]] = {
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def _request_id() -> str:
    return "req_" + secrets.token_hex(12)


def anthropic_error(status: int, type_: str, message: str) -> ProviderResult:
    request_id = _request_id()
    return json_result(
        status,
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id},
        headers={"request-id": request_id},
    )


def _block_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for block in content:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                return None
            if block["type"] == "text":
                if not isinstance(block.get("text"), str):
                    return None
                texts.append(block["text"])
        return "\n".join(texts)
    return None


def prompt_text(system: Any, messages: list[Any]) -> str | ProviderResult:
    """The system prompt and every message's text joined, or the 400 a malformed body gets."""
    texts: list[str] = []
    if system is not None:
        text = _block_text(system)
        if text is None:
            return anthropic_error(400, "invalid_request_error", "system: Input should be a valid list")
        texts.append(text)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return anthropic_error(400, "invalid_request_error",
                                   f"messages.{index}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            return anthropic_error(
                400, "invalid_request_error",
                f"messages.{index}.role: Input should be 'user' or 'assistant'",
            )
        text = _block_text(message.get("content"))
        if text is None:
            return anthropic_error(400, "invalid_request_error", f"messages.{index}.content: Field required")
        texts.append(text)
    return "\n".join(texts)


def _stop_reason(completion: Completion) -> str:
    return "end_turn" if completion.finish == "stop" else "max_tokens"


def _usage(completion: Completion) -> dict[str, Any]:
    return {
        "input_tokens": completion.tokens_in,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": completion.tokens_out,
        "service_tier": "standard",
    }


def message_body(model: str, completion: Completion, *, message_id: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id or "msg_" + secrets.token_urlsafe(18),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": _stop_reason(completion),
        "stop_sequence": None,
        "usage": _usage(completion),
    }


def stream_events(model: str, completion: Completion) -> list[bytes]:
    """``message_start``, a text block's deltas, ``message_delta`` (with usage) and ``message_stop``."""
    start_usage = _usage(completion) | {"output_tokens": 1}
    events = [
        sse_event({"type": "message_start", "message": {
            "id": "msg_" + secrets.token_urlsafe(18), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage,
        }}, "message_start"),
        sse_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  "content_block_start"),
        sse_event({"type": "ping"}, "ping"),
    ]
    events += [
        sse_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                  "content_block_delta")
        for piece in completion.deltas()
    ]
    events += [
        sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_event({
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(completion), "stop_sequence": None},
            "usage": {"output_tokens": completion.tokens_out},
        }, "message_delta"),
        sse_event({"type": "message_stop"}, "message_stop"),
    ]
    return events


class AnthropicProvider:
    slug: str = SLUG

    def request_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        key = (headers.get("x-api-key") or "").strip()
        return key or bearer_value(headers.get("authorization"))

    def error_for_status(self, status: int) -> ProviderResult:
        type_, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return anthropic_error(status, type_, message)

    async def handle(self, ctx: TwinContext, request: ProviderRequest) -> ProviderResult:
        injected = await upstream_conditions(ctx, self)
        if injected is not None:
            return injected
        if request.key is None:
            return anthropic_error(401, "authentication_error", "x-api-key header is required")
        if not is_provider_key_valid(ctx.db, SLUG, request.key):
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        path = request.path.strip("/")
        if path == "v1/models" and request.method == "GET":
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                    for m in pricing.model_names(SLUG)]
            return json_result(200, {"data": data, "has_more": False,
                                     "first_id": data[0]["id"] if data else None,
                                     "last_id": data[-1]["id"] if data else None})
        if path != "v1/messages" or request.method != "POST":
            return anthropic_error(404, "not_found_error", "Not Found")
        # ASSUMPTION: any non-empty anthropic-version is accepted (the SDK sends dated versions the
        # twin cannot enumerate); a missing one is refused as Anthropic does.
        if not (request.headers.get("anthropic-version") or "").strip():
            return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
        return self._messages(request)

    def _messages(self, request: ProviderRequest) -> ProviderResult:
        body = request.parsed
        if body is None:
            try:
                body = jsonbody.loads(request.body)
            except ValueError:
                return anthropic_error(400, "invalid_request_error", "There was an issue with your request body: "
                                       "not valid JSON")
        if not isinstance(body, dict):
            return anthropic_error(400, "invalid_request_error", "Input should be a valid dictionary")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return anthropic_error(400, "invalid_request_error", "model: Field required")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            return anthropic_error(400, "invalid_request_error", "max_tokens: Input should be greater than or "
                                   "equal to 1")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return anthropic_error(400, "invalid_request_error", "messages: Field required")
        if not messages:
            return anthropic_error(400, "invalid_request_error", "messages: at least one message is required")
        text = prompt_text(body.get("system"), messages)
        if isinstance(text, ProviderResult):
            return text
        if pricing.find_model(SLUG, model) is None:
            return anthropic_error(404, "not_found_error", f"model: {model}")
        completion = complete(SLUG, model, text, max_tokens)
        headers = {"request-id": _request_id()}
        if body.get("stream") is True:
            return ProviderResult(
                status=200, content_type="text/event-stream; charset=utf-8", chunks=stream_events(model, completion),
                model=model, tokens_in=completion.tokens_in, tokens_out=completion.tokens_out, headers=headers,
            )
        data = message_body(model, completion)
        return ProviderResult(
            status=200, data=data, model=model,
            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out, headers=headers,
        )


PROVIDER: Final = AnthropicProvider()
