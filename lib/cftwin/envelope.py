"""Cloudflare v4 envelopes, the API error every handler raises, and request validators.

A handler returns ``ok(result)`` or raises ``CloudflareAPIError``; ``handle_api_error`` (installed
by ``build_app``) turns the exception into Cloudflare's failure envelope::

    {"success": false, "errors": [{"code": 7001, "message": "...", "path": ["body", "id"]}],
     "messages": [], "result": null}

ASSUMPTION: every answer carries the full generic envelope (``success, errors, messages, result``),
including AI Gateway operations whose schema declares only ``success`` and ``result``. The SDKs
ignore the extra keys; a client that relies on them works against the generic v4 contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cftwin import jsonbody

__all__ = [
    "CODE_AUTH",
    "CODE_CONFLICT",
    "CODE_INVALID_TOKEN",
    "CODE_NOT_FOUND",
    "CODE_NO_ROUTE",
    "CODE_QUOTA",
    "CODE_RATE_LIMITED",
    "CODE_SERVER",
    "CODE_VALIDATION",
    "CloudflareAPIError",
    "ErrorItem",
    "api_error_response",
    "conflict",
    "handle_api_error",
    "new_hex_id",
    "not_found",
    "now_iso",
    "ok",
    "page_slice",
    "parse_bool_param",
    "parse_page_params",
    "read_json",
    "read_json_object",
    "validation_error",
]

CODE_INVALID_TOKEN: Final = 1000
CODE_VALIDATION: Final = 7001
CODE_NOT_FOUND: Final = 7002
CODE_NO_ROUTE: Final = 7003
# ASSUMPTION: "already exists" is 7005 (seen for AI Gateway dynamic routes by third parties, 2026);
# the twin uses it, with HTTP 409, for every duplicate (gateway id, provider config, secret name).
CODE_CONFLICT: Final = 7005
# ASSUMPTION: no public source names the gateways-per-account error; the twin answers 400 / 7006.
CODE_QUOTA: Final = 7006
CODE_SERVER: Final = 10001
CODE_AUTH: Final = 10000
CODE_RATE_LIMITED: Final = 10100

ErrorItem = dict[str, Any]


class CloudflareAPIError(Exception):
    """An error answer of the v4 API: HTTP ``status`` and the ``errors`` items.

    **Parameters:**
    * status - the HTTP status.
    * errors - items ``{code, message, path?}``.
    * headers - extra response headers (``Retry-After``, ...).
    * result - the envelope's ``result`` (``null`` unless an operation declares otherwise).
    """

    def __init__(
        self,
        status: int,
        errors: Sequence[ErrorItem],
        *,
        headers: Mapping[str, str] | None = None,
        result: Any = None,
    ) -> None:
        self.status = status
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.result = result
        super().__init__(f"{status}: " + "; ".join(str(e.get("message", "")) for e in self.errors))

    @classmethod
    def single(
        cls, status: int, code: int, message: str, *, path: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> CloudflareAPIError:
        item: ErrorItem = {"code": code, "message": message}
        if path is not None:
            item["path"] = list(path)
        return cls(status, [item], headers=headers)


def validation_error(message: str, path: Sequence[str]) -> CloudflareAPIError:
    """400 / 7001 with the offending field's ``path`` (e.g. ``["body", "id"]``)."""
    # ASSUMPTION: Cloudflare's message is "Input Validation Error"; the twin appends what is wrong,
    # so an operator can act on it, keeping Cloudflare's words first.
    return CloudflareAPIError.single(400, CODE_VALIDATION, f"Input Validation Error: {message}", path=path)


def not_found(what: str = "Not Found") -> CloudflareAPIError:
    return CloudflareAPIError.single(404, CODE_NOT_FOUND, what)


def conflict(message: str) -> CloudflareAPIError:
    return CloudflareAPIError.single(409, CODE_CONFLICT, message)


def ok(
    result: Any,
    result_info: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The success envelope."""
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = dict(result_info)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def api_error_response(exc: CloudflareAPIError) -> JSONResponse:
    body = {"success": False, "errors": exc.errors, "messages": [], "result": exc.result}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for ``CloudflareAPIError``."""
    assert isinstance(exc, CloudflareAPIError)
    return api_error_response(exc)


def now_iso() -> str:
    """RFC 3339 UTC with microseconds, as Cloudflare writes ``created_at``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_hex_id() -> str:
    """A 32-hex id, the shape of Cloudflare's store, secret and token ids."""
    import secrets

    return secrets.token_hex(16)


_INT: Final = re.compile(r"^-?\d+$")


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT.match(raw.strip()):
        raise validation_error(f"{name} must be an integer", ["query", name])
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise validation_error(f"{name} must be {bounds}", ["query", name])
    return value


def parse_page_params(
    request: Request, default_per_page: int = 20, min_per_page: int = 1, max_per_page: int = 100
) -> tuple[int, int]:
    """``(page, per_page)`` from the query; 7001 with ``["query", name]`` when out of range."""
    page = _int_param(request, "page", 1, 1, None)
    per_page = _int_param(request, "per_page", default_per_page, min_per_page, max_per_page)
    return page, per_page


def parse_bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise validation_error(f"{name} must be true or false", ["query", name])


def page_slice(items: Sequence[Any], page: int, per_page: int) -> tuple[list[Any], dict[str, int]]:
    """One page of ``items`` and its ``result_info``; past the end the page is ``[]``."""
    start = (page - 1) * per_page
    chunk = list(items[start : start + per_page])
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)}
    return chunk, info


async def read_json(request: Request) -> Any:
    """The JSON body; 400 / 7001 when it is missing or not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise validation_error("request body is required", ["body"])
    try:
        # Python's json reads NaN, Infinity and 1e400 (inf), which JSON does not have; a deep nesting
        # overflows its recursion: all are "not valid JSON" (a 400), never a 500 after a half-write.
        body = jsonbody.loads(raw, finite=True)
    except ValueError:
        raise validation_error("request body is not valid JSON", ["body"]) from None
    try:
        # A lone surrogate escape ("\\ud800") parses, but is not Unicode text: SQLite and UTF-8 refuse it.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise validation_error("request body is not valid JSON (a lone surrogate escape)", ["body"]) from None
    return body


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation_error("request body must be a JSON object", ["body"])
    return body


def raise_validation(message: str, path: Sequence[str]) -> NoReturn:
    raise validation_error(message, path)
