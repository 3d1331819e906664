"""The gateway rate limit: ``rate_limiting_limit`` requests per ``rate_limiting_interval`` seconds,
``fixed`` (counts reset at each window boundary) or ``sliding`` (the last ``interval`` seconds).

Kept in memory: counts are short-lived and per process, as an edge counter is; a twin restart starts
every window afresh. A gateway's counter is keyed by its ``created_at`` as well, so a gateway deleted
and created again (or a reset twin) does not inherit the old counts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RateLimiter", "limits_of"]


def limits_of(gateway: dict[str, Any]) -> tuple[int, float, str] | None:
    """``(limit, interval_s, technique)`` when the gateway rate-limits, else None (0/null is off)."""
    limit = gateway.get("rate_limiting_limit")
    interval = gateway.get("rate_limiting_interval")
    if not isinstance(limit, int | float) or not isinstance(interval, int | float) or limit <= 0 or interval <= 0:
        return None
    technique = gateway.get("rate_limiting_technique") or "fixed"
    return int(limit), float(interval), str(technique)


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0
    times: deque[float] = field(default_factory=deque)


class RateLimiter:
    """Thread-safe counters per gateway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, ...], _Window] = {}

    def allow(self, key: tuple[str, ...], limit: int, interval_s: float, technique: str,
              now: float | None = None) -> tuple[bool, float]:
        """Count one request; ``(allowed, seconds until one more would be allowed)``."""
        t = time.monotonic() if now is None else now
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) > 10_000:
                    self._windows.clear()
                window = self._windows[key] = _Window()
            if technique == "sliding":
                times = window.times
                while times and times[0] <= t - interval_s:
                    times.popleft()
                if len(times) >= limit:
                    return False, max(0.0, times[0] + interval_s - t)
                times.append(t)
                return True, 0.0
            start = (t // interval_s) * interval_s
            if start != window.start:
                window.start, window.count = start, 0
            if window.count >= limit:
                return False, max(0.0, start + interval_s - t)
            window.count += 1
            return True, 0.0

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
