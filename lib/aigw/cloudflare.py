"""The Cloudflare v4 API client of the runbook: AI Gateway, its logs and provider configs, Secrets Store.

::

    with CloudflareClient.from_settings(settings) as cf:
        gw = cf.find_gateway("github-ai-agent") or cf.create_gateway("github-ai-agent", {"collect_logs": True})
        columns = cf.fetch_logs(gw.id, since=yesterday)      # a dict of lists: pd.DataFrame(columns)
        print(cf.stats.snapshot())                           # requests, retries by reason, recoveries

Synchronous (httpx) and thread-safe: a notebook's kernel already runs an asyncio loop, so concurrency
is threads over one shared ``httpx.Client``. Every request goes through one loop (``_send``) that

* waits for the token's ``RequestBudget`` (1,200 requests per 300 s, shared by every client of the
  token in this process), and adapts to the server's ``Ratelimit`` / ``Ratelimit-Policy`` (or the older
  ``X-RateLimit-Limit`` / ``-Remaining``);
* parses Cloudflare's envelope (full v4, AI Gateway's slim one, ``{"success": true}``) or maps the error
  to ``aigw.errors`` (one line, with the Cloudflare code and what to do next);
* retries 429, 5xx and connection failures with jittered exponential backoff and ``Retry-After``,
  bounded by a total deadline; a 429 that says how long the budget is blocked (``Retry-After``, up to
  300 s: Cloudflare blocks until its five-minute window ends) is waited out even past the operation's
  deadline, never past ``run_deadline_at``, with a log line saying so; a non-idempotent request whose
  outcome is unknown (sent, then a timeout, a dropped connection or a 5xx) is never blindly repeated:
  ``recover`` checks first whether it took effect and returns what it made (also when the repeat is
  refused as a duplicate: a 409, AI Gateway's 7001 "already exists", Secrets Store's 1003).

No secret reaches a repr, a log record (``aigw.cloudflare``: method, path, status, attempt) or an error.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from aigw._http import ClientStats, RequestBudget, RetryPolicy, parse_rate_limit, parse_retry_after
from aigw.config import DEFAULT_API_BASE_URL, Secret, Settings, redact
from aigw.errors import (
    AigwError,
    AuthenticationError,
    CloudflareError,
    ConflictError,
    DeadlineExceededError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)
from aigw.hosts import EVENT_HOOKS
from aigw.text import one_line

__all__ = [
    "GATEWAY_DEFAULTS",
    "LOG_FIELDS",
    "READ_ONLY_GATEWAY_FIELDS",
    "ClientStats",
    "CloudflareClient",
    "Envelope",
    "Gateway",
    "Log",
    "LogColumns",
    "LogPage",
    "ProviderConfig",
    "RequestBudget",
    "RetryPolicy",
    "Store",
    "StoreSecret",
    "TokenStatus",
    "append_columns",
    "encode_filters",
    "error_for",
    "parse_envelope",
]

logger = logging.getLogger("aigw.cloudflare")

#: What ``create_gateway`` sends for a required field the caller left out (new gateways must be authenticated).
GATEWAY_DEFAULTS: Final[Mapping[str, Any]] = {
    "cache_invalidate_on_update": False,
    "cache_ttl": 0,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
    "authentication": True,
}
#: Gateway fields Cloudflare computes; never sent back in a PUT.
READ_ONLY_GATEWAY_FIELDS: Final = frozenset(
    {"id", "created_at", "modified_at", "is_default", "account_id", "account_tag", "internal_id"}
)
#: Log fields every column set has, in this order (reference §4.1); extra fields the API returns follow.
LOG_FIELDS: Final = (
    "id",
    "created_at",
    "provider",
    "model",
    "model_type",
    "path",
    "request_type",
    "request_content_type",
    "response_content_type",
    "status_code",
    "success",
    "cached",
    "duration",
    "tokens_in",
    "tokens_out",
    "cost",
    "custom_cost",
    "step",
    "metadata",
)
#: Cloudflare's page-size ceilings (2024 schema; the twin enforces the same).
_LOGS_PER_PAGE_MAX: Final = 50
_LIST_PER_PAGE: Final = 50

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
#: A 429 wait this long is shown as it goes (a log line at the start, then every _PROGRESS_EVERY_S).
_LONG_WAIT_S: Final = 10.0
_PROGRESS_EVERY_S: Final = 30.0
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

T = TypeVar("T")
Json = Any


# --- envelope ------------------------------------------------------------------------------------------------


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
    text = " ".join(d.message for d in details)
    hint: str | None = None
    cls: type[CloudflareError]
    if status == 429 or codes & _RATE_CODES:
        cls = RateLimitedError
    elif status >= 500:
        cls = ServerError
    elif status == 403 and not codes & {1000, 6003, 9106}:
        cls = PermissionDeniedError
    elif status == 401 or codes & _AUTH_CODES:
        cls = AuthenticationError
    elif _SECRETS_REFUSED in codes and _SECRETS_QUOTA_WORDS.search(text):
        cls, hint = QuotaExceededError, _STORE_QUOTA_HINT
    elif status in (400, 403, 409) and _QUOTA_WORDS.search(text) and not _ALREADY_EXISTS_WORDS.search(text):
        cls = QuotaExceededError
    elif status == 404 or codes & _NOT_FOUND_CODES or (
        _SECRETS_INVALID in codes and _SECRETS_NOT_FOUND_WORDS.search(text)
    ):
        cls = NotFoundError
    elif status == 409 or (status == 400 and _ALREADY_EXISTS_WORDS.search(text)):
        # A duplicate: Cloudflare's 409s, AI Gateway's 7001 "already exists", Secrets Store's 1003
        # secret_name_already_exists. The check-before-retry of a lost create answer keys on this class.
        cls = ConflictError
    elif status in (400, 422) or codes & _VALIDATION_CODES:
        cls = ValidationError
    else:
        cls = CloudflareError
    what = summary or ("; ".join(str(d) for d in details) if details else "no error details")
    where = f"{method} {path}".strip() or "request"
    message = f"Cloudflare API {where} failed with HTTP {status}: {what}"
    return cls(message, status=status, errors=details, method=method, path=path, hint=hint)


def _excerpt(content: bytes, content_type: str) -> str:
    text = content[:2000].decode("utf-8", "replace")
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAG.sub(" ", text)
    return one_line(text, 100) or "empty body"


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
    secrets = tuple(secrets)
    try:
        body: Json = json.loads(content) if content.strip() else None
        parsed = True
    except (ValueError, UnicodeDecodeError, RecursionError):
        body, parsed = None, False
    if not parsed or (body is None and not (200 <= status < 300 and bare_ok)):
        if 200 <= status < 300 and bare_ok and not parsed:
            return Envelope(status, content.decode("utf-8", "replace"), None, None)
        kind = content_type.split(";")[0].strip() or "no content type"
        excerpt = redact(_excerpt(content, content_type), secrets)
        summary = f"the answer is not Cloudflare JSON ({kind}: {excerpt!r})"
        if 200 <= status < 300:
            raise CloudflareError(
                f"Cloudflare API {method} {path} answered HTTP {status} but {summary}",
                status=status,
                method=method,
                path=path,
                hint="Check CLOUDFLARE_API_BASE_URL: it must be the v4 API (https://api.cloudflare.com/client/v4)",
            )
        raise error_for(status, (), method=method, path=path, summary=summary)
    if isinstance(body, Mapping) and isinstance(body.get("success"), bool):
        if body["success"] and 200 <= status < 300:
            info = body.get("result_info")
            return Envelope(status, body.get("result"), info if isinstance(info, Mapping) else None, body)
        details = _redacted(_error_details(body), secrets)
        if 200 <= status < 300:
            # success: false with a 2xx status: an error all the same; 400 is the closest class.
            raise error_for(400, details, method=method, path=path)
        raise error_for(status, details, method=method, path=path)
    if 200 <= status < 300:
        if bare_ok:
            return Envelope(status, body, None, body)
        raise CloudflareError(
            f"Cloudflare API {method} {path} answered HTTP {status} without Cloudflare's envelope",
            status=status,
            method=method,
            path=path,
            hint="Check CLOUDFLARE_API_BASE_URL: it must be the v4 API (https://api.cloudflare.com/client/v4)",
        )
    details = _redacted(_error_details(body), secrets) if isinstance(body, Mapping) else []
    return_error = error_for(status, details, method=method, path=path)
    raise return_error


def _redacted(details: list[ErrorDetail], secrets: tuple[Secret | str, ...]) -> list[ErrorDetail]:
    if not secrets:
        return details
    return [ErrorDetail(d.code, redact(d.message, secrets), tuple(redact(p, secrets) for p in d.path)) for d in details]


def _with_note(error: CloudflareError, note: str) -> CloudflareError:
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


# --- typed results ---------------------------------------------------------------------------------------------


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _opt_num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _mapping(env: Envelope, what: str, method: str, path: str) -> Mapping[str, Any]:
    if isinstance(env.result, Mapping):
        return env.result
    raise CloudflareError(
        f"Cloudflare API {method} {path}: expected {what} as an object, got {type(env.result).__name__}",
        status=env.status,
        method=method,
        path=path,
        hint="Check CLOUDFLARE_API_BASE_URL points at the v4 API",
    )


def _items(env: Envelope, method: str, path: str) -> list[Mapping[str, Any]]:
    if env.result is None:
        return []
    if not isinstance(env.result, list):
        raise CloudflareError(
            f"Cloudflare API {method} {path}: expected a list, got {type(env.result).__name__}",
            status=env.status,
            method=method,
            path=path,
        )
    return [item for item in env.result if isinstance(item, Mapping)]


@dataclass(frozen=True)
class TokenStatus:
    """What ``GET /user/tokens/verify`` says about the API token (``status``: active, disabled, expired)."""

    id: str
    status: str
    not_before: str | None = None
    expires_on: str | None = None
    #: "user" (``/user/tokens/verify``) or "account" (``/accounts/{a}/tokens/verify``).
    scope: str = "user"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @classmethod
    def from_api(cls, data: Mapping[str, Any], scope: str = "user") -> TokenStatus:
        return cls(
            id=_str(data.get("id")),
            status=_str(data.get("status")),
            not_before=_opt_str(data.get("not_before")),
            expires_on=_opt_str(data.get("expires_on")),
            scope=scope,
            raw=dict(data),
        )


@dataclass(frozen=True)
class Gateway:
    """An AI Gateway (reference §3): the fields the runbook reads, and ``raw`` for everything else."""

    id: str
    cache_invalidate_on_update: bool
    cache_ttl: int | None
    collect_logs: bool
    rate_limiting_interval: int | None
    rate_limiting_limit: int | None
    rate_limiting_technique: str | None = None
    authentication: bool | None = None
    log_management: int | None = None
    log_management_strategy: str | None = None
    logpush: bool | None = None
    retry_backoff: str | None = None
    retry_delay: int | None = None
    retry_max_attempts: int | None = None
    store_id: str | None = None
    workers_ai_billing_mode: str | None = None
    zdr: bool | None = None
    is_default: bool | None = None
    created_at: str | None = None
    modified_at: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Gateway:
        return cls(
            id=_str(data.get("id")),
            cache_invalidate_on_update=_bool(data.get("cache_invalidate_on_update")),
            cache_ttl=_opt_int(data.get("cache_ttl")),
            collect_logs=_bool(data.get("collect_logs")),
            rate_limiting_interval=_opt_int(data.get("rate_limiting_interval")),
            rate_limiting_limit=_opt_int(data.get("rate_limiting_limit")),
            rate_limiting_technique=_opt_str(data.get("rate_limiting_technique")),
            authentication=_opt_bool(data.get("authentication")),
            log_management=_opt_int(data.get("log_management")),
            log_management_strategy=_opt_str(data.get("log_management_strategy")),
            logpush=_opt_bool(data.get("logpush")),
            retry_backoff=_opt_str(data.get("retry_backoff")),
            retry_delay=_opt_int(data.get("retry_delay")),
            retry_max_attempts=_opt_int(data.get("retry_max_attempts")),
            store_id=_opt_str(data.get("store_id")),
            workers_ai_billing_mode=_opt_str(data.get("workers_ai_billing_mode")),
            zdr=_opt_bool(data.get("zdr")),
            is_default=_opt_bool(data.get("is_default")),
            created_at=_opt_str(data.get("created_at")),
            modified_at=_opt_str(data.get("modified_at")),
            raw=dict(data),
        )

    def settings(self) -> dict[str, Any]:
        """The writable fields as Cloudflare returned them: a PUT body, or a snapshot to roll back to."""
        return {k: v for k, v in self.raw.items() if k not in READ_ONLY_GATEWAY_FIELDS}


@dataclass(frozen=True)
class ProviderConfig:
    """A BYOK provider config of a gateway: which stored secret serves (provider_slug, alias)."""

    id: str
    gateway_id: str
    provider_slug: str
    alias: str
    default_config: bool
    secret_id: str | None = None
    modified_at: str | None = None
    rate_limit: float | None = None
    rate_limit_period: float | None = None
    #: Cloudflare's preview of the key (a few characters); kept out of the repr all the same.
    secret_preview: str | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ProviderConfig:
        return cls(
            id=_str(data.get("id")),
            gateway_id=_str(data.get("gateway_id")),
            provider_slug=_str(data.get("provider_slug")),
            alias=_str(data.get("alias")),
            default_config=_bool(data.get("default_config")),
            secret_id=_opt_str(data.get("secret_id")),
            modified_at=_opt_str(data.get("modified_at")),
            rate_limit=_opt_num(data.get("rate_limit")),
            rate_limit_period=_opt_num(data.get("rate_limit_period")),
            secret_preview=_opt_str(data.get("secret_preview")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Store:
    """A Secrets Store."""

    id: str
    name: str
    created: str | None = None
    modified: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Store:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            created=_opt_str(data.get("created")),
            modified=_opt_str(data.get("modified")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class StoreSecret:
    """A secret's metadata in a store (its value is write-only: Cloudflare never returns it)."""

    id: str
    name: str
    store_id: str
    status: str | None = None
    scopes: tuple[str, ...] = ()
    comment: str | None = None
    created: str | None = None
    modified: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], store_id: str = "") -> StoreSecret:
        scopes = data.get("scopes")
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            store_id=_str(data.get("store_id")) or store_id,
            status=_opt_str(data.get("status")),
            scopes=tuple(_str(s) for s in scopes) if isinstance(scopes, list) else (),
            comment=_opt_str(data.get("comment")),
            created=_opt_str(data.get("created")),
            modified=_opt_str(data.get("modified")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Log:
    """One gateway log (list item or detail). ``metadata`` is the parsed ``cf-aig-metadata`` object."""

    id: str
    created_at: str | None
    provider: str | None
    model: str | None
    path: str | None
    success: bool | None
    cached: bool | None
    duration: int | None
    status_code: int | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    step: int | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Log:
        meta = data.get("metadata")
        parsed: Any = meta
        if isinstance(meta, str):
            try:
                parsed = json.loads(meta)
            except (ValueError, RecursionError):
                parsed = None
        return cls(
            id=_str(data.get("id")),
            created_at=_opt_str(data.get("created_at")),
            provider=_opt_str(data.get("provider")),
            model=_opt_str(data.get("model")),
            path=_opt_str(data.get("path")),
            success=_opt_bool(data.get("success")),
            cached=_opt_bool(data.get("cached")),
            duration=_opt_int(data.get("duration")),
            status_code=_opt_int(data.get("status_code")),
            tokens_in=_opt_int(data.get("tokens_in")),
            tokens_out=_opt_int(data.get("tokens_out")),
            cost=_opt_num(data.get("cost")),
            step=_opt_int(data.get("step")),
            metadata=dict(parsed) if isinstance(parsed, Mapping) else {},
            raw=dict(data),
        )


@dataclass(frozen=True)
class LogPage:
    """One page of ``list_logs``; ``result_info`` holds the min/max stats when ``meta_info`` was asked."""

    logs: tuple[Log, ...]
    page: int
    per_page: int
    count: int
    total_count: int | None
    result_info: Mapping[str, Any] = field(default_factory=dict, repr=False)


class LogColumns(dict[str, list[Any]]):
    """Logs as columns: field name -> one value per log, every list the same length (``pd.DataFrame(cols)``).

    ``total_count`` is what the API reported on the first page; ``pages`` how many pages were read.
    """

    def __init__(self, fields: Iterable[str] = LOG_FIELDS) -> None:
        super().__init__((name, []) for name in fields)
        self.rows = 0
        self.pages = 0
        self.total_count: int | None = None

    def __repr__(self) -> str:
        return f"LogColumns(rows={self.rows}, columns={len(self)}, pages={self.pages})"


def append_columns(columns: LogColumns, rows: Sequence[Any], *, seen: set[str] | None = None) -> int:
    """Append ``rows`` (log objects of one page) to ``columns``, column by column; returns rows added.

    A row that is not an object is an error (``CloudflareError``); a row whose ``id`` is in ``seen``
    (a page that shifted while reading) is skipped.
    """
    good: list[Mapping[str, Any]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise CloudflareError(
                f"a logs page holds a {type(row).__name__} where a log object belongs",
                status=200,
                hint="Check CLOUDFLARE_API_BASE_URL points at the v4 API",
            )
        if seen is not None:
            log_id = row.get("id")
            if isinstance(log_id, str):
                if log_id in seen:
                    continue
                seen.add(log_id)
        good.append(row)
    if not good:
        return 0
    keys: dict[str, None] = {}
    for row in good:
        keys.update(dict.fromkeys(row))
    before = columns.rows
    for key in keys:
        column = columns.get(key)
        if column is None:
            column = columns[key] = [None] * before
        column.extend([row.get(key) for row in good])
    padding = [None] * len(good)
    for key, column in columns.items():
        if key not in keys:
            column.extend(padding)
    columns.rows = before + len(good)
    return len(good)


# --- filters ------------------------------------------------------------------------------------------------------

FilterEncoding = Literal["json", "dots"]


def _filter_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def encode_filters(
    filters: Sequence[Mapping[str, Any]] | None, encoding: FilterEncoding = "json"
) -> list[tuple[str, str]]:
    """Query items for Cloudflare's ``filters`` (``[{key, operator, value: [...]}, ...]``).

    ``"json"``: one ``filters=<JSON array>`` (what real callers of the logs API send; unambiguous with
    several filters). ``"dots"``: the official SDKs' form, ``filters.key=..&filters.operator=..&filters.value=..``.
    """
    if not filters:
        return []
    normalised: list[dict[str, Any]] = []
    for item in filters:
        if not isinstance(item, Mapping) or not {"key", "operator", "value"} <= set(item):
            raise ValidationError(
                f"a logs filter must be an object with key, operator and value, got {one_line(repr(item), 80)}",
                status=0,
                hint='Write filters like {"key": "model", "operator": "eq", "value": ["gpt-4o-mini"]}',
            )
        value = item["value"]
        values = list(value) if isinstance(value, list | tuple) else [value]
        normalised.append({"key": str(item["key"]), "operator": str(item["operator"]), "value": values})
    if encoding == "json":
        # ASSUMPTION: Cloudflare parses filters=<JSON array> (third-party Workers send it); the twin accepts
        # both this and the SDKs' dotted form.
        return [("filters", json.dumps(normalised, separators=(",", ":")))]
    items: list[tuple[str, str]] = []
    for entry in normalised:
        items.append(("filters.key", entry["key"]))
        items.append(("filters.operator", entry["operator"]))
        items.extend(("filters.value", _filter_value(v)) for v in entry["value"])
    return items


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- the client ----------------------------------------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` at send time, so the token sits in no client-level header."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


Recover = Callable[[float], Envelope | None]


class CloudflareClient:
    """The v4 API, bound to one account and one API token.

    **Parameters:**
    * base_url - the v4 API root (``https://api.cloudflare.com/client/v4``, or a twin's ``.../client/v4``).
    * api_token - the API token (a ``Secret``).
    * account_id - the 32-hex account id every operation is bound to.
    * timeout - seconds per attempt (connect, read, write).
    * deadline - seconds one operation may take in all: attempts, backoff, budget waits and recovery checks.
    * budget - the token's ``RequestBudget``; by default the process-wide one of ``api_token``.
    * retry - the ``RetryPolicy`` (attempts, backoff).
    * run_deadline_at - a ``time.monotonic()`` instant no wait for a spent API budget may pass; by default
      an operation may wait one ``retry.max_retry_after_s`` beyond its own ``deadline``.
    * transport - an httpx transport (tests); by default real HTTP.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        api_token: Secret,
        account_id: str,
        timeout: float = 30.0,
        deadline: float = 120.0,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        filter_encoding: FilterEncoding = "json",
        seed: int | None = None,
        run_deadline_at: float | None = None,
    ) -> None:
        if not isinstance(api_token, Secret):
            raise TypeError("api_token must be an aigw.config.Secret")
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.timeout = timeout
        self.deadline = deadline
        self.budget = budget if budget is not None else RequestBudget.shared(api_token)
        self.retry = retry or RetryPolicy()
        self.run_deadline_at = run_deadline_at
        self.filter_encoding: FilterEncoding = filter_encoding
        self.stats = ClientStats()
        self._token = api_token
        self._host = urlsplit(self.base_url).netloc or self.base_url
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            auth=_BearerAuth(api_token),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "aigw-runbook"},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            event_hooks=dict(EVENT_HOOKS),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CloudflareClient:
        """A client for ``settings``' account, token, API base URL and budget (``ConfigError`` without a token)."""
        token = settings.require_api_token()
        options.setdefault("budget", RequestBudget.shared(token, *settings.api_budget))
        return cls(base_url=settings.api_base_url, api_token=token, account_id=settings.account_id, **options)

    def __repr__(self) -> str:
        return f"CloudflareClient(base_url={self.base_url!r}, account_id={self.account_id!r})"

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the request loop --------------------------------------------------------------------------------

    def _account(self, path: str) -> str:
        return f"accounts/{self.account_id}/{path.lstrip('/')}"

    def _secrets(self, extra: Iterable[Secret]) -> tuple[Secret, ...]:
        return (self._token, *extra)

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return self.retry.backoff(retry, self._rng, retry_after)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Json = None,
        idempotent: bool = True,
        recover: Recover | None = None,
        missing_ok: bool = False,
        bare_ok: bool = False,
        secrets: Iterable[Secret] = (),
        deadline_at: float | None = None,
    ) -> Envelope:
        """One operation: budget, attempts, parsing, retries and the check-before-retry recovery."""
        secret_list = self._secrets(secrets)
        started_at = self._clock()
        if deadline_at is None:
            deadline_at = started_at + self.deadline
        # How long a spent API budget may hold this operation up: the run's deadline, else one window more.
        wait_limit_at = (self.run_deadline_at if self.run_deadline_at is not None
                         else deadline_at + self.retry.max_retry_after_s)
        shown = "/" + path
        unknown_outcome = False
        attempt = 0
        while True:
            attempt += 1
            if unknown_outcome and recover is not None:
                found = recover(deadline_at)
                if found is not None:
                    self.stats.count_recovery("took_effect")
                    logger.info("%s %s had taken effect; recovered without repeating it", method, shown)
                    return found
                self.stats.count_recovery("absent")
            remaining = deadline_at - self._clock()
            if remaining <= 0:
                raise DeadlineExceededError(
                    f"{method} {shown} ran out of its {self.deadline:g} s deadline after {attempt - 1} attempt(s)",
                    hint="Cloudflare is slow or unreachable; run again later (re-running is safe)",
                )
            started = self._clock()
            slot = self.budget.acquire(deadline_at)
            waited = self._clock() - started
            if waited > 0.001:
                self.stats.count_budget_wait(waited)
            remaining = deadline_at - self._clock()
            self.stats.count_request()
            failure: AigwError
            retry_after: float | None = None
            try:
                response = self._http.request(
                    method,
                    path,
                    params=list(params) if params else None,
                    json=body,
                    timeout=max(0.001, min(self.timeout, remaining)),
                )
            except httpx.HTTPError as exc:
                self.budget.release(slot)
                timed_out = isinstance(exc, httpx.TimeoutException)
                reason = "timeout" if timed_out else "connection"
                if not isinstance(exc, _NOT_SENT) and not idempotent:
                    unknown_outcome = True
                logger.debug("%s %s -> no answer (%s, attempt %d)", method, shown, type(exc).__name__, attempt)
                failure = TransportError(
                    f"no answer from {self._host} to {method} {shown} ({type(exc).__name__})",
                    hint="Check the network and CLOUDFLARE_API_BASE_URL; re-running is safe",
                )
            else:
                sent_at = slot[0]
                self.budget.release(slot)
                limits = parse_rate_limit(response.headers)
                # A 429's own Retry-After says when to try again; its "remaining 0" must not also become a
                # window-long (300 s) wait in the budget.
                self.budget.observe(
                    limits.limit, None if response.status_code == 429 else limits.remaining,
                    sent_at=sent_at, reset_s=limits.reset_s,
                )
                logger.debug("%s %s -> %d (attempt %d)", method, shown, response.status_code, attempt)
                try:
                    return parse_envelope(
                        response.status_code,
                        response.content,
                        content_type=response.headers.get("content-type", ""),
                        method=method,
                        path=shown,
                        secrets=secret_list,
                        bare_ok=bare_ok,
                    )
                except RateLimitedError as err:
                    reason, failure = "429", err
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if retry_after is None and limits.remaining == 0:
                        retry_after = limits.reset_s
                except ServerError as err:
                    reason, failure = "5xx", err
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if not idempotent:
                        unknown_outcome = True
                except (ConflictError, QuotaExceededError):
                    # After a lost answer, "already exists" (or, for the one store an account may have,
                    # maximum_stores_exceeded) may be this very request's doing: check, and adopt it.
                    if unknown_outcome and recover is not None:
                        found = recover(deadline_at)
                        if found is not None:
                            self.stats.count_recovery("took_effect")
                            return found
                    raise
                except NotFoundError:
                    if missing_ok and attempt > 1:
                        # A retried delete whose first attempt went through: the goal is reached.
                        self.stats.count_recovery("already_gone")
                        return Envelope(response.status_code, None)
                    raise
            if attempt >= self.retry.attempts:
                note = f"gave up after {attempt} attempts"
                if isinstance(failure, CloudflareError):
                    raise _with_note(failure, note) from None
                raise TransportError(f"{failure.message} ({note})", hint=failure.hint) from None
            delay = self._backoff(attempt, retry_after)
            blocked = reason == "429" and retry_after is not None
            if blocked:
                # A spent budget blocks every call until its window ends: waiting it out is the only way
                # on, so the wait may pass this operation's deadline, not the run's.
                if self._clock() + delay + self.timeout > wait_limit_at:
                    assert isinstance(failure, CloudflareError)
                    raise _with_note(failure, f"the API budget is blocked for {delay:.0f} s more, past the "
                                              f"run's deadline") from None
                deadline_at = max(deadline_at, self._clock() + delay + self.timeout)
            if self._clock() + delay >= deadline_at:
                note = f"no time left in the {self.deadline:g} s deadline to retry after {attempt} attempt(s)"
                if isinstance(failure, CloudflareError):
                    raise _with_note(failure, note) from None
                raise DeadlineExceededError(f"{failure.message} ({note})", hint=failure.hint) from None
            self.stats.count_retry(reason)
            if blocked and delay >= _LONG_WAIT_S:
                self._wait_out_budget(method, shown, delay)
            else:
                logger.info("retrying %s %s after %s in %.2f s (attempt %d)", method, shown, reason, delay, attempt)
                self._sleep(delay)

    def _wait_out_budget(self, method: str, shown: str, delay: float) -> None:
        """Sleep ``delay`` seconds for the API budget's window to end, saying so as the wait goes on."""
        logger.warning("Cloudflare's API budget is spent (429 on %s %s): waiting %.0f s for its window to end",
                       method, shown, delay)
        left = delay
        while left > 0:
            step = min(left, _PROGRESS_EVERY_S)
            self._sleep(step)
            left -= step
            if left > 0:
                logger.warning("still waiting for Cloudflare's API budget: %.0f s left", left)

    def _pages(
        self,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        per_page: int = _LIST_PER_PAGE,
        max_pages: int = 10_000,
    ) -> Iterator[Envelope]:
        """Every page of a list, as the official SDKs read them: page 1, 2, ... until an empty page."""
        for page in range(1, max_pages + 1):
            query = [*params, ("page", str(page)), ("per_page", str(per_page))]
            env = self._send("GET", path, params=query)
            if not isinstance(env.result, list) or not env.result:
                if env.result is not None and not isinstance(env.result, list):
                    _items(env, "GET", "/" + path)  # raises: a list was expected
                return
            yield env

    def _list_all(self, path: str, params: Sequence[tuple[str, str]] = (), per_page: int = _LIST_PER_PAGE) -> list[
        Mapping[str, Any]
    ]:
        items: list[Mapping[str, Any]] = []
        for env in self._pages(path, params, per_page=per_page):
            items.extend(_items(env, "GET", "/" + path))
        return items

    # -- token ----------------------------------------------------------------------------------------------

    def verify_token(self) -> TokenStatus:
        """The API token's status (``GET /user/tokens/verify``).

        An account-owned token is not a user token: when the user endpoint says 401, the account's
        ``/accounts/{a}/tokens/verify`` is asked; if that fails too, the first error stands, unless the
        account id names no account (7003): then that is what to fix.
        """
        try:
            env = self._send("GET", "user/tokens/verify")
            return TokenStatus.from_api(_mapping(env, "a token", "GET", "/user/tokens/verify"), "user")
        except AuthenticationError as first:
            try:
                path = self._account("tokens/verify")
                env = self._send("GET", path)
            except NotFoundError as missing:
                if missing.status != 400 or 7003 not in missing.codes:
                    raise first from None  # not "Could not route to ...": the endpoint, not the account
                raise NotFoundError(
                    f"account {self.account_id} does not exist: {missing.message}", status=missing.status,
                    errors=missing.errors, method=missing.method, path=missing.path,
                    hint="Check CLOUDFLARE_ACCOUNT_ID (dashboard: Account Home > account menu > Copy account ID)",
                ) from None
            except CloudflareError:
                raise first from None
            return TokenStatus.from_api(_mapping(env, "a token", "GET", "/" + path), "account")

    # -- gateways -----------------------------------------------------------------------------------------

    def _gateway_path(self, gateway_id: str, rest: str = "") -> str:
        tail = f"/{rest}" if rest else ""
        return self._account(f"ai-gateway/gateways/{quote(gateway_id, safe='')}{tail}")

    def list_gateways(self, search: str | None = None) -> list[Gateway]:
        params = [("search", search)] if search else []
        path = self._account("ai-gateway/gateways")
        return [Gateway.from_api(item) for item in self._list_all(path, params)]

    def get_gateway(self, gateway_id: str, *, deadline_at: float | None = None) -> Gateway:
        path = self._gateway_path(gateway_id)
        env = self._send("GET", path, deadline_at=deadline_at)
        return Gateway.from_api(_mapping(env, "a gateway", "GET", "/" + path))

    def find_gateway(self, gateway_id: str) -> Gateway | None:
        """The gateway, or None when the account has no gateway of that id."""
        try:
            return self.get_gateway(gateway_id)
        except NotFoundError:
            return None

    def _recover_by_get(self, path: str) -> Recover:
        def recover(deadline_at: float) -> Envelope | None:
            try:
                return self._send("GET", path, deadline_at=deadline_at)
            except NotFoundError:
                return None

        return recover

    def create_gateway(self, gateway_id: str, settings: Mapping[str, Any] | None = None) -> Gateway:
        """Create the gateway; a required field missing from ``settings`` comes from ``GATEWAY_DEFAULTS``."""
        body = {**GATEWAY_DEFAULTS, **dict(settings or {}), "id": gateway_id}
        path = self._account("ai-gateway/gateways")
        env = self._send(
            "POST", path, body=body, idempotent=False, recover=self._recover_by_get(self._gateway_path(gateway_id))
        )
        return Gateway.from_api(_mapping(env, "a gateway", "POST", "/" + path))

    def update_gateway(self, gateway_id: str, settings: Mapping[str, Any]) -> Gateway:
        """PUT the gateway: its current writable fields with ``settings`` over them (PUT replaces the whole)."""
        deadline_at = self._clock() + self.deadline
        current = self.get_gateway(gateway_id, deadline_at=deadline_at)
        body = {**current.settings(), **{k: v for k, v in settings.items() if k not in READ_ONLY_GATEWAY_FIELDS}}
        path = self._gateway_path(gateway_id)
        env = self._send("PUT", path, body=body, deadline_at=deadline_at)
        return Gateway.from_api(_mapping(env, "a gateway", "PUT", "/" + path))

    def delete_gateway(self, gateway_id: str) -> None:
        self._send("DELETE", self._gateway_path(gateway_id), missing_ok=True)

    def gateway_url(self, gateway_id: str, provider: str) -> str:
        """The gateway's endpoint URL for ``provider`` as Cloudflare states it (``GET .../url/{provider}``)."""
        path = self._gateway_path(gateway_id, f"url/{quote(provider, safe='')}")
        env = self._send("GET", path)
        if not isinstance(env.result, str):
            raise CloudflareError(
                f"Cloudflare API GET /{path}: expected a URL string, got {type(env.result).__name__}",
                status=env.status,
                method="GET",
                path="/" + path,
            )
        return env.result

    # -- logs ----------------------------------------------------------------------------------------------

    def _log_params(
        self,
        filters: Sequence[Mapping[str, Any]] | None,
        order_by: str | None,
        order_by_direction: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, str]]:
        params = encode_filters(filters, self.filter_encoding)
        if order_by:
            params.append(("order_by", order_by))
        if order_by_direction:
            params.append(("order_by_direction", order_by_direction))
        for key, value in (extra or {}).items():
            if value is not None:
                params.append((key, _filter_value(value)))
        return params

    def list_logs(
        self,
        gateway_id: str,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        page: int = 1,
        per_page: int = _LOGS_PER_PAGE_MAX,
        meta_info: bool = False,
        search: str | None = None,
    ) -> LogPage:
        """One page of the gateway's logs."""
        params = self._log_params(filters, order_by, order_by_direction, {"search": search})
        params += [("page", str(page)), ("per_page", str(per_page))]
        if meta_info:
            params.append(("meta_info", "true"))
        path = self._gateway_path(gateway_id, "logs")
        env = self._send("GET", path, params=params)
        rows = _items(env, "GET", "/" + path)
        info = dict(env.result_info or {})
        return LogPage(
            logs=tuple(Log.from_api(row) for row in rows),
            page=_opt_int(info.get("page")) or page,
            per_page=_opt_int(info.get("per_page")) or per_page,
            count=_opt_int(info.get("count")) or len(rows),
            total_count=_opt_int(info.get("total_count")),
            result_info=info,
        )

    def _log_page_rows(self, path: str, params: Sequence[tuple[str, str]], page: int, per_page: int) -> tuple[
        list[Any], int | None
    ]:
        env = self._send("GET", path, params=[*params, ("page", str(page)), ("per_page", str(per_page))])
        if env.result is None:
            return [], None
        if not isinstance(env.result, list):
            _items(env, "GET", "/" + path)  # raises
        total = _opt_int((env.result_info or {}).get("total_count"))
        return list(env.result), total

    def fetch_logs(
        self,
        gateway_id: str,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        per_page: int = _LOGS_PER_PAGE_MAX,
        concurrency: int = 4,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        max_logs: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> LogColumns:
        """Every log that matches, parsed straight into columns (``pd.DataFrame(result)``).

        Page 1 tells ``total_count``; the pages it implies are read ``concurrency`` at a time (inside the
        budget), then pages after them until an empty one, as the SDKs do (logs may arrive meanwhile).
        Oldest first by default, so logs written during the read land on later pages; a log seen twice
        (a shifted page) is kept once. ``progress(rows_so_far, total_count)`` is called after each page.
        """
        all_filters = list(filters or [])
        if since is not None:
            all_filters.append({"key": "created_at", "operator": "gt", "value": [_iso(since)]})
        if until is not None:
            all_filters.append({"key": "created_at", "operator": "lt", "value": [_iso(until)]})
        params = self._log_params(all_filters, order_by, order_by_direction)
        path = self._gateway_path(gateway_id, "logs")
        columns = LogColumns()
        seen: set[str] = set()

        def take(rows: list[Any]) -> bool:
            """Add a page; False when the reading should stop (empty page or ``max_logs`` reached)."""
            if not rows:
                return False
            columns.pages += 1
            if max_logs is not None:
                rows = rows[: max(0, max_logs - columns.rows)]
            append_columns(columns, rows, seen=seen)
            if progress is not None:
                progress(columns.rows, columns.total_count)
            return max_logs is None or columns.rows < max_logs

        rows, total = self._log_page_rows(path, params, 1, per_page)
        columns.total_count = total
        if not take(rows):
            return columns
        workers = max(1, concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aigw-logs") as pool:

            def read(pages: Sequence[int]) -> bool:
                """Read ``pages`` (in parallel), add them in order; False once an empty page is met."""
                results = pool.map(lambda p: self._log_page_rows(path, params, p, per_page)[0], pages)
                going = True
                for page_rows in results:  # every result is consumed, so a failed page always raises
                    going = going and take(page_rows)
                return going

            next_page = 2
            if total is not None:
                last = math.ceil(total / per_page)
                if max_logs is not None:
                    last = min(last, math.ceil(max_logs / per_page))
                if last >= next_page:
                    if not read(range(next_page, last + 1)):
                        return columns
                    next_page = last + 1
            # Past the pages page 1 announced (or with no total at all): until an empty page.
            step = 1 if total is not None else workers
            while read(range(next_page, next_page + step)):
                next_page += step
        return columns

    def query_telemetry(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """One Workers Observability query (``POST /accounts/{a}/workers/observability/telemetry/query``):
        where an account created since 2026-09-24 keeps its gateway logs. Read-only, so retried like a GET."""
        path = self._account("workers/observability/telemetry/query")
        env = self._send("POST", path, body=dict(body), idempotent=True)
        return _mapping(env, "a query result", "POST", "/" + path)

    def get_log(self, gateway_id: str, log_id: str) -> Log:
        path = self._gateway_path(gateway_id, f"logs/{quote(log_id, safe='')}")
        env = self._send("GET", path)
        return Log.from_api(_mapping(env, "a log", "GET", "/" + path))

    def _log_body(self, gateway_id: str, log_id: str, which: str) -> Json:
        # ASSUMPTION: the stored body may come wrapped in the envelope or bare (the schema declares only
        # "object"); both are accepted and the body itself is returned.
        path = self._gateway_path(gateway_id, f"logs/{quote(log_id, safe='')}/{which}")
        return self._send("GET", path, bare_ok=True).result

    def get_log_request(self, gateway_id: str, log_id: str) -> Json:
        """The request body the gateway stored for the log (JSON, or text)."""
        return self._log_body(gateway_id, log_id, "request")

    def get_log_response(self, gateway_id: str, log_id: str) -> Json:
        """The response body the gateway stored for the log (JSON, or text)."""
        return self._log_body(gateway_id, log_id, "response")

    def delete_logs(
        self,
        gateway_id: str,
        filters: Sequence[Mapping[str, Any]] | None = None,
        limit: int | None = None,
        *,
        order_by: str | None = None,
        order_by_direction: str | None = None,
    ) -> None:
        """Delete the logs that match ``filters`` (at most ``limit``, 1..10,000). Cloudflare deletes asynchronously."""
        if limit is not None and not 1 <= limit <= 10_000:
            raise ValidationError(
                f"delete_logs limit {limit} is out of range",
                status=0,
                hint="Use a limit between 1 and 10000 (Cloudflare's bound)",
            )
        params = self._log_params(filters, order_by, order_by_direction, {"limit": limit})
        self._send("DELETE", self._gateway_path(gateway_id, "logs"), params=params)

    # -- provider configs (BYOK) -----------------------------------------------------------------------------

    def list_provider_configs(self, gateway_id: str) -> list[ProviderConfig]:
        path = self._gateway_path(gateway_id, "provider_configs")
        return [ProviderConfig.from_api(item) for item in self._list_all(path)]

    def create_provider_config(
        self,
        gateway_id: str,
        provider_slug: str,
        alias: str,
        secret_id: str | None = None,
        secret: Secret | None = None,
        default_config: bool = True,
        *,
        rate_limit: float | None = None,
        rate_limit_period: float | None = None,
    ) -> ProviderConfig:
        """Attach a provider key to the gateway: a stored secret (``secret_id``) or the key itself (``secret``)."""
        if (secret_id is None) == (secret is None):
            raise ValidationError(
                "create_provider_config needs exactly one of secret_id and secret",
                status=0,
                hint="Pass the Secrets Store secret's id, or the key as a Secret",
            )
        body: dict[str, Any] = {"provider_slug": provider_slug, "alias": alias, "default_config": default_config}
        if secret_id is not None:
            body["secret_id"] = secret_id
        if rate_limit is not None:
            body["rate_limit"] = rate_limit
        if rate_limit_period is not None:
            body["rate_limit_period"] = rate_limit_period
        path = self._gateway_path(gateway_id, "provider_configs")

        def recover(deadline_at: float) -> Envelope | None:
            for item in self._list_all_until(path, deadline_at):
                if item.get("provider_slug") == provider_slug and item.get("alias") == alias:
                    return Envelope(200, item)
            return None

        extra = (secret,) if secret is not None else ()
        if secret is not None:
            body["secret"] = secret.reveal()
        env = self._send("POST", path, body=body, idempotent=False, recover=recover, secrets=extra)
        return ProviderConfig.from_api(_mapping(env, "a provider config", "POST", "/" + path))

    def _list_all_until(self, path: str, deadline_at: float) -> list[Mapping[str, Any]]:
        """``_list_all`` inside a caller's deadline (recovery checks share the operation's deadline)."""
        items: list[Mapping[str, Any]] = []
        for page in range(1, 10_001):
            query = [("page", str(page)), ("per_page", str(_LIST_PER_PAGE))]
            env = self._send("GET", path, params=query, deadline_at=deadline_at)
            page_items = _items(env, "GET", "/" + path)
            if not page_items:
                break
            items.extend(page_items)
        return items

    def update_provider_config(self, gateway_id: str, config_id: str, secret: Secret) -> ProviderConfig:
        """Rotate the key behind a provider config (PUT ``{"secret": ...}``)."""
        path = self._gateway_path(gateway_id, f"provider_configs/{quote(config_id, safe='')}")
        env = self._send("PUT", path, body={"secret": secret.reveal()}, secrets=(secret,))
        return ProviderConfig.from_api(_mapping(env, "a provider config", "PUT", "/" + path))

    def delete_provider_config(self, gateway_id: str, config_id: str) -> None:
        path = self._gateway_path(gateway_id, f"provider_configs/{quote(config_id, safe='')}")
        self._send("DELETE", path, missing_ok=True)

    # -- Secrets Store ---------------------------------------------------------------------------------------

    def _store_path(self, store_id: str | None = None, rest: str = "") -> str:
        path = "secrets_store/stores"
        if store_id is not None:
            path += f"/{quote(store_id, safe='')}"
        if rest:
            path += f"/{rest}"
        return self._account(path)

    def list_stores(self) -> list[Store]:
        return [Store.from_api(item) for item in self._list_all(self._store_path())]

    def find_store(self, name: str) -> Store | None:
        return next((store for store in self.list_stores() if store.name == name), None)

    def get_store(self, store_id: str) -> Store:
        path = self._store_path(store_id)
        env = self._send("GET", path)
        return Store.from_api(_mapping(env, "a store", "GET", "/" + path))

    def create_store(self, name: str) -> Store:
        path = self._store_path()

        def recover(deadline_at: float) -> Envelope | None:
            for item in self._list_all_until(path, deadline_at):
                if item.get("name") == name:
                    return Envelope(200, item)
            return None

        env = self._send("POST", path, body={"name": name}, idempotent=False, recover=recover)
        result = env.result[0] if isinstance(env.result, list) and env.result else env.result
        return Store.from_api(_mapping(Envelope(env.status, result), "a store", "POST", "/" + path))

    def delete_store(self, store_id: str, force: bool = False) -> None:
        """Delete the store; a store that still holds secrets needs ``force`` (else ``ConflictError``)."""
        params = [("force", "true")] if force else None
        self._send("DELETE", self._store_path(store_id), params=params, missing_ok=True)

    def list_secrets(self, store_id: str, search: str | None = None) -> list[StoreSecret]:
        params = [("search", search)] if search else []
        items = self._list_all(self._store_path(store_id, "secrets"), params)
        return [StoreSecret.from_api(item, store_id) for item in items]

    def find_secret(self, store_id: str, name: str) -> StoreSecret | None:
        return next((s for s in self.list_secrets(store_id, search=name) if s.name == name), None)

    def get_secret(self, store_id: str, secret_id: str) -> StoreSecret:
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        env = self._send("GET", path)
        return StoreSecret.from_api(_mapping(env, "a secret", "GET", "/" + path), store_id)

    def create_secret(
        self,
        store_id: str,
        name: str,
        value: Secret,
        scopes: Sequence[str] = ("ai_gateway",),
        comment: str | None = None,
    ) -> StoreSecret:
        """Store ``value`` as secret ``name`` (Cloudflare takes a JSON array of secrets; this sends one)."""
        item: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if comment is not None:
            item["comment"] = comment
        path = self._store_path(store_id, "secrets")

        def recover(deadline_at: float) -> Envelope | None:
            params = [("search", name)]
            for page in range(1, 10_001):
                query = [*params, ("page", str(page)), ("per_page", str(_LIST_PER_PAGE))]
                found = _items(self._send("GET", path, params=query, deadline_at=deadline_at), "GET", "/" + path)
                if not found:
                    return None
                for entry in found:
                    if entry.get("name") == name:
                        return Envelope(200, entry)
            return None

        item["value"] = value.reveal()
        env = self._send("POST", path, body=[item], idempotent=False, recover=recover, secrets=(value,))
        result = env.result
        if isinstance(result, list):
            result = next((r for r in result if isinstance(r, Mapping) and r.get("name") == name), None)
        return StoreSecret.from_api(_mapping(Envelope(env.status, result), "a secret", "POST", "/" + path), store_id)

    def update_secret(
        self, store_id: str, secret_id: str, value: Secret | None = None, comment: str | None = None
    ) -> StoreSecret:
        """PATCH the secret: a new value (rotation) and/or comment. Repeating it is harmless."""
        body: dict[str, Any] = {}
        if comment is not None:
            body["comment"] = comment
        if value is not None:
            body["value"] = value.reveal()
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        extra = (value,) if value is not None else ()
        env = self._send("PATCH", path, body=body, secrets=extra)
        return StoreSecret.from_api(_mapping(env, "a secret", "PATCH", "/" + path), store_id)

    def delete_secret(self, store_id: str, secret_id: str) -> None:
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        self._send("DELETE", path, missing_ok=True)
