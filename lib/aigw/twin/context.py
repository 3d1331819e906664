"""What every twin handler reaches through ``request.app.state.twin``: state, options, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aigw.twin.db import Database

if TYPE_CHECKING:
    from aigw.twin.faults import FaultInjector

__all__ = ["TwinContext", "TwinOptions"]


@dataclass
class TwinOptions:
    """How this twin behaves. The admin API (``PUT /__twin__/config``) may change it at run time."""

    admin_enabled: bool = False
    #: Gateways per account: 10 on Cloudflare's free plan, 20 on paid.
    gateway_limit: int = 10
    #: The per-token API budget: requests per window (seconds). Cloudflare: 1,200 per 300 s.
    api_budget_requests: int = 1200
    api_budget_window_s: float = 300.0
    #: Emulated provider latency: base milliseconds per provider slug, and +/- jitter.
    provider_latency_ms: dict[str, float] = field(default_factory=dict)
    provider_jitter_ms: float = 0.0
    #: Added to every gateway request, so that overhead measurements have a known truth.
    gateway_overhead_ms: float = 0.0


@dataclass
class TwinContext:
    db: Database
    options: TwinOptions
    faults: FaultInjector | None = None
