"""How often a step reads again while it waits for Cloudflare to catch up (a pending secret, a log on its way).

Soon at first, when what is awaited usually lands (a late read there is on the run's critical path), then less
often, so that a long wait stays a small share of the API's budget (1,200 requests per 5 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PollSchedule"]


@dataclass(frozen=True)
class PollSchedule:
    """Every ``fast_s`` during the first ``fast_for_s`` seconds of a wait, then every ``slow_s``."""

    fast_s: float
    fast_for_s: float
    slow_s: float

    def pause(self, waited_s: float) -> float:
        """The pause before the next read, ``waited_s`` seconds into the wait."""
        return self.fast_s if waited_s < self.fast_for_s else self.slow_s
