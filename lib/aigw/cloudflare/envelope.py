"""Cloudflare's answer, read: the v4 envelope unwrapped into an ``Envelope``, or the ``aigw.errors`` exception.

``parse_envelope`` accepts the full v4 envelope, AI Gateway's slim one and ``{"success": true}``; anything
else (a proxy's HTML 502, a truncated body) is a one-line ``CloudflareError``. ``error_for`` chooses the
exception class from the status and Cloudflare's error codes (and, where a code is shared, its words).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aigw.config import Secret, redact
from aigw.errors import (
    AuthenticationError,
    CloudflareError,
    ConflictError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from aigw.text import one_line

__all__ = ["Envelope", "Json", "error_for", "parse_envelope", "with_note"]

Json = Any

_AUTH_CODES: Final = frozenset({1000, 6003, 9106, 10000})
_RATE_CODES: Final = frozenset({971, 10100})
# 7002: AI Gateway's not found; 7003: "Could not route to ..., perhaps your object identifier is invalid?"
# (an account id that names no account, with 7000 "No route for that URI").
_NOT_FOUND_CODES: Final = frozenset({7002, 7003})
_VALIDATION_CODES: Final = frozenset({7001})
# Secrets Store's codes, as its live API answers them (recorded by alchemy-run/distilled's live tests):
# 1001 with store_not_found / secret_not_found (and input errors), 1003 with secret_name_already_exists
# / maximum_stores_exceeded. The snake_case word, not the code alone, says which.
_SECRETS_INVALID: Final = 1001
_SECRETS_REFUSED: Final = 1003
_SECRETS_NOT_FOUND_WORDS: Final = re.compile(r"\b(store_not_found|secret_not_found)\b")
_SECRETS_QUOTA_WORDS: Final = re.compile(r"\bmaximum_stores_exceeded\b")
# A duplicate gateway is 7001 (GatewayAlreadyExists, recorded live), told from other 7001s by its words.
_ALREADY_EXISTS_WORDS: Final = re.compile(r"already[ _]exists", re.IGNORECASE)
# ASSUMPTION: no source names the gateways-per-account error; Cloudflare's usual words are matched.
_QUOTA_WORDS: Final = re.compile(
    r"\b(quota|maximum number of|limit (?:of \d+ )?(?:reached|exceeded)|too many (?:gateways|stores|secrets))\b",
    re.IGNORECASE,
)
_STORE_QUOTA_HINT: Final = (
    "Secrets Store allows one store per account (and 100 secrets): use the existing store (notebook 02 "
    "adopts it) or delete secrets you no longer need"
)
_TAG: Final = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Envelope:
    """A successful answer: ``result`` (and ``result_info`` on lists), unwrapped from the envelope."""

    status: int
    result: Json
    result_info: Mapping[str, Any] | None = None
    body: Json = field(default=None, repr=False)


def _error_details(body: Mapping[str, Any]) -> list[ErrorDetail]:
    raw = body.get("errors")
    if raw is None:
        raw = body.get("error")  # the data plane's AiGatewayError uses "error"
    items: list[Any] = raw if isinstance(raw, list) else ([raw] if isinstance(raw, Mapping) else [])
    if not items and ("code" in body or "message" in body):
        items = [body]  # a bare {"code": 10100, "message": ...} (the 429 body some proxies send)
    details: list[ErrorDetail] = []
    for item in items[:10]:
        if isinstance(item, Mapping):
            code = item.get("code")
            path = item.get("path")
            details.append(
                ErrorDetail(
                    code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                    message=one_line(str(item.get("message", "")) or "no message", 160),
                    path=tuple(str(p) for p in path) if isinstance(path, list) else (),
                )
            )
        elif isinstance(item, str):
            details.append(ErrorDetail(code=None, message=one_line(item, 160)))
    return details


def error_for(
    status: int,
    details: Sequence[ErrorDetail],
    *,
    method: str = "",
    path: str = "",
    summary: str | None = None,
) -> CloudflareError:
    """The ``aigw.errors`` exception for an error answer: status and Cloudflare codes decide the class."""
    codes = {d.code for d in details if d.code is not None}
    cls, hint = _error_class(status, codes, " ".join(d.message for d in details))
    what = summary or ("; ".join(str(d) for d in details) if details else "no error details")
    where = f"{method} {path}".strip() or "request"
    message = f"Cloudflare API {where} failed with HTTP {status}: {what}"
    return cls(message, status=status, errors=details, method=method, path=path, hint=hint)


def _error_class(status: int, codes: set[int], text: str) -> tuple[type[CloudflareError], str | None]:
    """The exception class for ``status``, Cloudflare's ``codes`` and the errors' ``text``; its hint, if any."""
    if status == 429 or codes & _RATE_CODES:
        return RateLimitedError, None
    if status >= 500:
        return ServerError, None
    if status == 403 and not codes & {1000, 6003, 9106}:
        return PermissionDeniedError, None
    if status == 401 or codes & _AUTH_CODES:
        return AuthenticationError, None
    if _SECRETS_REFUSED in codes and _SECRETS_QUOTA_WORDS.search(text):
        return QuotaExceededError, _STORE_QUOTA_HINT
    if status in (400, 403, 409) and _QUOTA_WORDS.search(text) and not _ALREADY_EXISTS_WORDS.search(text):
        return QuotaExceededError, None
    if status == 404 or codes & _NOT_FOUND_CODES or (
        _SECRETS_INVALID in codes and _SECRETS_NOT_FOUND_WORDS.search(text)
    ):
        return NotFoundError, None
    if status == 409 or (status == 400 and _ALREADY_EXISTS_WORDS.search(text)):
        # A duplicate: Cloudflare's 409s, AI Gateway's 7001 "already exists", Secrets Store's 1003
        # secret_name_already_exists. The check-before-retry of a lost create answer keys on this class.
        return ConflictError, None
    if status in (400, 422) or codes & _VALIDATION_CODES:
        return ValidationError, None
    return CloudflareError, None


def _excerpt(content: bytes, content_type: str) -> str:
    text = content[:2000].decode("utf-8", "replace")
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAG.sub(" ", text)
    return one_line(text, 100) or "empty body"


@dataclass(frozen=True)
class _Answer:
    """One answer as ``parse_envelope`` was given it."""

    status: int
    content: bytes
    content_type: str
    method: str
    path: str
    secrets: tuple[Secret | str, ...]
    bare_ok: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def not_v4(self, what: str) -> CloudflareError:
        """A 2xx that is not the v4 API's: the base URL is the likely mistake."""
        return CloudflareError(
            f"Cloudflare API {self.method} {self.path} answered HTTP {self.status} {what}",
            status=self.status,
            method=self.method,
            path=self.path,
            hint="Check CLOUDFLARE_API_BASE_URL: it must be the v4 API (https://api.cloudflare.com/client/v4)",
        )


