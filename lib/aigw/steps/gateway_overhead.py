"""Notebook 03's overhead step: what the gateway adds to latency, from interleaved pairs (through the gateway,
straight to the provider), against the contract's budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from aigw.background_twin import twin_admin_headers
from aigw.errors import AigwError
from aigw.evidence import Check
from aigw.gateway import OverheadResult
from aigw.hosts import count_url

# At the top, not in ``OverheadReport.plot``: the kernel started ahead for notebook 03 imports this module while 02
# runs, so matplotlib (about 1 s) loads then, not in 03's plot cell.
from aigw.plots import plot_overhead
from aigw.session import Session
from aigw.steps import markdown_table
from aigw.steps.probe_plan import WRONG_TOKEN_PROMPT, ProbePlan, probe_client, skip_check
from aigw.steps.probe_record import endpoint_checks_table, save_step
from aigw.twin_urls import TwinUrls

__all__ = ["OverheadReport", "judge_overhead", "measure_overhead"]

def _twin_overhead_ms(session: Session) -> float | None:
    """What the twin was told to add to every gateway request (its admin API), when it says."""
    if session.target != "twin":
        return None
    urls = TwinUrls.from_gateway_base_url(session.settings.gateway_base_url)
    try:
        count_url(urls.base)
        answer = httpx.get(urls.admin("config"), headers=twin_admin_headers(), timeout=5.0)
        value = answer.json().get("gateway_overhead_ms") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


@dataclass
class OverheadReport:
    """The gateway's added latency against the contract's budget, with the samples for a plot."""

    budget_ms: tuple[float, float]
    result: OverheadResult | None
    target: str
    twin_overhead_ms: float | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def plot(self) -> Any:
        """Latency per probe (gateway, direct) and the overhead distribution against the budget band."""
        result = self.result
        return plot_overhead(result.gateway_ms if result else (), result.direct_ms if result else (),
                             budget_ms=self.budget_ms)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"budget_ms": list(self.budget_ms), "target": self.target,
                                "twin_overhead_ms": self.twin_overhead_ms}
        if self.result is not None:
            data.update(self.result.as_dict())
            data["overhead_ms"] = [round(v, 2) for v in self.result.overhead_ms]
        return data

    def _repr_markdown_(self) -> str:
        parts = ["**Gateway overhead** (through the gateway minus straight to the provider, interleaved pairs)",
                 endpoint_checks_table(self.checks)]
        if self.result is not None:
            r = self.result
            parts.append(markdown_table(
                ["model", "pairs", "failed", "median ms", "p95 ms", "gateway median ms", "direct median ms",
                 "budget ms"],
                [(f"{r.provider}/{r.model}", r.n, r.failures, f"{r.median_ms:.1f}", f"{r.p95_ms:.1f}",
                  f"{r.as_dict()['gateway_median_ms']:.1f}", f"{r.as_dict()['direct_median_ms']:.1f}",
                  f"+{self.budget_ms[0]:.0f} to {self.budget_ms[1]:.0f}")]))
        parts.extend(f"_{note}_" for note in self.notes)
        return "\n\n".join(parts)


def judge_overhead(result: OverheadResult, budget_ms: tuple[float, float]) -> Check:
    """Within budget when the median overhead is at most the contract's ceiling; the p95 is reported, and
    noted when it passes the ceiling (10-20 pairs make a p95 a rough figure)."""
    ceiling = budget_ms[1]
    within = result.median_ms <= ceiling
    detail = (f"median {result.median_ms:.1f} ms, p95 {result.p95_ms:.1f} ms over {result.n} pairs "
              f"({result.provider}/{result.model}); budget: at most {ceiling:.0f} ms (the contract expects "
              f"+{budget_ms[0]:.0f} to {ceiling:.0f} ms; less is better)")
    if result.p95_ms > ceiling and within:
        detail += f"; the p95 passes {ceiling:.0f} ms"
    if result.failures:
        detail += f"; {result.failures} pair(s) dropped for a failed request"
    return Check(None, "gateway overhead within the contract's budget", "pass" if within else "fail", detail)


def measure_overhead(session: Session, plan: ProbePlan) -> OverheadReport:
    """``overhead_samples`` requests through the gateway and as many straight to the provider, interleaved
    (after 2 warm-up pairs); median and p95 of the per-pair difference against the contract's budget."""
    planned = plan.find("overhead")
    report = OverheadReport(plan.overhead_budget_ms, None, session.target, _twin_overhead_ms(session))
    name = "gateway overhead within the contract's budget"
    if not planned:
        report.checks.append(Check(None, name, "skip", "overhead_samples is 0"))
        return report
    probe = planned[0]
    if not probe.fits:
        skip_check(report.checks, None, name, probe)
        return report
    if session.settings.provider_key(probe.provider) is None:
        report.checks.append(Check(None, name, "skip",
                                   f"no {probe.provider} key in .dev.vars or the environment: the direct "
                                   "requests need one (the gateway's BYOK key is never readable)"))
        return report
    with probe_client(session, plan) as prober:
        try:
            result = prober.measure_overhead(probe.provider, probe.model, n=plan.overhead_samples,
                                             max_tokens=probe.max_tokens, warmup=plan.overhead_warmup,
                                             prompt=WRONG_TOKEN_PROMPT)
        except AigwError as exc:
            report.checks.append(Check(None, name, "fail", str(exc)))
            return report
    report.result = result
    report.checks.append(judge_overhead(result, plan.overhead_budget_ms))
    save_step(session, "overhead", report.as_dict())
    if session.target == "twin":
        told = (f"{report.twin_overhead_ms:g} ms" if report.twin_overhead_ms is not None
                else "its configured gateway_overhead_ms")
        report.notes.append(f"On the twin the overhead is what the twin was told to add ({told}) plus loopback "
                            "noise: this shows the measurement works, not how fast Cloudflare is.")
    return report
