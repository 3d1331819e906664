"""Log ids and timestamps: ULIDs (as Cloudflare's ``cf-aig-log-id``) and the stored time format.

Timestamps are stored as fixed-width RFC 3339 UTC strings with microseconds
(``2026-07-01T12:00:00.000000Z``), so that string order is time order.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Final

__all__ = ["format_timestamp", "new_log_id", "parse_timestamp", "ulid_at"]

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two Crockford characters: a ULID is 13 table look-ups, not 26 divisions.
_PAIRS: Final = tuple(_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024))


def ulid_at(ms: int, randomness: int) -> str:
    """The ULID for millisecond ``ms`` (Unix epoch) and 80 bits of ``randomness``: 26 Crockford characters."""
    t = ms & 0xFFFF_FFFF_FFFF  # 48 bits in 10 characters (50 bits, the top two zero)
    r = randomness & ((1 << 80) - 1)  # 80 bits in 16 characters
    p = _PAIRS
    return (
        p[t >> 40] + p[(t >> 30) & 1023] + p[(t >> 20) & 1023] + p[(t >> 10) & 1023] + p[t & 1023]
        + p[r >> 70] + p[(r >> 60) & 1023] + p[(r >> 50) & 1023] + p[(r >> 40) & 1023]
        + p[(r >> 30) & 1023] + p[(r >> 20) & 1023] + p[(r >> 10) & 1023] + p[r & 1023]
    )


class _MonotonicUlid:
    """ULIDs that sort in the order they were made, even within one millisecond (the ULID spec's rule)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self, ms: int | None = None) -> str:
        with self._lock:
            now = time.time_ns() // 1_000_000 if ms is None else ms
            if now == self._last_ms or (ms is None and now < self._last_ms):
                now = self._last_ms
                randomness = self._last_random + 1
                if randomness >= 1 << 80:
                    now += 1
                    randomness = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                # One bit short of 80, so that many ids in one millisecond cannot overflow the field.
                randomness = int.from_bytes(os.urandom(10), "big") >> 1
            if now >= self._last_ms:
                self._last_ms, self._last_random = now, randomness
            return ulid_at(now, randomness)


_ULIDS: Final = _MonotonicUlid()


def new_log_id(created_at: datetime | None = None) -> str:
    """A new log id (a ULID, as Cloudflare's ``cf-aig-log-id``), monotonic within a millisecond."""
    return _ULIDS.new(None if created_at is None else int(created_at.timestamp() * 1000))


def format_timestamp(value: datetime) -> str:
    """``value`` as stored and returned: RFC 3339 UTC, microseconds, fixed width."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        v = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None
    # isoformat of a UTC time: the same fixed-width digits, then "+00:00" where the twin writes "Z".
    return v.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 date-time (or date); naive values are UTC. ``ValueError`` when it is not one."""
    s = text.strip()
    if not s or len(s) > 64:
        raise ValueError("not a date-time")
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    parsed = datetime.fromisoformat(s)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
