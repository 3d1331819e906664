"""What a probe saw (``ProbeResult``) and what an overhead measurement gave (``OverheadResult``, ``percentile``).

A result never holds a key: its excerpt is redacted when it is made (``aigw.gateway.prober``), and no header
is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Outcome", "OverheadResult", "ProbeResult", "percentile"]

Outcome = Literal["ok", "provider_error", "gateway_error", "error", "no_answer"]


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw. Never holds a key: the excerpt is redacted, headers are not kept.

    ``outcome``: ``ok`` (2xx), ``provider_error`` (the provider's own error body: the gateway forwarded
    the request), ``gateway_error`` (Cloudflare's ``AiGatewayError`` or a v4 error envelope), ``error``
    (anything else, e.g. an HTML 502), ``no_answer`` (connection failure or timeout).
    """

    check: str
    provider: str | None
    model: str | None
    url: str
    status: int | None
    outcome: Outcome
    latency_ms: float
    attempts: int = 1
    log_id: str | None = None
    cache_status: str | None = None
    step: int | None = None
    served_model: str | None = None
    gateway_error_code: int | None = None
    provider_error_type: str | None = None
    excerpt: str = ""
    #: The answer's own usage (OpenAI ``prompt_tokens``/``completion_tokens``, Anthropic ``input_tokens``/
    #: ``output_tokens``), when a 2xx carried it.
    tokens_in: int | None = None
    tokens_out: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def key_rejected(self) -> bool:
        """The provider itself refused the key: 401/403, or Google's 400 with reason ``API_KEY_INVALID``."""
        if self.outcome != "provider_error":
            return False
        return self.status in (401, 403) or self.provider_error_type == "API_KEY_INVALID"

    @property
    def provider_unavailable(self) -> bool:
        """The provider's own 429 or 5xx, still there after the retries: it proves nothing about the path
        (an outage answers the same whether the path is right or not), so it is a failed probe."""
        return self.outcome == "provider_error" and self.status is not None and (
            self.status == 429 or self.status >= 500)

    @property
    def healthy(self) -> bool:
        """The path works: a 2xx, or a provider's own 4xx that is not about credentials nor a rate limit
        (e.g. an unknown model: the request reached the provider, which judged it). A 429, a 5xx, no answer
        or the gateway's own error never counts."""
        if self.outcome == "ok":
            return True
        return (self.outcome == "provider_error" and self.status is not None and 400 <= self.status < 500
                and not self.key_rejected and not self.provider_unavailable)

    @property
    def rejected_by_gateway(self) -> bool:
        """The gateway itself refused the request for its credentials (401/403, e.g. code 2009)."""
        return self.outcome == "gateway_error" and self.status in (401, 403)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "provider": self.provider,
            "model": self.model,
            "url": self.url,
            "status": self.status,
            "outcome": self.outcome,
            "ok": self.ok,
            "healthy": self.healthy,
            "latency_ms": round(self.latency_ms, 1),
            "attempts": self.attempts,
            "log_id": self.log_id,
            "cache_status": self.cache_status,
            "step": self.step,
            "served_model": self.served_model,
            "gateway_error_code": self.gateway_error_code,
            "provider_error_type": self.provider_error_type,
            "excerpt": self.excerpt,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }

    def __str__(self) -> str:
        code = f" code {self.gateway_error_code}" if self.gateway_error_code is not None else ""
        kind = f" {self.provider_error_type}" if self.provider_error_type else ""
        return f"{self.check} {self.provider or ''}/{self.model or ''}: {self.status} {self.outcome}{code}{kind}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class OverheadResult:
    """Gateway latency minus direct latency, per interleaved pair. Samples are kept for a plot."""

    provider: str
    model: str
    gateway_ms: tuple[float, ...]
    direct_ms: tuple[float, ...]
    overhead_ms: tuple[float, ...]
    failures: int = 0
    warmup: int = 0

    @property
    def n(self) -> int:
        return len(self.overhead_ms)

    @property
    def median_ms(self) -> float:
        return percentile(self.overhead_ms, 0.5)

    @property
    def p95_ms(self) -> float:
        return percentile(self.overhead_ms, 0.95)

    @property
    def mean_ms(self) -> float:
        return sum(self.overhead_ms) / len(self.overhead_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "n": self.n,
            "failures": self.failures,
            "warmup": self.warmup,
            "median_ms": round(self.median_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "mean_ms": round(self.mean_ms, 2),
            "gateway_median_ms": round(percentile(self.gateway_ms, 0.5), 2),
            "direct_median_ms": round(percentile(self.direct_ms, 0.5), 2),
        }
