"""The API token's request budget: Cloudflare's limit of 1,200 requests per 300 s, kept on this side.

* ``RequestBudget`` is a sliding window shared by every client of one token in the process (``shared``).
* ``parse_rate_limit`` reads the server's own count (``Ratelimit`` / ``Ratelimit-Policy``, or the older
  ``X-RateLimit-*``), which ``RequestBudget.observe`` adapts to: the budget is spent elsewhere too.

Only the v4 API client counts against this budget; the data-plane prober does not, so it lives here and not
in ``aigw._http``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from aigw._http import Clock, Sleep
from aigw.config import Secret
from aigw.errors import DeadlineExceededError

__all__ = [
    "CLOUDFLARE_API_LIMIT",
    "CLOUDFLARE_API_WINDOW_S",
    "RateLimitHeaders",
    "RequestBudget",
    "parse_int_header",
    "parse_rate_limit",
]

CLOUDFLARE_API_LIMIT: Final = 1200
CLOUDFLARE_API_WINDOW_S: Final = 300.0


class RequestBudget:
    """A sliding-window budget: at most ``limit`` requests in any ``window_s`` seconds.

    ``acquire`` blocks until a slot is free (or raises ``DeadlineExceededError`` when waiting would pass
    the caller's deadline); ``release`` moves the slot's time to when the answer came, because the
    server counts a request when it arrives, which is later than when it was sent.

    **Parameters:**
    * limit - requests per window.
    * window_s - the window in seconds.
    * margin - fraction of the limit kept in reserve for the dashboard and other tools on the same token.
    """

    _shared: ClassVar[dict[str, RequestBudget]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        limit: int = CLOUDFLARE_API_LIMIT,
        window_s: float = CLOUDFLARE_API_WINDOW_S,
        *,
        margin: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a request budget needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = float(window_s)
        self._capacity = max(1, int(limit * (1.0 - margin)))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # One mutable [time] per request in the window; a list so ``release`` can move a slot in place.
        self._slots: list[list[float]] = []

    def __repr__(self) -> str:
        return f"RequestBudget(limit={self.limit}, window_s={self.window_s}, in_window={self.in_window()})"

    @classmethod
    def shared(
        cls, token: Secret, limit: int = CLOUDFLARE_API_LIMIT, window_s: float = CLOUDFLARE_API_WINDOW_S
    ) -> RequestBudget:
        """The process-wide budget of ``token`` (created on first use with ``limit`` / ``window_s``)."""
        # Keyed by a digest, so the registry never holds the token itself.
        key = hashlib.sha256(token.reveal().encode()).hexdigest()
        with cls._shared_lock:
            budget = cls._shared.get(key)
            if budget is None:
                budget = cls._shared[key] = cls(limit, window_s)
            return budget

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        self._slots = [slot for slot in self._slots if slot[0] > horizon]

    @property
    def capacity(self) -> int:
        """Requests allowed per window now: ``limit`` less the margin, or the server's lower limit."""
        return self._capacity

    def in_window(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._slots)

    def acquire(self, deadline_at: float | None = None) -> list[float]:
        """Take a slot, waiting for one if the window is full. Returns the slot for ``release``."""
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                if len(self._slots) < self._capacity:
                    slot = [now]
                    self._slots.append(slot)
                    return slot
                wait = min(slot[0] for slot in self._slots) + self.window_s - now
            wait = max(wait, 0.001)
            if deadline_at is not None and now + wait > deadline_at:
                raise DeadlineExceededError(
                    f"the API budget ({self.limit} requests per {self.window_s:g} s) has no room before the "
                    f"deadline (next slot in {wait:.1f} s)",
                    hint="Run again later, or raise the client's deadline",
                )
            self._sleep(wait)

    def release(self, slot: list[float]) -> None:
        """The answer to ``slot``'s request came now: count the slot from now on."""
        with self._lock:
            slot[0] = max(slot[0], self._clock())

    def observe(
        self, limit: int | None, remaining: int | None, *, sent_at: float | None = None,
        reset_s: float | None = None,
    ) -> None:
        """Adapt to the server's limit and remaining count (``parse_rate_limit``): the budget is spent elsewhere too.

        A lower server limit lowers the capacity (the window stays this budget's: the headers do not
        tell the server's); requests the server counted that this budget did not see become phantom
        slots that leave the window like real ones.

        ``sent_at`` (the answered request's slot time before ``release``) is when the server's count was
        taken at the earliest: this budget's own requests are counted from ``sent_at - window_s``.
        Counting them from ``now - window_s`` instead misses own requests the server still counted (it
        counted at arrival, before this answer travelled back), and each one missed became a phantom
        slot that cost a request per window under a steady load (measured: docs/PERFORMANCE.md).

        ``reset_s`` (the ``t`` of ``Ratelimit``: seconds until the server's window ends) makes the phantom
        slots leave when the server's window ends instead of a whole window from now.
        """
        with self._lock:
            now = self._clock()
            if limit is not None and 0 < limit < self._capacity:
                self._capacity = limit
            if remaining is None or limit is None:
                return
            horizon = (min(sent_at, now) if sent_at is not None else now) - self.window_s
            own = sum(1 for slot in self._slots if slot[0] > horizon)
            self._prune(now)
            used_elsewhere = (limit - max(remaining, 0)) - own
            # Requests we cannot see (another process, the dashboard) fill the window as phantom slots;
            # the server forgets them when its window ends, so do they.
            at = now if reset_s is None else now + min(max(reset_s, 0.0), self.window_s) - self.window_s
            for _ in range(min(max(used_elsewhere, 0), self._capacity)):
                self._slots.append([at])



@dataclass(frozen=True)
class RateLimitHeaders:
    """What the server says of its budget: limit per window, remaining, seconds to the window's end."""

    limit: int | None = None
    remaining: int | None = None
    reset_s: float | None = None
    window_s: float | None = None


def _structured_items(value: str | None) -> dict[str, dict[str, str]]:
    """``"default";r=50;t=30, "burst";r=5`` -> ``{"default": {"r": "50", "t": "30"}, "burst": {...}}``."""
    items: dict[str, dict[str, str]] = {}
    for raw in (value or "").split(","):
        name, *params = (part.strip() for part in raw.split(";"))
        if not name:
            continue
        members = {}
        for param in params:
            key, _, val = param.partition("=")
            members[key.strip().lower()] = val.strip().strip('"')
        items[name.strip('"')] = members
    return items


def _number(members: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(members[key])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitHeaders:
    """The server's budget from ``Ratelimit`` / ``Ratelimit-Policy`` (IETF draft, Cloudflare since
    2025-09-03: ``"default";r=50;t=30`` and ``"default";q=1200;w=300``), else ``X-RateLimit-Limit`` /
    ``-Remaining``. Of several limits, the ``default`` one, else the first; absent fields are None."""
    current = _structured_items(headers.get("ratelimit"))
    policy = _structured_items(headers.get("ratelimit-policy"))
    if current or policy:
        name = "default" if "default" in current or "default" in policy else next(iter(current or policy))
        now, rule = current.get(name, {}), policy.get(name, {})
        limit, remaining = _number(rule, "q"), _number(now, "r")
        return RateLimitHeaders(
            limit=int(limit) if limit is not None else None,
            remaining=int(remaining) if remaining is not None else None,
            reset_s=_number(now, "t"),
            window_s=_number(rule, "w"),
        )
    return RateLimitHeaders(parse_int_header(headers, "x-ratelimit-limit"),
                            parse_int_header(headers, "x-ratelimit-remaining"))


def parse_int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None

