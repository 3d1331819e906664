"""Things take time on Cloudflare; with ``TwinOptions`` delays they take time on the twin too.

Three delays, each switchable (``0`` turns it off):

* ``log_delay_s`` - a gateway request's log reaches the logs API that long after the answer.
  Source: cloudflare/ai#255 (``response_head`` null right after the request, "present after few seconds").
* ``cache_write_delay_s`` - a response stored in the gateway cache becomes readable that long after the
  MISS that stored it, so a repeat sent sooner misses too. Source: cloudflare-docs
  ``ai-gateway/features/caching.mdx`` ("the cache is volatile ... the first request may not cache in time").
* ``secret_pending_s`` - a new Secrets Store secret reads ``status: pending`` that long after its creation,
  then ``active``. Source: cloudflare-typescript ``secrets-store/stores/secrets.ts`` (status
  ``'pending' | 'active' | 'deleted'``).

ASSUMPTION: the durations. No source gives them; the defaults (``REALISTIC_DELAYS``) are small non-zero
values in the range the sources describe ("a few seconds"), so a rehearsal meets the delays and stays short.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = ["NO_DELAYS", "REALISTIC_DELAYS", "is_pending", "with_secret_status"]

#: ASSUMPTION: 2 s for logs ("after few seconds"), 1 s for a cache write, 1 s of ``pending``.
REALISTIC_DELAYS: Final[Mapping[str, float]] = {
    "log_delay_s": 2.0,
    "cache_write_delay_s": 1.0,
    "secret_pending_s": 1.0,
}
#: The twin as it was before delays: everything visible at once (unit tests that are not about time).
NO_DELAYS: Final[Mapping[str, float]] = dict.fromkeys(REALISTIC_DELAYS, 0.0)


def _parse(created: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_pending(secret: Mapping[str, Any], pending_s: float, now: datetime | None = None) -> bool:
    """Whether a stored (``active``) secret still reads ``pending``: created less than ``pending_s`` ago."""
    if pending_s <= 0 or secret.get("status") != "active":
        return False
    created = _parse(str(secret.get("created") or ""))
    if created is None:
        return False
    return (now or datetime.now(UTC)) < created + timedelta(seconds=pending_s)


def with_secret_status(secret: dict[str, Any], pending_s: float, now: datetime | None = None) -> dict[str, Any]:
    """``secret`` as the API shows it now: ``pending`` during its first ``pending_s`` seconds.

    ASSUMPTION: only a new secret is pending; a changed value (PATCH, a provider-config PUT) keeps
    ``active``, since the secret already exists where it is served.
    """
    if is_pending(secret, pending_s, now):
        return {**secret, "status": "pending"}
    return secret
