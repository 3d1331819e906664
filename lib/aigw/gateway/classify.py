"""Classify one data-plane answer: a completion, the provider's own error, the gateway's error, or neither.

Gateway errors are Cloudflare's ``AiGatewayError`` (``{"error": [{"code": 2009, ...}], "name": "AiGatewayError"}``)
or a v4 envelope; provider errors are the provider's own body (OpenAI, Anthropic, Google shapes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aigw.gateway.results import Outcome
from aigw.text import one_line

__all__ = ["classify", "int_or_none", "usage"]

_EXCERPT_CHARS: Final = 160


def _excerpt(text: str) -> str:
    return one_line(text, _EXCERPT_CHARS)


def _first_text(body: Mapping[str, Any]) -> str | None:
    """The generated text of an OpenAI, Anthropic or Google answer."""
    try:
        choices = body.get("choices")
        if isinstance(choices, list) and choices:
            content = choices[0]["message"]["content"]
            return content if isinstance(content, str) else None
        content = body.get("content")
        if isinstance(content, list) and content:
            text = content[0].get("text")
            return text if isinstance(text, str) else None
        candidates = body.get("candidates")
        if isinstance(candidates, list) and candidates:
            text = candidates[0]["content"]["parts"][0].get("text")
            return text if isinstance(text, str) else None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


# Independent of the twin's alike reader (cftwin.dataplane.options) on purpose: the twin checks the client.
def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def usage(status: int, content: bytes) -> tuple[int | None, int | None]:
    """``(tokens_in, tokens_out)`` of a 2xx answer's ``usage`` (OpenAI or Anthropic names); None when absent."""
    if not 200 <= status < 300:
        return None, None
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    tokens_in = int_or_none(usage.get("prompt_tokens", usage.get("input_tokens")))
    return tokens_in, int_or_none(usage.get("completion_tokens", usage.get("output_tokens")))


def _google_reason(error: Mapping[str, Any]) -> str | None:
    """The ``ErrorInfo`` reason of a Google error (``API_KEY_INVALID``), which says more than its status."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def classify(status: int, content: bytes) -> tuple[Outcome, int | None, str | None, str]:
    """``(outcome, gateway_error_code, provider_error_type, excerpt)`` of one data-plane answer.

    Gateway errors are Cloudflare's ``AiGatewayError`` (``{"error": [{"code": 2009, ...}], "name":
    "AiGatewayError"}``) or a v4 envelope (``{"success": false, "errors": [...]}``); provider errors are
    the provider's own body: OpenAI ``{"error": {"type": ...}}``, Anthropic ``{"type": "error", "error":
    {"type": ...}}``, Google ``{"error": {"status": ...}}``. The excerpt is not redacted here.
    """
    try:
        body: Any = json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if body is None or not isinstance(body, Mapping):
        # Not JSON: never a completion, whatever the status (a probe's "ok" means a valid completion).
        text = content[:400].decode("utf-8", "replace")
        return "error", None, None, _excerpt(text)
    error = body.get("error")
    errors = body.get("errors")
    is_gateway = body.get("name") == "AiGatewayError" or (
        isinstance(error, list) and (not error or isinstance(error[0], Mapping))
    )
    if not is_gateway and body.get("success") is False and isinstance(errors, list):
        is_gateway = True
        error = errors
    if is_gateway and (status >= 400 or body.get("success") is False):
        items = error if isinstance(error, list) else []
        first = items[0] if items and isinstance(items[0], Mapping) else {}
        code = int_or_none(first.get("code"))
        if code is None:
            code = int_or_none(body.get("internalCode"))
        message = first.get("message") or body.get("message") or ""
        return "gateway_error", code, None, _excerpt(str(message))
    if 200 <= status < 300:
        generated = _first_text(body)
        if generated is None:
            return "error", None, None, _excerpt("2xx without a completion: " + json.dumps(body)[:380])
        return "ok", None, None, _excerpt(generated)
    if isinstance(error, Mapping):
        kind = _google_reason(error) or error.get("type") or error.get("status") or error.get("code")
        message = error.get("message") or ""
        return "provider_error", None, None if kind is None else str(kind), _excerpt(str(message))
    return "error", None, None, _excerpt(json.dumps(body)[:400])
