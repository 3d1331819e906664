"""The emulated Google AI Studio (Gemini) API: ``{v1,v1beta}/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse`` for server-sent events, else a JSON array) and ``GET .../models``.

The key travels as ``x-goog-api-key`` or ``?key=``. Errors are Google's
``{"error": {code, message, status, details?}}``; a wrong key is 400 ``API_KEY_INVALID``.
"""

from __future__ import annotations

import json
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
    complete,
    dumps,
    json_result,
    upstream_conditions,
)
from cftwin.providers.models import is_provider_key_valid

__all__ = ["PROVIDER", "GoogleProvider", "generate_body", "google_error", "model_from_path", "prompt_text"]

SLUG: Final = "google-ai-studio"
_VERSIONS: Final = ("v1beta", "v1")

_SERVER_ERRORS: Final[dict[int, tuple[str, str]]] = {
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


def google_error(status: int, grpc_status: str, message: str, details: list[Any] | None = None) -> ProviderResult:
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if details is not None:
        error["details"] = details
    return json_result(status, {"error": error})


def _invalid_key() -> ProviderResult:
    return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": "API key not valid. Please pass a valid API key."},
    ])


def model_from_path(path: str) -> tuple[str, str, str] | None:
    """``(version, model, action)`` of ``v1beta/models/{model}:{action}``; None for another path."""
    version, _, rest = path.strip("/").partition("/")
    if version not in _VERSIONS or not rest.startswith("models/"):
        return None
    model, sep, action = rest.removeprefix("models/").partition(":")
    if not sep or not model or "/" in model:
        return None
    return version, model, action


def prompt_text(body: dict[str, Any]) -> str | ProviderResult:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return google_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified\n")
    texts: list[str] = []
    instruction = body.get("systemInstruction", body.get("system_instruction"))
    for index, content in enumerate([instruction, *contents] if instruction is not None else contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            where = "system_instruction" if instruction is not None and index == 0 else "contents"
            return google_error(400, "INVALID_ARGUMENT", f"* GenerateContentRequest.{where}.parts: contents.parts "
                                "must not be empty.\n")
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def _max_output_tokens(body: dict[str, Any]) -> int | ProviderResult | None:
    config = body.get("generationConfig", body.get("generation_config"))
    if config is None:
        return None
    if not isinstance(config, dict):
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name "
                            "\"generationConfig\": Proto field is not repeating, cannot start list.")
    value = config.get("maxOutputTokens", config.get("max_output_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return google_error(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.max_output_tokens' "
                            f"(TYPE_INT32), {json.dumps(value)}")
    if value < 1:
        return google_error(400, "INVALID_ARGUMENT", "max_output_tokens must be positive.")
    return value


def _usage(completion: Completion) -> dict[str, Any]:
    return {
        "promptTokenCount": completion.tokens_in,
        "candidatesTokenCount": completion.tokens_out,
        "totalTokenCount": completion.tokens_in + completion.tokens_out,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": completion.tokens_in}],
    }


def _finish(completion: Completion) -> str:
    return "STOP" if completion.finish == "stop" else "MAX_TOKENS"


def generate_body(model: str, completion: Completion) -> dict[str, Any]:
    return {
        "candidates": [{
            "content": {"parts": [{"text": completion.text}], "role": "model"},
            "finishReason": _finish(completion),
            "index": 0,
        }],
        "usageMetadata": _usage(completion),
        "modelVersion": model,
        "responseId": secrets.token_urlsafe(16),
    }


def _stream_bodies(model: str, completion: Completion) -> list[dict[str, Any]]:
    response_id = secrets.token_urlsafe(16)
    pieces = completion.deltas() or [""]
    bodies: list[dict[str, Any]] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = _finish(completion)
        usage = _usage(completion) if last else {"promptTokenCount": completion.tokens_in,
                                                 "totalTokenCount": completion.tokens_in}
        bodies.append({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                       "responseId": response_id})
    return bodies


class GoogleProvider:
    slug: str = SLUG

    def request_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        key = (headers.get("x-goog-api-key") or "").strip() or (query.get("key") or "").strip()
        return key or None

    def error_for_status(self, status: int) -> ProviderResult:
        grpc_status, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return google_error(status, grpc_status, message)

    async def handle(self, ctx: TwinContext, request: ProviderRequest) -> ProviderResult:
        injected = await upstream_conditions(ctx, self)
        if injected is not None:
            return injected
        if request.key is None:
            # Google answers a request without any key with 403, not 401.
            return google_error(
                403, "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use "
                "API Key or other form of API consumer identity to call this API.",
            )
        if not is_provider_key_valid(ctx.db, SLUG, request.key):
            return _invalid_key()
        path = request.path.strip("/")
        version, _, rest = path.partition("/")
        if request.method == "GET" and version in _VERSIONS and rest == "models":
            return json_result(200, {"models": [
                {"name": f"models/{m}", "displayName": m, "supportedGenerationMethods":
                 ["generateContent", "streamGenerateContent", "countTokens"]} for m in pricing.model_names(SLUG)
            ]})
        target = model_from_path(path)
        if target is None or request.method != "POST" or target[2] not in {"generateContent", "streamGenerateContent"}:
            return google_error(404, "NOT_FOUND", f"Requested entity was not found: {request.method} /{path}")
        version, model, action = target
        body = request.parsed
        if body is None:
            try:
                body = jsonbody.loads(request.body) if request.body.strip() else {}
            except ValueError:
                return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Root element must be a "
                                "message.")
        text = prompt_text(body)
        if isinstance(text, ProviderResult):
            return text
        limit = _max_output_tokens(body)
        if isinstance(limit, ProviderResult):
            return limit
        if pricing.find_model(SLUG, model) is None:
            return google_error(404, "NOT_FOUND", f"models/{model} is not found for API version {version}, or is "
                                f"not supported for {action}. Call ListModels to see the list of available models "
                                "and their supported methods.")
        completion = complete(SLUG, model, text, limit)
        result = ProviderResult(status=200, model=model, tokens_in=completion.tokens_in,
                                tokens_out=completion.tokens_out)
        if action == "generateContent":
            result.data = generate_body(model, completion)
            return result
        bodies = _stream_bodies(model, completion)
        if request.query.get("alt") == "sse":
            result.content_type = "text/event-stream"
            result.chunks = [f"data: {dumps(b).decode('utf-8')}\r\n\r\n".encode() for b in bodies]
        else:
            result.data = bodies
        return result


PROVIDER: Final = GoogleProvider()
