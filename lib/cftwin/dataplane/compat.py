"""The OpenAI-compatible endpoint (``compat/chat/completions``): a request in OpenAI's format whose
``model`` is ``{provider}/{model}``, translated to the provider's own format and back.

OpenAI requests pass through (with the bare model). Anthropic and Google requests are translated to
``v1/messages`` / ``v1beta/models/{m}:generateContent``, answered by that provider, and its answer is
rewritten as a ``chat.completion`` (a stream is rebuilt as ``chat.completion.chunk`` events from the
whole answer). A provider's error passes through unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from cftwin.providers import openai as openai_format
from cftwin.providers.engine import Completion, ProviderResult

__all__ = ["DEFAULT_MAX_TOKENS", "CompatTarget", "from_native", "split_model", "to_native"]

# ASSUMPTION: when an OpenAI-format request sets no limit, the gateway asks Anthropic (which requires
# max_tokens) for 4096 tokens.
DEFAULT_MAX_TOKENS: Final = 4096


@dataclass(frozen=True, slots=True)
class CompatTarget:
    provider: str
    model: str
    path: str
    body: dict[str, Any]
    stream: bool
    include_usage: bool


def split_model(value: Any) -> tuple[str, str] | None:
    """``("google-ai-studio", "gemini-2.5-flash")`` from ``"google-ai-studio/gemini-2.5-flash"``."""
    if not isinstance(value, str):
        return None
    provider, sep, model = value.partition("/")
    if not sep or not provider or not model:
        return None
    return provider, model


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else json.dumps(content)


def _limit(body: dict[str, Any]) -> Any:
    value = body.get("max_completion_tokens")
    return body.get("max_tokens") if value is None else value


def to_native(provider: str, model: str, body: dict[str, Any]) -> CompatTarget:
    """The provider-native request for an OpenAI-format ``body``."""
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    messages = body.get("messages")
    if provider == "openai":
        return CompatTarget(provider, model, "v1/chat/completions", {**body, "model": model}, stream, include_usage)
    items = messages if isinstance(messages, list) else []
    instructions = [m for m in items if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    system = [_text(m.get("content")) for m in instructions]
    turns = [m for m in items if not any(m is i for i in instructions)]
    if provider == "anthropic":
        native: dict[str, Any] = {
            "model": model,
            "max_tokens": _limit(body) if _limit(body) is not None else DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": m.get("role") if m.get("role") in ("user", "assistant") else "user",
                 "content": _text(m.get("content"))} if isinstance(m, dict) else m
                for m in turns
            ] if isinstance(messages, list) else messages,
        }
        if system:
            native["system"] = "\n".join(system)
        for name in ("temperature", "top_p"):
            if name in body:
                native[name] = body[name]
        stop = body.get("stop")
        if stop is not None:
            native["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        return CompatTarget(provider, model, "v1/messages", native, stream, include_usage)
    # google-ai-studio
    contents = [
        {"role": "model" if m.get("role") == "assistant" else "user", "parts": [{"text": _text(m.get("content"))}]}
        for m in turns if isinstance(m, dict)
    ]
    google: dict[str, Any] = {"contents": contents}
    if system:
        google["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
    config: dict[str, Any] = {}
    if _limit(body) is not None:
        config["maxOutputTokens"] = _limit(body)
    for name, native_name in (("temperature", "temperature"), ("top_p", "topP")):
        if name in body:
            config[native_name] = body[name]
    if config:
        google["generationConfig"] = config
    return CompatTarget(provider, model, f"v1beta/models/{model}:generateContent", google, stream, include_usage)


def _completion(target: CompatTarget, native: dict[str, Any]) -> Completion:
    if target.provider == "anthropic":
        text = "".join(b.get("text", "") for b in native.get("content", []) if isinstance(b, dict))
        usage = native.get("usage") or {}
        capped = native.get("stop_reason") == "max_tokens"
        tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    else:
        candidate = (native.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
        usage = native.get("usageMetadata") or {}
        capped = candidate.get("finishReason") == "MAX_TOKENS"
        tokens_in, tokens_out = int(usage.get("promptTokenCount", 0)), int(usage.get("candidatesTokenCount", 0))
    words = tuple(text.split(" ")) if text else ()
    return Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out, finish="length" if capped else "stop",
                      words=words)


def from_native(target: CompatTarget, result: ProviderResult) -> ProviderResult:
    """The OpenAI-format answer for the provider's ``result`` (errors and OpenAI answers unchanged)."""
    if target.provider == "openai" or result.status != 200:
        return result
    native = result.data if isinstance(result.data, dict) else json.loads(result.body)
    completion = _completion(target, native)
    converted = ProviderResult(status=200, model=target.model, tokens_in=completion.tokens_in,
                               tokens_out=completion.tokens_out)
    if target.stream:
        converted.content_type = "text/event-stream; charset=utf-8"
        converted.chunks = openai_format.stream_chunks(target.model, completion, include_usage=target.include_usage)
    else:
        converted.data = openai_format.completion_body(target.model, completion)
    return converted
