"""Notebook 03: the gateway's endpoints answer, it is locked, it caches, and what it adds to latency.

Criteria of the contract: (3) the unified endpoint ``compat/chat/completions`` answers 200 with a completion
for each model; (4) each provider's native endpoint through the gateway answers 200 or the provider's own
error, never the gateway's 401/403.

``plan_probes`` -> ``send_rest`` and ``send_cache`` -> ``verify_lock`` -> ``verify_unified`` -> ``verify_providers``
-> ``measure_overhead`` -> ``verify_cache`` -> ``verify_rest`` -> ``saved_probes``. ``send_rest`` sends each model
through the REST API (``/client/v4/accounts/{a}/ai/v1/chat/completions``, the successor of the deprecated compat
endpoint) and ``verify_rest`` reads their logs and shows them beside compat as the ``REST API parity`` note: no
criterion, so it never changes the verdict. Sending first lets the logs reach the logs API while every other step
runs; ``send_cache`` sends the cache pair's first request, so that Cloudflare's cache write happens while the
overhead pairs run.

Every probe that may reach a provider is priced before anything is
sent (list prices per model, the whole ``max_tokens`` counted as output); what would pass
``probe_budget_usd`` is skipped, in a fixed order (criteria first). Every probe is tagged through
``cf-aig-metadata`` with ``aigw_run_id`` (and ``aigw_check``), so notebook 04 finds it in the logs.

Where the contract differs from Cloudflare, Cloudflare wins: the provider slug is ``google-ai-studio``
(model ``google-ai-studio/gemini-2.5-flash``, native path ``google-ai-studio/v1beta/models/{model}:
generateContent``), and Anthropic's native path is ``anthropic/v1/messages``.

The steps live in small modules, each re-exported here for the notebook: ``probe_plan`` (prices, the plan),
``probe_record`` (``03_probes.json``), ``cache_check``, ``gateway_overhead`` and ``rest_parity``; this module holds
the lock, unified and provider checks.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Sequence

from aigw.config import Secret
from aigw.evidence import Check, Status
from aigw.gateway import ProbeResult
from aigw.session import Session
from aigw.steps.cache_check import CacheSent, send_cache, verify_cache
from aigw.steps.gateway_overhead import OverheadReport, judge_overhead, measure_overhead
from aigw.steps.probe_plan import (
    CACHE_REPEAT_WAITS_S,
    CONTRACT_OVERHEAD_MS,
    DEFAULT_PRICE,
    PRICES,
    PROMPT,
    WRONG_TOKEN_PROMPT,
    PlannedProbe,
    ProbePlan,
    attempts_note,
    estimate_cost,
    parse_models,
    plan_probes,
    price_of,
    probe_client,
    skip_check,
)
from aigw.steps.probe_record import PROBES_FILE, EndpointChecks, load_probe_log_ids, saved_probes, saved_step
from aigw.steps.rest_parity import REST_LOG_WAITS_S, RestParity, RestRow, RestSent, send_rest, verify_rest

__all__ = [
    "CACHE_REPEAT_WAITS_S",
    "CONTRACT_OVERHEAD_MS",
    "DEFAULT_PRICE",
    "PRICES",
    "PROBES_FILE",
    "REST_LOG_WAITS_S",
    "CacheSent",
    "EndpointChecks",
    "OverheadReport",
    "PlannedProbe",
    "ProbePlan",
    "RestParity",
    "RestRow",
    "RestSent",
    "estimate_cost",
    "judge_overhead",
    "load_probe_log_ids",
    "measure_overhead",
    "parse_models",
    "plan_probes",
    "price_of",
    "saved_probes",
    "send_cache",
    "send_rest",
    "verify_cache",
    "verify_lock",
    "verify_providers",
    "verify_rest",
    "verify_unified",
]


def verify_lock(session: Session, plan: ProbePlan) -> EndpointChecks:
    """The gateway is authenticated: without ``cf-aig-authorization``, and with a wrong token, it answers
    401 with its own error code 2009 (not the provider's)."""
    result = EndpointChecks("Authenticated gateway: requests without a valid cf-aig-authorization")
    planned = plan.find("lock")[0]
    if not planned.fits:
        skip_check(result.checks, None, "gateway refuses requests without a valid cf-aig-authorization", planned)
        return saved_step(session, "lock", result)
    # A fresh random token stands for "wrong": it is no one's, and it is never shown.
    wrong = Secret(_random.token_urlsafe(30), "wrong gateway token")
    with probe_client(session, plan) as prober:
        missing = prober.probe_without_gateway_token("openai", planned.model, prompt=WRONG_TOKEN_PROMPT)
        bad = prober.probe_with_token(wrong, "openai", planned.model, prompt=WRONG_TOKEN_PROMPT)
    result.probes.extend([missing, bad])
    for probe, name in ((missing, "without cf-aig-authorization"), (bad, "with a wrong token")):
        locked = probe.status == 401 and probe.outcome == "gateway_error" and probe.gateway_error_code == 2009
        detail = (f"{probe.status} code {probe.gateway_error_code}" if probe.outcome == "gateway_error"
                  else f"{probe.status} {probe.outcome}: {probe.excerpt}")
        if not locked:
            detail += " (expected 401 code 2009: is authentication on? see notebook 01)"
        result.checks.append(Check(None, f"gateway refuses a request {name} (401, code 2009)",
                                   "pass" if locked else "fail", detail))
    return saved_step(session, "lock", result)


def _log_id_check(probes: Sequence[ProbeResult], criterion: int | None) -> Check | None:
    answered = [p for p in probes if p.status is not None and p.outcome != "gateway_error"]
    if not answered:
        return None
    missing = [f"{p.check} {p.provider}/{p.model}" for p in answered if not p.log_id]
    if missing:
        return Check(criterion, "every gateway answer carries cf-aig-log-id", "fail",
                     "no cf-aig-log-id on: " + ", ".join(missing))
    return Check(criterion, "every gateway answer carries cf-aig-log-id", "pass",
                 f"{len(answered)} answers, each with a log id (notebook 04 finds them in the logs)")


def verify_unified(session: Session, plan: ProbePlan) -> EndpointChecks:
    """Criterion 3: ``POST .../compat/chat/completions`` answers 200 with a completion for each model."""
    result = EndpointChecks("Unified endpoint (compat/chat/completions), criterion 3")
    with probe_client(session, plan) as prober:
        for planned in plan.find("unified"):
            name = f"unified endpoint answers {planned.provider}/{planned.model}"
            if not planned.fits:
                skip_check(result.checks, 3, name, planned)
                continue
            subject = f"{planned.provider}/{planned.model}"
            probe = prober.probe_unified(subject, PROMPT, max_tokens=plan.max_tokens)
            result.probes.append(probe)
            if probe.ok:
                result.checks.append(Check(3, name, "pass", f"{probe.status} in {probe.latency_ms:.0f} ms: "
                                           f"{probe.excerpt[:60]!r}", subject=subject))
            else:
                code = f" code {probe.gateway_error_code}" if probe.gateway_error_code is not None else ""
                result.checks.append(Check(3, name, "fail", f"{probe.status} {probe.outcome}{code}"
                                           f"{attempts_note(probe)}: {probe.excerpt}", subject=subject))
    log_check = _log_id_check(result.probes, 3)
    if log_check is not None:
        result.checks.append(log_check)
    return saved_step(session, "unified", result)


def verify_providers(session: Session, plan: ProbePlan) -> EndpointChecks:
    """Criterion 4: each provider's native endpoint through the gateway answers 200 or a valid provider
    error (the provider's own body: the gateway forwarded it), never the gateway's 401/403."""
    result = EndpointChecks("Provider endpoints through the gateway (BYOK: no provider key sent), criterion 4")
    with probe_client(session, plan) as prober:
        for planned in plan.find("provider"):
            url = f"{prober.gateway_url(planned.provider)}/..."
            name = f"{planned.provider} endpoint answers (200 or a provider's own 4xx, not 401/403)"
            if not planned.fits:
                skip_check(result.checks, 4, name, planned)
                continue
            probe = prober.probe_provider(planned.provider, planned.model, PROMPT, max_tokens=plan.max_tokens)
            result.probes.append(probe)
            path = probe.url.split(f"/{planned.provider}/", 1)[-1]
            if probe.rejected_by_gateway:
                status: Status = "fail"
                detail = (f"{probe.status} from the gateway (code {probe.gateway_error_code}) on "
                          f"{planned.provider}/{path}: the gateway token or BYOK key is not accepted")
            elif probe.healthy:
                status = "pass"
                detail = (f"{probe.status} on {planned.provider}/{path}" if probe.ok else
                          f"{probe.status} {probe.provider_error_type or 'provider error'} from {planned.provider} "
                          f"on {planned.provider}/{path} (the gateway forwarded it): {probe.excerpt}")
            elif probe.provider_unavailable:
                # An outage answers the same whatever the path: it proves nothing, so the probe failed.
                status = "fail"
                detail = (f"{probe.status} {probe.provider_error_type or 'provider error'} from {planned.provider} "
                          f"on {planned.provider}/{path}{attempts_note(probe)}: the provider is unavailable or rate "
                          f"limited, which proves nothing about the path; run 03 again later: {probe.excerpt}")
            else:
                status = "fail"
                detail = f"{probe.status} {probe.outcome} on {url}{attempts_note(probe)}: {probe.excerpt}"
            result.checks.append(Check(4, name, status, detail, subject=f"{planned.provider}/{planned.model}"))
    log_check = _log_id_check(result.probes, 4)
    if log_check is not None:
        result.checks.append(log_check)
    return saved_step(session, "provider", result)
