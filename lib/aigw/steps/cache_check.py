"""Notebook 03's cache check: the same request with ``cf-aig-cache-ttl`` is a MISS, then a HIT.

Cloudflare's cache is volatile: a response is stored after the MISS that fetched it, and a repeat sent too soon
misses again (cloudflare-docs ``ai-gateway/features/caching.mdx``). So the pair is split: ``send_cache`` sends the
first request early in the notebook, and ``verify_cache``, after the overhead pairs, sends the repeats. The
cache's write then happens while the overhead step works, and the repeats rarely have to wait.
``verify_cache`` without ``sent`` does both at once.
"""

from __future__ import annotations

import secrets as _random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aigw.evidence import Check
from aigw.gateway import GatewayProber, ProbeResult
from aigw.session import Session
from aigw.steps.probe_plan import (
    CACHE_REPEAT_WAITS_S,
    PROMPT,
    PlannedProbe,
    ProbePlan,
    attempts_note,
    probe_client,
    skip_check,
)
from aigw.steps.probe_record import EndpointChecks, save_step, saved_step

__all__ = ["CHECK_NAME", "CacheSent", "send_cache", "verify_cache"]

CHECK_NAME = "a repeated request with cf-aig-cache-ttl is served from the cache (MISS, then HIT)"


@dataclass(frozen=True)
class CacheSent:
    """The cache pair's first request as sent (``send_cache``), before its repeats (``verify_cache``)."""

    prompt: str
    #: None when the step does not fit the probe budget: nothing was sent.
    first: ProbeResult | None

    def _repr_markdown_(self) -> str:
        if self.first is None:
            return "_The cache check is skipped (over the probe budget): nothing sent._"
        status = (self.first.cache_status or "none").upper()
        return (f"_The cache check's first request is sent: `cf-aig-cache-status` {status} "
                f"({self.first.provider}/{self.first.model}, status {self.first.status}); its repeats follow "
                "in the Caching section._")


def _probe(prober: GatewayProber, planned: PlannedProbe, plan: ProbePlan, prompt: str, number: int) -> ProbeResult:
    return prober.probe_unified(
        f"{planned.provider}/{planned.model}", prompt, max_tokens=plan.max_tokens,
        metadata={"aigw_probe": f"cache-{number}"}, extra_headers={"cf-aig-cache-ttl": str(plan.cache_ttl)},
    )


def _fresh_prompt() -> str:
    # A random nonce: the first request of a pair cannot be in the cache already.
    return f"{PROMPT} (cache check {_random.token_hex(6)})"


def send_cache(session: Session, plan: ProbePlan) -> CacheSent:
    """Send the cache pair's first request now (when it fits the budget); saved with the run's probes."""
    planned = plan.find("cache")[0]
    if not planned.fits:
        return CacheSent("", None)
    prompt = _fresh_prompt()
    with probe_client(session, plan) as prober:
        first = _probe(prober, planned, plan, prompt, 1)
    save_step(session, "cache", [first.as_dict()])
    return CacheSent(prompt, first)


def verify_cache(session: Session, plan: ProbePlan, *, sent: CacheSent | None = None,
                 repeat_waits_s: Sequence[float] = CACHE_REPEAT_WAITS_S) -> EndpointChecks:
    """Caching works when asked for: the same request with ``cf-aig-cache-ttl`` is a MISS, then a HIT.

    After a first MISS (``sent``, or sent here), a repeat that misses is sent again after each of
    ``repeat_waits_s`` (the first repeat goes at once); every status is recorded, and the check passes on a
    first MISS followed, within those repeats, by a HIT of the same answer. A first answer that is a HIT only
    because its own retried attempt filled the cache starts the pair again under a fresh nonce.
    """
    result = EndpointChecks("Caching (cf-aig-cache-ttl): MISS, then HIT")
    planned = plan.find("cache")[0]
    if not planned.fits:
        skip_check(result.checks, None, CHECK_NAME, planned)
        return saved_step(session, "cache", result)
    waits = [0.0, *repeat_waits_s]  # before the first repeat no wait: the common case is an immediate HIT
    with probe_client(session, plan) as prober:

        def cache_round(limit: int, prompt: str, first: ProbeResult | None = None) -> list[ProbeResult]:
            def probe() -> ProbeResult:
                answer = _probe(prober, planned, plan, prompt, len(result.probes) + 1)
                result.probes.append(answer)
                return answer

            if first is None:
                first = probe()
            else:
                result.probes.append(first)
            sent_here = [first]
            if first.ok and (first.cache_status or "").upper() == "MISS":
                for wait in waits[:limit - 1]:
                    if wait > 0:
                        time.sleep(wait)
                    repeat = probe()
                    sent_here.append(repeat)
                    if not repeat.ok or (repeat.cache_status or "").upper() != "MISS":
                        break
            return sent_here

        ahead = sent if sent is not None and sent.first is not None else None
        probes = (cache_round(planned.requests, ahead.prompt, ahead.first) if ahead is not None
                  else cache_round(planned.requests, _fresh_prompt()))
        # A first request that timed out and was retried may find its own earlier attempt's answer already
        # cached (the gateway finished it after the client gave up): that HIT shows caching but not a MISS
        # first, so the pair is sent once more under a fresh nonce instead of failing or passing on it.
        spoiled = probes[0] if (probes[0].ok and probes[0].attempts > 1
                                and (probes[0].cache_status or "").upper() == "HIT") else None
        allowed = len(waits)
        if spoiled is not None:  # within the probes priced for this step: the fresh round has fewer repeats
            remaining = planned.requests - len(result.probes)
            allowed = min(allowed, remaining - 1)
            probes = cache_round(remaining, _fresh_prompt())
    result.checks.append(_judge(probes, planned, waits, allowed, spoiled))
    return saved_step(session, "cache", result)


def _judge(probes: Sequence[ProbeResult], planned: PlannedProbe, waits: Sequence[float], allowed: int,
           spoiled: ProbeResult | None) -> Check:
    statuses = [(p.cache_status or "none").upper() for p in probes]
    first, last = probes[0], probes[-1]
    passed = (len(probes) > 1 and all(p.ok for p in probes) and statuses[0] == "MISS"
              and statuses[-1] == "HIT" and set(statuses[1:-1]) <= {"MISS"})
    repeats = len(probes) - 1
    detail = (f"cf-aig-cache-status {' then '.join(statuses)} ({planned.provider}/{planned.model}); "
              f"{repeats} repeat(s) of {allowed} allowed")
    if repeats > 1:
        detail += f", waits {', '.join(f'{w:g}' for w in waits[1:repeats])} s"
    if not all(p.ok for p in probes):
        detail += f"; answers {', '.join(str(p.status) for p in probes)}"
    elif passed and last.excerpt != first.excerpt:
        passed = False
        detail += "; the HIT's answer differs from the MISS's"
    if spoiled is not None:
        detail += (f"; sent under a fresh nonce after the first request's HIT{attempts_note(spoiled)} "
                   "(its own timed-out attempt had filled the cache)")
    return Check(None, CHECK_NAME, "pass" if passed else "fail", detail)
