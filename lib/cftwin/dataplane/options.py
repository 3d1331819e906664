"""The ``cf-aig-*`` request headers, read once per request, with the gateway's settings as defaults.

Precedence (Cloudflare's): request headers over gateway settings. ASSUMPTION: values past a documented
limit are capped at it (retries: 5 attempts, 5,000 ms delay); values that do not parse are ignored.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cftwin import jsonbody
from cftwin.dataplane.cache import MAX_TTL_S, MIN_TTL_S

__all__ = [
    "CUSTOM_KEY_TTL_S",
    "MAX_ATTEMPTS",
    "MAX_METADATA_ENTRIES",
    "MAX_RETRY_DELAY_MS",
    "RequestOptions",
    "parse_bool",
    "parse_custom_cost",
    "parse_metadata",
    "read_options",
    "retry_delay_ms",
]

MAX_ATTEMPTS: Final = 5
MAX_RETRY_DELAY_MS: Final = 5000
MAX_METADATA_ENTRIES: Final = 5
#: A request with ``cf-aig-cache-key`` on a gateway without caching is cached this long (docs: 5 minutes).
CUSTOM_KEY_TTL_S: Final = 300
_BACKOFFS: Final = frozenset({"constant", "linear", "exponential"})


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _json_object_header(value: str | None) -> dict[str, Any] | None:
    """A header whose value must be a JSON object; None when absent, not JSON, or not an object."""
    if not value:
        return None
    try:
        parsed = jsonbody.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def parse_metadata(value: str | None) -> dict[str, str | int | float | bool] | None:
    """``cf-aig-metadata``: a JSON object; the first 5 entries whose values are string/number/boolean.

    ASSUMPTION: a header that is not a JSON object is ignored (the request is served and logged
    without metadata), and entries with other values (null, lists, objects) are dropped.
    """
    parsed = _json_object_header(value)
    if parsed is None:
        return None
    kept: dict[str, str | int | float | bool] = {}
    for key, item in parsed.items():
        if len(kept) >= MAX_METADATA_ENTRIES:
            break
        if isinstance(item, str | bool | int | float):
            kept[str(key)] = item
    return kept or None


def parse_custom_cost(value: str | None) -> tuple[float, float] | None:
    """``cf-aig-custom-cost``: ``{"per_token_in": n, "per_token_out": n}`` (USD per token)."""
    parsed = _json_object_header(value)
    if parsed is None:
        return None
    rates: list[float] = []
    for name in ("per_token_in", "per_token_out"):
        item = parsed.get(name, 0)
        if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
            return None
        rates.append(float(item))
    return rates[0], rates[1]


@dataclass(frozen=True, slots=True)
class RequestOptions:
    collect_log: bool
    collect_payload: bool
    cache_ttl_s: int  # 0: no caching for this request
    skip_cache: bool
    cache_key: str | None
    timeout_ms: int | None
    max_attempts: int
    retry_delay_ms: int
    backoff: str
    metadata: dict[str, str | int | float | bool] | None
    event_id: str | None
    custom_cost: tuple[float, float] | None
    byok_alias: str | None


def _header(headers: Mapping[str, str], name: str, legacy: str | None = None) -> str | None:
    value = headers.get(name)
    if value is None and legacy is not None:
        value = headers.get(legacy)
    return value


#: Every header ``read_options`` looks at: a request with none of them gets the gateway's defaults.
_OPTION_HEADERS: Final = frozenset({
    "cf-aig-collect-log", "cf-aig-collect-log-payload", "cf-aig-cache-key", "cf-aig-cache-ttl", "cf-cache-ttl",
    "cf-aig-skip-cache", "cf-skip-cache", "cf-aig-request-timeout", "cf-aig-max-attempts", "cf-aig-retry-delay",
    "cf-aig-backoff", "cf-aig-byok-alias", "cf-aig-metadata", "cf-aig-event-id", "cf-aig-custom-cost",
})


def read_options(headers: Mapping[str, str], gateway: dict[str, Any]) -> RequestOptions:
    if _OPTION_HEADERS.isdisjoint(headers.keys()):
        return _gateway_defaults(gateway)
    return _read_options(headers, gateway)


def _gateway_defaults(gateway: dict[str, Any]) -> RequestOptions:
    fields = tuple(map(gateway.get, _DEFAULT_FIELDS))
    # Keyed with the types too: True, 1 and 1.0 are one key to a dict, not one setting to _int.
    try:
        return _cached_defaults(tuple(map(type, fields)), fields)
    except TypeError:  # a field that is not hashable (not a valid setting): made each time
        return _defaults_of(fields)


#: The gateway settings a request without option headers depends on (and nothing else).
_DEFAULT_FIELDS: Final = ("collect_logs", "cache_ttl", "retry_max_attempts", "retry_delay", "retry_backoff")


@functools.lru_cache(maxsize=256)  # RequestOptions is frozen: one per distinct set of gateway settings
def _cached_defaults(types: tuple[type, ...], fields: tuple[Any, ...]) -> RequestOptions:
    return _defaults_of(fields)


def _defaults_of(fields: tuple[Any, ...]) -> RequestOptions:
    collect_logs, cache_ttl, retry_max_attempts, retry_delay, backoff = fields
    return RequestOptions(
        collect_log=bool(collect_logs),
        collect_payload=True,
        cache_ttl_s=max(0, _int(cache_ttl) or 0),
        skip_cache=False,
        cache_key=None,
        timeout_ms=None,
        max_attempts=min(MAX_ATTEMPTS, max(1, _int(retry_max_attempts) or 1)),
        retry_delay_ms=min(MAX_RETRY_DELAY_MS, max(0, _int(retry_delay) or 0)),
        backoff=backoff if backoff in _BACKOFFS else "constant",
        metadata=None,
        event_id=None,
        custom_cost=None,
        byok_alias=None,
    )


def _read_options(headers: Mapping[str, str], gateway: dict[str, Any]) -> RequestOptions:
    collect = parse_bool(headers.get("cf-aig-collect-log"))
    collect_log = bool(gateway.get("collect_logs")) if collect is None else collect
    payload = parse_bool(headers.get("cf-aig-collect-log-payload"))

    cache_key = headers.get("cf-aig-cache-key") or None
    gateway_ttl = _int(gateway.get("cache_ttl")) or 0
    ttl = max(0, gateway_ttl)
    header_ttl = _int(_header(headers, "cf-aig-cache-ttl", "cf-cache-ttl"))
    # ASSUMPTION: a cf-aig-cache-ttl outside 60 s .. 1 month is ignored (the gateway's TTL applies).
    if header_ttl is not None and MIN_TTL_S <= header_ttl <= MAX_TTL_S:
        ttl = header_ttl
    elif ttl == 0 and cache_key is not None:
        ttl = CUSTOM_KEY_TTL_S
    skip = parse_bool(_header(headers, "cf-aig-skip-cache", "cf-skip-cache")) is True

    timeout = _int(headers.get("cf-aig-request-timeout"))
    attempts = _int(headers.get("cf-aig-max-attempts"))
    if attempts is None:
        attempts = _int(gateway.get("retry_max_attempts"))
    delay = _int(headers.get("cf-aig-retry-delay"))
    if delay is None:
        delay = _int(gateway.get("retry_delay"))
    backoff = (headers.get("cf-aig-backoff") or "").strip().lower()
    if backoff not in _BACKOFFS:
        backoff = str(gateway.get("retry_backoff") or "constant")
        if backoff not in _BACKOFFS:
            backoff = "constant"
    alias = (headers.get("cf-aig-byok-alias") or "").strip() or None
    return RequestOptions(
        collect_log=collect_log,
        collect_payload=payload is not False,
        cache_ttl_s=ttl,
        skip_cache=skip,
        cache_key=cache_key,
        timeout_ms=timeout if timeout is not None and timeout > 0 else None,
        max_attempts=min(MAX_ATTEMPTS, max(1, attempts or 1)),
        retry_delay_ms=min(MAX_RETRY_DELAY_MS, max(0, delay or 0)),
        backoff=backoff,
        metadata=parse_metadata(headers.get("cf-aig-metadata")),
        event_id=headers.get("cf-aig-event-id") or None,
        custom_cost=parse_custom_cost(headers.get("cf-aig-custom-cost")),
        byok_alias=alias,
    )


def retry_delay_ms(options: RequestOptions, failed_attempts: int) -> float:
    """The wait before the next attempt, after ``failed_attempts`` (1, 2, ...) attempts failed."""
    base = float(options.retry_delay_ms)
    if options.backoff == "linear":
        return base * failed_attempts
    if options.backoff == "exponential":
        return base * float(2 ** (failed_attempts - 1))
    return base
