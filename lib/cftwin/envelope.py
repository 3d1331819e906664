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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cftwin import jsonbody

__all__ = [
    "CODE_AUTH",
    "CODE_INVALID_TOKEN",
    "CODE_NOT_FOUND",
    "CODE_NO_ROUTE",
    "CODE_NO_ROUTE_FOR_URI",
    "CODE_RATE_LIMITED",
    "CODE_SECRETS_INVALID",
    "CODE_SECRETS_REFUSED",
    "CODE_SERVER",
    "CODE_VALIDATION",
    "CloudflareAPIError",
    "ErrorItem",
    "already_exists",
    "api_error_response",
    "handle_api_error",
    "new_hex_id",
    "not_found",
    "now_iso",
    "ok",
    "page_slice",
    "quota_exceeded",
    "read_json",
    "read_json_object",
    "secrets_invalid",
    "secrets_not_found",
    "secrets_refused",
    "unknown_account",
    "validation_error",
]

# Codes as Cloudflare's live API answers them, recorded by alchemy-run/distilled's live tests
# (packages/cloudflare/src/services/{ai-gateway,secrets-store}.ts error matchers):
# * AI Gateway: GatewayAlreadyExists is code 7001 (the validation code; sometimes a 504 instead),
#   GatewayNotFound 7002.
# * Secrets Store: 1001 with store_not_found / secret_not_found / secret_name_empty /
#   secret_scope_invalid / secret_scopes_empty / invalid_json_body in the message; 1003 with
#   secret_name_already_exists / maximum_stores_exceeded.
# * Every service: InvalidAccountId is 7003 ("Could not route to ..., perhaps your object identifier is
#   invalid?", HTTP 400, with 7000 "No route for that URI": cloudflare/cloudflare-go#118).
CODE_INVALID_TOKEN: Final = 1000
CODE_SECRETS_INVALID: Final = 1001
CODE_SECRETS_REFUSED: Final = 1003
CODE_NO_ROUTE_FOR_URI: Final = 7000
CODE_VALIDATION: Final = 7001
CODE_NOT_FOUND: Final = 7002
CODE_NO_ROUTE: Final = 7003
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


def already_exists(message: str, path: Sequence[str] | None = None) -> CloudflareAPIError:
    """A duplicate in AI Gateway (gateway id, provider config): code 7001, as Cloudflare answers it.

    ASSUMPTION: HTTP 400 (the code is the validation code; no source gives the status); the message says
    "already exists", the words a client can tell it from other 7001s by.
    """
    return CloudflareAPIError.single(400, CODE_VALIDATION, message, path=path)


def quota_exceeded(message: str, path: Sequence[str] | None = None) -> CloudflareAPIError:
    """A per-account limit of AI Gateway (gateways per account).

    ASSUMPTION: no source names this error; the twin answers 400 / 7001 with Cloudflare's usual words
    ("maximum number of ..."), not a code of its own that a client could come to rely on.
    """
    return CloudflareAPIError.single(400, CODE_VALIDATION, message, path=path)


def secrets_invalid(reason: str, detail: str, path: Sequence[str] | None = None) -> CloudflareAPIError:
    """Secrets Store's 1001 (``reason`` is its snake_case word, e.g. ``secret_name_empty``).

    ASSUMPTION: HTTP 400 (no source gives the status); the message is the word, then what is wrong.
    """
    return CloudflareAPIError.single(400, CODE_SECRETS_INVALID, f"{reason}: {detail}", path=path)


def secrets_not_found(reason: str, detail: str) -> CloudflareAPIError:
    """Secrets Store's 1001 ``store_not_found`` / ``secret_not_found``. ASSUMPTION: HTTP 404."""
    return CloudflareAPIError.single(404, CODE_SECRETS_INVALID, f"{reason}: {detail}")


def secrets_refused(reason: str, detail: str) -> CloudflareAPIError:
    """Secrets Store's 1003 (``secret_name_already_exists``, ``maximum_stores_exceeded``).

    ASSUMPTION: HTTP 400 (one third-party note says "HTTP 400 code 1003" for maximum_stores_exceeded).
    """
    return CloudflareAPIError.single(400, CODE_SECRETS_REFUSED, f"{reason}: {detail}")


def unknown_account(path: str) -> CloudflareAPIError:
    """An account id no account has: 400, 7003 "Could not route to ..." then 7000, as Cloudflare answers."""
    return CloudflareAPIError(400, [
        {"code": CODE_NO_ROUTE, "message": f"Could not route to {path}, perhaps your object identifier is invalid?"},
        {"code": CODE_NO_ROUTE_FOR_URI, "message": "No route for that URI"},
    ])


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
