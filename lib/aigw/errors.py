"""The one exception hierarchy of aigw.

Every error the library raises on purpose is an ``AigwError``. Its ``str()`` is one line an operator
can act on: what went wrong and how to fix it, with Cloudflare's error code where there is one. No
error text ever holds a secret value (see ``aigw.config.Secret`` and ``redact``).

::

    AigwError
    ├── ConfigError                 bad or missing settings (.dev.vars, environment, parameters)
    ├── CloudflareError             the v4 API answered with an error envelope
    │   ├── AuthenticationError     401, or code 10000 / 9106 / 6003: token missing, wrong or revoked
    │   ├── PermissionDeniedError   403: the token lacks a permission (AI Gateway Write, ...)
    │   ├── NotFoundError           404, code 7002
    │   ├── ConflictError           409: duplicate id, non-empty store, ...
    │   ├── ValidationError         400, code 7001 (with the field path)
    │   ├── QuotaExceededError      400/409 for a per-account limit (gateways per account, ...)
    │   ├── RateLimitedError        429 (the API budget), after retries
    │   └── ServerError             5xx, after retries
    ├── TransportError              no answer: connection refused, DNS, timeout, after retries
    │   └── DeadlineExceededError   the client's total deadline ran out while retrying
    ├── GatewayError                the gateway data plane answered with an AiGatewayError (2009, 2003, 2040, ...)
    ├── EvidenceError               a bundle does not verify, or a secret was found in it
    └── RunError                    a notebook of ``aigw run`` failed
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aigw.text import one_line

__all__ = [
    "AigwError",
    "AuthenticationError",
    "CloudflareError",
    "ConfigError",
    "ConflictError",
    "DeadlineExceededError",
    "ErrorDetail",
    "EvidenceError",
    "GatewayError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitedError",
    "RunError",
    "ServerError",
    "TransportError",
    "ValidationError",
]


class AigwError(Exception):
    """Base of every error aigw raises on purpose. ``str(e)`` is one actionable line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text}. {self.hint}" if not text.endswith((".", ":")) else f"{text} {self.hint}"
        # One line, always: a multi-line message breaks the runner's one-line failure report.
        return one_line(text)


class ConfigError(AigwError):
    """A setting is missing or invalid."""


@dataclass(frozen=True)
class ErrorDetail:
    """One item of a Cloudflare ``errors`` array."""

    code: int | None
    message: str
    path: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        where = f" at {'.'.join(self.path)}" if self.path else ""
        code = f"code {self.code}: " if self.code is not None else ""
        return f"{code}{self.message}{where}"


class CloudflareError(AigwError):
    """The Cloudflare v4 API answered with an error.

    ``status`` is the HTTP status; ``errors`` the parsed ``errors`` array; ``codes`` its codes.
    """

    default_hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int,
        errors: Sequence[ErrorDetail] = (),
        method: str = "",
        path: str = "",
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.errors = tuple(errors)
        self.method = method
        self.path = path
        super().__init__(message, hint=hint if hint is not None else self.default_hint)

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(e.code for e in self.errors if e.code is not None)


class AuthenticationError(CloudflareError):
    default_hint = (
        "Check CLOUDFLARE_API_TOKEN in .dev.vars or the environment: it must be an active API token "
        "(create one under My Profile > API Tokens)"
    )


class PermissionDeniedError(CloudflareError):
    default_hint = (
        "Give the token the permissions the runbook needs: AI Gateway Read and Write, and Secrets Store Write"
    )


# One class per kind of answer, alike but for the hint, so that callers catch the kind they can act on.
class NotFoundError(CloudflareError):
    default_hint = "Check CLOUDFLARE_ACCOUNT_ID and the gateway id"


class ConflictError(CloudflareError):
    default_hint = "The resource already exists or is in use; re-run the notebook to converge on it"


class ValidationError(CloudflareError):
    default_hint = "Fix the value named above and run again"


class QuotaExceededError(CloudflareError):
    default_hint = "Delete an unused gateway, or ask Cloudflare for a higher limit"


class RateLimitedError(CloudflareError):
    default_hint = "The API budget (1,200 requests per 300 s per token) is spent; wait and run again"


class ServerError(CloudflareError):
    default_hint = "Cloudflare had a server error; run again later (re-running is safe)"


class TransportError(AigwError):
    """No HTTP answer at all: the host was unreachable, a name did not resolve, or it timed out."""


class DeadlineExceededError(TransportError):
    """Retries ran past the client's total deadline."""


class GatewayError(AigwError):
    """The gateway data plane answered with Cloudflare's ``AiGatewayError`` body."""

    def __init__(self, message: str, *, status: int, code: int | None, hint: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message, hint=hint)


class EvidenceError(AigwError):
    """An evidence bundle does not verify, or holds a secret."""


class RunError(AigwError):
    """A notebook run by ``aigw run`` failed."""

    def __init__(self, message: str, *, notebook: str = "", cell: int | None = None, hint: str | None = None):
        self.notebook = notebook
        self.cell = cell
        super().__init__(message, hint=hint)
