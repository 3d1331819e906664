"""Retry and deadline machinery shared by the v4 API client and the data-plane prober.

* ``RetryPolicy`` says how often and how long to wait: jittered exponential backoff, ``Retry-After``
  honoured, everything bounded by the caller's total deadline.
* ``ClientStats`` counts requests, retries (by reason) and recoveries, for the runbook's evidence.
* ``verified_tls`` is the one TLS context every client of the process verifies with, and ``warm_http`` what a
  kernel started ahead does so that its notebook's first request does not pay for httpx's first client.

The v4 API's request budget is the client's alone: ``aigw.cloudflare.budget``.
"""

from __future__ import annotations

import email.utils
import functools
import random
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ClientStats",
    "Clock",
    "RetryPolicy",
    "Sleep",
    "parse_retry_after",
    "verified_tls",
    "warm_http",
]

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@functools.cache
def verified_tls() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CA bundle, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), made
    once per process. httpx makes a new one for every client given ``verify=True``, and loading the bundle took
    about 60 ms each time (notebook 03 opens a client per step; docs/PERFORMANCE.md, round 4). An
    ``ssl.SSLContext`` may be shared by clients and threads; nothing here changes it after it is made."""
    import httpx

    return httpx.create_ssl_context()


def warm_http() -> None:
    """Pay now what a process's first HTTP client costs: the TLS context, and httpcore (with trio, which it
    imports), which httpx imports only when its first transport is made: about 0.3 s in all, measured."""
    import httpx

    httpx.HTTPTransport(verify=verified_tls()).close()


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry: ``attempts`` tries in all, backoff ``base_s * 2**n`` (full jitter) up to ``max_s``.

    ``Retry-After`` from the server wins over the backoff when it is longer (capped at ``max_retry_after_s``).
    """

    #: Ten, not five: at 30% 429/5xx (the reliability drill) five tries lose about 1 request in 400, i.e.
    #: one runbook run in ten; the total deadline, not this count, bounds how long an operation takes.
    attempts: int = 10
    base_s: float = 0.5
    max_s: float = 20.0
    #: 300 s: a spent Cloudflare budget blocks every call until its five-minute window ends, and the
    #: 429's Retry-After says so; a shorter cap would only retry into more 429s.
    max_retry_after_s: float = 300.0

    def backoff(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        ceiling = min(self.max_s, self.base_s * (2 ** (retry - 1)))
        delay = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None  # type: ignore[unreachable]
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)



@dataclass
class ClientStats:
    """What a client did: requests sent, retries by reason, recoveries (check-before-retry outcomes).

    Thread-safe; ``snapshot()`` gives a plain dict for the evidence.
    """

    requests: int = 0
    retries: int = 0
    recoveries: int = 0
    budget_waits: int = 0
    budget_wait_s: float = 0.0
    retries_by_reason: Counter[str] = field(default_factory=Counter)
    recoveries_by_outcome: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self.retries += 1
            self.retries_by_reason[reason] += 1

    def count_recovery(self, outcome: str) -> None:
        with self._lock:
            self.recoveries += 1
            self.recoveries_by_outcome[outcome] += 1

    def count_budget_wait(self, seconds: float) -> None:
        with self._lock:
            self.budget_waits += 1
            self.budget_wait_s += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "retries_by_reason": dict(self.retries_by_reason),
                "recoveries": self.recoveries,
                "recoveries_by_outcome": dict(self.recoveries_by_outcome),
                "budget_waits": self.budget_waits,
                "budget_wait_s": round(self.budget_wait_s, 3),
            }
