"""Units of the data plane: cf-aig-* header parsing, retry backoff, the rate-limit windows, cache keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cftwin.dataplane import cache
from cftwin.dataplane.options import (
    parse_custom_cost,
    parse_metadata,
    read_options,
    retry_delay_ms,
)
from cftwin.dataplane.ratelimit import RateLimiter, limits_of
from cftwin.db import Database

GATEWAY: dict[str, Any] = {"id": "gw", "collect_logs": True, "cache_ttl": 0, "retry_max_attempts": 3,
                           "retry_delay": 250, "retry_backoff": "linear"}


def test_without_option_headers_the_gateway_settings_apply() -> None:
    options = read_options({"cf-aig-authorization": "Bearer t", "content-type": "application/json"}, GATEWAY)
    assert (options.collect_log, options.cache_ttl_s, options.max_attempts, options.retry_delay_ms,
            options.backoff) == (True, 0, 3, 250, "linear")
    # The fast path and the full parse agree.
    assert options == read_options({"cf-aig-event-id": ""}, GATEWAY)


def test_headers_override_the_gateway_and_are_capped() -> None:
    options = read_options({
        "cf-aig-collect-log": "false", "cf-aig-max-attempts": "9", "cf-aig-retry-delay": "90000",
        "cf-aig-backoff": "exponential", "cf-aig-request-timeout": "1500", "cf-aig-byok-alias": " backup ",
        "cf-aig-event-id": "evt", "cf-aig-collect-log-payload": "false",
    }, GATEWAY)
    assert options.collect_log is False and options.collect_payload is False
    assert (options.max_attempts, options.retry_delay_ms, options.backoff) == (5, 5000, "exponential")
    assert (options.timeout_ms, options.byok_alias, options.event_id) == (1500, "backup", "evt")
    garbage = read_options({"cf-aig-max-attempts": "many", "cf-aig-backoff": "wild",
                            "cf-aig-request-timeout": "-5"}, GATEWAY)
    assert (garbage.max_attempts, garbage.backoff, garbage.timeout_ms) == (3, "linear", None)


@pytest.mark.parametrize(("headers", "ttl"), [
    ({}, 0),
    ({"cf-aig-cache-ttl": "120"}, 120),
    ({"cf-cache-ttl": "600"}, 600),
    ({"cf-aig-cache-ttl": "59"}, 0),
    ({"cf-aig-cache-ttl": str(31 * 24 * 3600)}, 0),
    ({"cf-aig-cache-key": "k"}, 300),
])
def test_cache_ttl(headers: dict[str, str], ttl: int) -> None:
    assert read_options(headers, GATEWAY).cache_ttl_s == ttl


def test_skip_cache_and_its_legacy_name() -> None:
    assert read_options({"cf-aig-skip-cache": "true"}, GATEWAY).skip_cache
    assert read_options({"cf-skip-cache": "TRUE"}, GATEWAY).skip_cache
    assert not read_options({"cf-aig-skip-cache": "no"}, GATEWAY).skip_cache


def test_metadata_keeps_five_primitive_entries() -> None:
    raw = json.dumps({"a": 1, "b": None, "c": "x", "d": [1], "e": True, "f": 1.5, "g": "7", "h": "8"})
    assert parse_metadata(raw) == {"a": 1, "c": "x", "e": True, "f": 1.5, "g": "7"}
    assert parse_metadata("not json") is None
    assert parse_metadata("[1, 2]") is None
    assert parse_metadata(None) is None


def test_custom_cost() -> None:
    assert parse_custom_cost('{"per_token_in": 0.000001, "per_token_out": 0.000002}') == (0.000001, 0.000002)
    assert parse_custom_cost('{"per_token_in": -1}') is None
    assert parse_custom_cost("nope") is None


@pytest.mark.parametrize(("backoff", "delays"), [("constant", [100, 100, 100]), ("linear", [100, 200, 300]),
                                                 ("exponential", [100, 200, 400])])
def test_retry_backoff(backoff: str, delays: list[int]) -> None:
    options = read_options({"cf-aig-retry-delay": "100", "cf-aig-backoff": backoff}, GATEWAY)
    assert [retry_delay_ms(options, n) for n in (1, 2, 3)] == delays


def test_fixed_window_resets_at_the_boundary() -> None:
    limiter = RateLimiter()
    key = ("a", "g", "t")
    assert [limiter.allow(key, 2, 10, "fixed", now=t)[0] for t in (100.0, 101.0, 109.0)] == [True, True, False]
    assert limiter.allow(key, 2, 10, "fixed", now=109.0)[1] == pytest.approx(1.0)
    assert limiter.allow(key, 2, 10, "fixed", now=110.0)[0] is True


def test_sliding_window_counts_the_last_interval() -> None:
    limiter = RateLimiter()
    key = ("a", "g", "t")
    assert [limiter.allow(key, 2, 10, "sliding", now=t)[0] for t in (100.0, 105.0, 109.0)] == [True, True, False]
    assert limiter.allow(key, 2, 10, "sliding", now=110.5)[0] is True  # the request at 100 left the window
    assert limiter.allow(key, 2, 10, "sliding", now=111.0)[0] is False


def test_rate_limit_settings() -> None:
    assert limits_of({"rate_limiting_limit": 0, "rate_limiting_interval": 60}) is None
    assert limits_of({"rate_limiting_limit": None, "rate_limiting_interval": None}) is None
    assert limits_of({"rate_limiting_limit": 5, "rate_limiting_interval": 60}) == (5, 60.0, "fixed")
    assert limits_of({"rate_limiting_limit": 5, "rate_limiting_interval": 60,
                      "rate_limiting_technique": "sliding"}) == (5, 60.0, "sliding")


def test_cache_entries_expire_and_keys_separate_parts() -> None:
    db = Database(":memory:")
    assert cache.cache_key("a", "g", "ab", "c") != cache.cache_key("a", "g", "a", "bc")
    entry = cache.CachedResponse(200, "application/json", b"{}", "openai", "gpt-4o", 1, 2)
    cache.cache_put(db, "k", "a", "g", entry, ttl_s=60)
    assert cache.cache_get(db, "k") == entry
    assert cache.cache_get(db, "k", now=10**12) is None
    assert cache.purge_expired(db, now=10**12) == 1
