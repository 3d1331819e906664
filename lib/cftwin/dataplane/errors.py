"""The gateway's own error answers (``AiGatewayError``), as opposed to a provider's, passed through.

Cloudflare does not document these bodies; the shapes are the ones third parties observed (reference
section 8.4): ``error`` (singular) holds the items, ``name`` and ``httpCode`` follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.responses import Response

from cftwin.providers.engine import dumps

__all__ = [
    "CODE_BAD_REQUEST",
    "CODE_BYOK_ALIAS",
    "CODE_BYOK_UNAVAILABLE",
    "CODE_GATEWAY_NOT_FOUND",
    "CODE_INVALID_PROVIDER",
    "CODE_NO_ROUTE",
    "CODE_RATE_LIMITED",
    "CODE_TIMEOUT",
    "CODE_UNAUTHORIZED",
    "gateway_error",
    "gateway_error_body",
]

CODE_UNAUTHORIZED: Final = 2009
CODE_RATE_LIMITED: Final = 2003
CODE_BYOK_ALIAS: Final = 2040
# ASSUMPTION: a gateway (or account) that does not exist answers 400 with code 2001, "Please configure
# AI Gateway in the Cloudflare dashboard" (observed by third parties for unknown gateway ids in 2024).
CODE_GATEWAY_NOT_FOUND: Final = 2001
# ASSUMPTION: a model string whose provider prefix is not a Cloudflare provider (e.g. "google/...")
# answers 400 with code 2005 (listed as "model/provider not available" by third parties).
CODE_INVALID_PROVIDER: Final = 2005
# ASSUMPTION: no source names the code of "stored BYOK secret is gone"; the twin uses 2042, HTTP 400,
# with the observed message "Configured BYOK credentials are unavailable".
CODE_BYOK_UNAVAILABLE: Final = 2042
# ASSUMPTION: Cloudflare does not document the answer to a request that passed cf-aig-request-timeout
# on every attempt; the twin answers 408 with code 2016, "Request timed out".
CODE_TIMEOUT: Final = 2016
# ASSUMPTION: a universal-endpoint body that is not an array of step objects answers 400 / 2008.
CODE_BAD_REQUEST: Final = 2008
# ASSUMPTION: a path under a gateway that names no provider answers 400 / 7003 "No route for the URI".
CODE_NO_ROUTE: Final = 7003


def gateway_error_body(status: int, code: int, message: str, *, extended: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "error": [{"code": code, "message": message}],
        "name": "AiGatewayError",
        "httpCode": status,
    }
    if extended:
        # The fuller shape observed for 2040 (with result, messages, internalCode and message).
        body = {"success": False, "result": [], "messages": [], "error": body["error"], "name": "AiGatewayError",
                "httpCode": status, "internalCode": code, "message": message}
    return body


def gateway_error(
    status: int, code: int, message: str, *, headers: Mapping[str, str] | None = None, extended: bool = False
) -> Response:
    return Response(
        dumps(gateway_error_body(status, code, message, extended=extended)),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )
