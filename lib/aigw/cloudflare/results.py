"""Typed results of the v4 API: what each operation returns, read leniently from Cloudflare's JSON.

Each result keeps the fields the runbook reads and ``raw`` (everything Cloudflare sent); a field of an
unexpected type becomes None (or its default) rather than an error. ``LogColumns`` holds logs as columns,
filled page by page by ``append_columns``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aigw.cloudflare.envelope import Envelope
from aigw.errors import CloudflareError

__all__ = [
    "LOG_FIELDS",
    "READ_ONLY_GATEWAY_FIELDS",
    "Gateway",
    "Log",
    "LogColumns",
    "LogPage",
    "ProviderConfig",
    "Store",
    "StoreSecret",
    "TokenStatus",
    "append_columns",
    "as_items",
    "as_object",
]

#: Gateway fields Cloudflare computes; never sent back in a PUT.
READ_ONLY_GATEWAY_FIELDS: Final = frozenset(
    {"id", "created_at", "modified_at", "is_default", "account_id", "account_tag", "internal_id"}
)
# Independent of cftwin.logs.rows on purpose: the twin and the runbook share no constant (docs/ARCHITECTURE.md).
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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def opt_int(value: Any) -> int | None:
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


def as_object(env: Envelope, what: str, method: str, path: str) -> Mapping[str, Any]:
    if isinstance(env.result, Mapping):
        return env.result
    raise CloudflareError(
        f"Cloudflare API {method} {path}: expected {what} as an object, got {type(env.result).__name__}",
        status=env.status,
        method=method,
        path=path,
        hint="Check CLOUDFLARE_API_BASE_URL points at the v4 API",
    )


def as_items(env: Envelope, method: str, path: str) -> list[Mapping[str, Any]]:
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


# Each from_api names its fields one by one, alike in shape: which lenient reader a field gets stays visible.
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
            cache_ttl=opt_int(data.get("cache_ttl")),
            collect_logs=_bool(data.get("collect_logs")),
            rate_limiting_interval=opt_int(data.get("rate_limiting_interval")),
            rate_limiting_limit=opt_int(data.get("rate_limiting_limit")),
            rate_limiting_technique=_opt_str(data.get("rate_limiting_technique")),
            authentication=_opt_bool(data.get("authentication")),
            log_management=opt_int(data.get("log_management")),
            log_management_strategy=_opt_str(data.get("log_management_strategy")),
            logpush=_opt_bool(data.get("logpush")),
            retry_backoff=_opt_str(data.get("retry_backoff")),
            retry_delay=opt_int(data.get("retry_delay")),
            retry_max_attempts=opt_int(data.get("retry_max_attempts")),
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
            duration=opt_int(data.get("duration")),
            status_code=opt_int(data.get("status_code")),
            tokens_in=opt_int(data.get("tokens_in")),
            tokens_out=opt_int(data.get("tokens_out")),
            cost=_opt_num(data.get("cost")),
            step=opt_int(data.get("step")),
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
    good = _new_rows(rows, seen)
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



def _new_rows(rows: Sequence[Any], seen: set[str] | None) -> list[Mapping[str, Any]]:
    """The log objects of ``rows`` whose ``id`` is not in ``seen`` (which gains them)."""
    new: list[Mapping[str, Any]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise CloudflareError(
                f"a logs page holds a {type(row).__name__} where a log object belongs",
                status=200,
                hint="Check CLOUDFLARE_API_BASE_URL points at the v4 API",
            )
        log_id = row.get("id")
        if seen is not None and isinstance(log_id, str):
            if log_id in seen:
                continue
            seen.add(log_id)
        new.append(row)
    return new