def parse_envelope(
    status: int,
    content: bytes,
    *,
    content_type: str = "application/json",
    method: str = "",
    path: str = "",
    secrets: Iterable[Secret | str] = (),
    bare_ok: bool = False,
) -> Envelope:
    """Parse one answer of the v4 API into an ``Envelope``, or raise the matching ``CloudflareError``.

    Accepts the full v4 envelope, AI Gateway's slim one (``success`` + ``result``), ``{"success": true}``
    (DELETE logs), and, with ``bare_ok``, a body that is not an envelope at all (stored log bodies).
    Anything else (an HTML 502 from a proxy, a truncated body) is a one-line ``CloudflareError``.
    """
    answer = _Answer(status, content, content_type, method, path, tuple(secrets), bare_ok)
    try:
        body: Json = json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _not_json(answer, parsed=False)
    if body is None and not (answer.ok and bare_ok):
        return _not_json(answer, parsed=True)
    if isinstance(body, Mapping) and isinstance(body.get("success"), bool):
        return _from_envelope(answer, body)
    if answer.ok:
        if bare_ok:
            return Envelope(status, body, None, body)
        raise answer.not_v4("without Cloudflare's envelope")
    details = _redacted(_error_details(body), answer.secrets) if isinstance(body, Mapping) else []
    raise error_for(status, details, method=method, path=path)


def _not_json(answer: _Answer, *, parsed: bool) -> Envelope:
    """An empty or unreadable body: text where a bare body is fine, else the error it means."""
    if answer.ok and answer.bare_ok and not parsed:
        return Envelope(answer.status, answer.content.decode("utf-8", "replace"), None, None)
    kind = answer.content_type.split(";")[0].strip() or "no content type"
    excerpt = redact(_excerpt(answer.content, answer.content_type), answer.secrets)
    summary = f"the answer is not Cloudflare JSON ({kind}: {excerpt!r})"
    if answer.ok:
        raise answer.not_v4(f"but {summary}")
    raise error_for(answer.status, (), method=answer.method, path=answer.path, summary=summary)


def _from_envelope(answer: _Answer, body: Mapping[str, Any]) -> Envelope:
    if body["success"] and answer.ok:
        info = body.get("result_info")
        return Envelope(answer.status, body.get("result"), info if isinstance(info, Mapping) else None, body)
    details = _redacted(_error_details(body), answer.secrets)
    # success: false with a 2xx status: an error all the same; 400 is the closest class.
    status = 400 if answer.ok else answer.status
    raise error_for(status, details, method=answer.method, path=answer.path)


def _redacted(details: list[ErrorDetail], secrets: tuple[Secret | str, ...]) -> list[ErrorDetail]:
    if not secrets:
        return details
    return [ErrorDetail(d.code, redact(d.message, secrets), tuple(redact(p, secrets) for p in d.path)) for d in details]


def with_note(error: CloudflareError, note: str) -> CloudflareError:
    """The same error, its message extended (e.g. how many attempts it took)."""
    clone = type(error)(
        f"{error.message} ({note})",
        status=error.status,
        errors=error.errors,
        method=error.method,
        path=error.path,
        hint=error.hint,
    )
    return clone

