"""The emulated OpenAI API: ``POST v1/chat/completions`` (and streaming), ``GET v1/models``.

Error bodies are OpenAI's ``{"error": {message, type, param, code}}``. A wrong key is never echoed
(OpenAI masks it; the twin leaves it out altogether).
"""

from __future__ import annotations

import secrets
import time
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

__all__ = ["PROVIDER", "OpenAIProvider", "completion_body", "openai_error", "prompt_text", "stream_chunks"]

SLUG: Final = "openai"
_FINGERPRINT: Final = "fp_twin0001"


def openai_error(
    status: int, message: str, type_: str = "invalid_request_error", *, param: str | None = None,
    code: str | None = None,
) -> ProviderResult:
    return json_result(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


_SERVER_ERRORS: Final[dict[int, tuple[str, str, str | None]]] = {
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def _content_text(content: Any) -> str | None:
    """The text of a message's ``content``: a string or a list of ``{type: text, text}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                return None
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return None


def prompt_text(messages: list[Any]) -> str | None:
    """All message text joined (the token count's input); None when a message is malformed."""
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return None
        text = _content_text(message.get("content"))
        if text is None:
            return None
        texts.append(text)
    return "\n".join(texts)


def completion_body(model: str, completion: Completion, *, completion_id: str | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object for ``completion``."""
    return {
        "id": completion_id or "chatcmpl-" + secrets.token_urlsafe(21),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": completion.finish,
            }
        ],
        "usage": {
            "prompt_tokens": completion.tokens_in,
            "completion_tokens": completion.tokens_out,
            "total_tokens": completion.tokens_in + completion.tokens_out,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }


def stream_chunks(model: str, completion: Completion, *, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed ``chat.completion.chunk`` answer, ``data: [DONE]`` last."""
    chunk_id = "chatcmpl-" + secrets.token_urlsafe(21)
    created = int(time.time())
    usage_field: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        return sse_event({
            "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": _FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **usage_field,
        })

    events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    events += [chunk({"content": piece}, None) for piece in completion.deltas()]
    events.append(chunk({}, completion.finish))
    if include_usage:
        events.append(sse_event({
            "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": _FINGERPRINT, "choices": [],
            "usage": {
                "prompt_tokens": completion.tokens_in,
                "completion_tokens": completion.tokens_out,
                "total_tokens": completion.tokens_in + completion.tokens_out,
            },
        }))
    events.append(b"data: [DONE]\n\n")
    return events


def _positive_int(body: dict[str, Any], name: str) -> int | ProviderResult | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return openai_error(400, f"Invalid type for '{name}': expected an integer, but got {type(value).__name__}.",
                            param=name, code="invalid_type")
    if value < 1:
        return openai_error(400, f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                            f"but got {value} instead.", param=name, code="integer_below_min_value")
    return value


class OpenAIProvider:
    slug: str = SLUG

    def request_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_value(headers.get("authorization"))

    def error_for_status(self, status: int) -> ProviderResult:
        message, type_, code = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return openai_error(status, message, type_, code=code)

    def _auth_error(self, ctx: TwinContext, key: str | None) -> ProviderResult | None:
        if key is None:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                "username) if you're accessing the API from your browser and are prompted for a username and "
                "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        if not is_provider_key_valid(ctx.db, SLUG, key):
            # The real message shows the key's last 4 characters; the twin never echoes any of it.
            return openai_error(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    async def handle(self, ctx: TwinContext, request: ProviderRequest) -> ProviderResult:
        injected = await upstream_conditions(ctx, self)
        if injected is not None:
            return injected
        auth_error = self._auth_error(ctx, request.key)
        if auth_error is not None:
            return auth_error
        path = request.path.strip("/")
        if path == "v1/chat/completions" and request.method == "POST":
            return self._chat(request)
        if path == "v1/models" and request.method == "GET":
            return json_result(200, {"object": "list", "data": [_model_object(m) for m in pricing.model_names(SLUG)]})
        if path.startswith("v1/models/") and request.method == "GET":
            name = path.removeprefix("v1/models/")
            if pricing.find_model(SLUG, name) is None:
                return _model_not_found(name)
            return json_result(200, _model_object(name))
        return openai_error(404, f"Invalid URL ({request.method} /{path})")

    def _chat(self, request: ProviderRequest) -> ProviderResult:
        body = request.parsed
        if body is None:
            try:
                body = jsonbody.loads(request.body)
            except ValueError:
                return openai_error(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
                    "not valid JSON. If you have trouble figuring out how to fix this, please contact us through "
                    "our help center at help.openai.com.)",
                )
        if not isinstance(body, dict):
            return openai_error(400, "Invalid request body: expected a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        messages = body.get("messages")
        if messages is None:
            return openai_error(400, "Missing required parameter: 'messages'.", param="messages",
                                code="missing_required_parameter")
        if not isinstance(messages, list) or not messages:
            return openai_error(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                                "but got an empty array instead.", param="messages", code="empty_array")
        text = prompt_text(messages)
        if text is None:
            return openai_error(400, "Invalid 'messages': each message must be an object with a 'role' and a "
                                "'content'.", param="messages", code="invalid_value")
        limits: list[int] = []
        for name in ("max_completion_tokens", "max_tokens"):
            value = _positive_int(body, name)
            if isinstance(value, ProviderResult):
                return value
            if value is not None:
                limits.append(value)
        if pricing.find_model(SLUG, model) is None:
            return _model_not_found(model)
        completion = complete(SLUG, model, text, min(limits) if limits else None)
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return ProviderResult(
                status=200, content_type="text/event-stream; charset=utf-8",
                chunks=stream_chunks(model, completion, include_usage=include_usage), model=model,
                tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
            )
        return ProviderResult(
            status=200, data=completion_body(model, completion), model=model,
            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
        )


def _model_not_found(model: str) -> ProviderResult:
    return openai_error(404, f"The model `{model}` does not exist or you do not have access to it.",
                        code="model_not_found")


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}


PROVIDER: Final = OpenAIProvider()
