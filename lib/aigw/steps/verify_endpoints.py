"""Notebook 03: the gateway's endpoints answer, it is locked, it caches, and what it adds to latency.

Criteria of the contract: (3) the unified endpoint ``compat/chat/completions`` answers 200 with a completion
for each model; (4) each provider's native endpoint through the gateway answers 200 or the provider's own
error, never the gateway's 401/403.

``plan_probes`` -> ``verify_lock`` -> ``verify_unified`` -> ``verify_providers`` -> ``verify_cache`` ->
``measure_overhead`` -> ``verify_rest`` -> ``saved_probes``. ``verify_rest`` sends each model through the REST API
(``/client/v4/accounts/{a}/ai/v1/chat/completions``, the successor of the deprecated compat endpoint) and shows
it beside compat as the ``REST API parity`` note: no criterion, so it never changes the verdict.

Every probe that may reach a provider is priced before anything is
sent (list prices per model, the whole ``max_tokens`` counted as output); what would pass
``probe_budget_usd`` is skipped, in a fixed order (criteria first). Every probe is tagged through
``cf-aig-metadata`` with ``aigw_run_id`` (and ``aigw_check``), so notebook 04 finds it in the logs.

Where the contract differs from Cloudflare, Cloudflare wins: the provider slug is ``google-ai-studio``
(model ``google-ai-studio/gemini-2.5-flash``, native path ``google-ai-studio/v1beta/models/{model}:
generateContent``), and Anthropic's native path is ``anthropic/v1/messages``.
"""

from __future__ import annotations

import json
import math
import secrets as _random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import httpx

from aigw.background_twin import twin_admin_headers
from aigw.config import PROVIDERS, Secret
from aigw.errors import AigwError, ConfigError, NotFoundError
from aigw.evidence import PARITY_CHECK, Check, Status
from aigw.evidence.marks import status_symbol
from aigw.gateway import DEFAULT_MODELS, GatewayProber, OverheadResult, ProbeResult, rest_model
from aigw.hosts import count_url
from aigw.pricing import LIST_PRICES, list_price
from aigw.session import Session
from aigw.steps import markdown_table, usd
from aigw.twin_urls import TwinUrls

__all__ = [
    "CACHE_REPEAT_WAITS_S",
    "CONTRACT_OVERHEAD_MS",
    "DEFAULT_PRICE",
    "PRICES",
    "PROBES_FILE",
    "REST_LOG_WAITS_S",
    "EndpointChecks",
    "OverheadReport",
    "PlannedProbe",
    "ProbePlan",
    "RestParity",
    "RestRow",
    "estimate_cost",
    "load_probe_log_ids",
    "measure_overhead",
    "parse_models",
    "plan_probes",
    "saved_probes",
    "verify_cache",
    "verify_lock",
    "verify_providers",
    "verify_rest",
    "verify_unified",
]

#: The contract's latency budget: "+50-200 ms overhead vs. direct provider (acceptable)".
CONTRACT_OVERHEAD_MS: Final = (50.0, 200.0)
#: Where the probes' results go in the run folder (notebook 04 reads the log ids from it).
PROBES_FILE: Final = "03_probes.json"
PROMPT: Final = "Reply with the word ok."
_WRONG_TOKEN_PROMPT: Final = "ping"
#: The cache is volatile ("the first request may not cache in time", cloudflare-docs
#: ai-gateway/features/caching.mdx): after the first repeat misses, it is sent again after each wait.
CACHE_REPEAT_WAITS_S: Final = (1.0, 2.0, 4.0)
#: How long ``verify_rest`` waits for a REST request's log (a log reaches the logs API seconds later).
REST_LOG_WAITS_S: Final = (1.0, 2.0, 4.0, 8.0)

#: List prices, USD per 1M tokens (input, output), for pricing probes before they are sent.
PRICES: Final = LIST_PRICES
#: An unlisted model is priced dearer than any listed one, on purpose: the budget errs on the safe side.
DEFAULT_PRICE: Final = (30.00, 120.00)
#: Tokens a chat request spends besides the prompt text (roles, framing).
_FRAMING_TOKENS: Final = 16

Kind = Literal["lock", "unified", "provider", "cache", "overhead", "rest"]


def _checks_table(checks: Sequence[Check]) -> str:
    return markdown_table(["", "criterion", "check", "detail"],
                          [(status_symbol(c.status), c.criterion if c.criterion is not None else "—", c.check, c.detail)
                           for c in checks])


# --- models and prices --------------------------------------------------------------------------------------


def parse_models(models: str | Iterable[str]) -> list[tuple[str, str]]:
    """``["openai/gpt-4o", ...]`` (or one comma-separated string) as ``(provider, model)`` pairs.

    The provider is Cloudflare's slug; the contract's ``google/...`` is refused with the fix, because the
    gateway knows no provider ``google``.
    """
    items = [m.strip() for m in models.split(",")] if isinstance(models, str) else [str(m).strip() for m in models]
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not item:
            continue
        provider, _, model = item.partition("/")
        if provider == "google":
            raise ConfigError(
                f"model {item!r} names provider 'google'",
                hint=f"Cloudflare's slug is google-ai-studio: use 'google-ai-studio/{model}'",
            )
        if not model or provider not in PROVIDERS:
            raise ConfigError(
                f"model {item!r} is not '<provider>/<model>'",
                hint=f"Use one of the providers {', '.join(PROVIDERS)}, e.g. 'openai/gpt-4o'",
            )
        if (provider, model) not in pairs:
            pairs.append((provider, model))
    if not pairs:
        raise ConfigError("no models to probe", hint="Set models, e.g. ['openai/gpt-4o']")
    return pairs


def price_of(provider: str, model: str) -> tuple[float, float]:
    """USD per 1M tokens (input, output) of ``model``: listed, a listed prefix, else ``DEFAULT_PRICE``."""
    return list_price(provider, model) or DEFAULT_PRICE


def estimate_cost(provider: str, model: str, *, prompt: str = PROMPT, max_tokens: int) -> float:
    """The most one request may cost: its prompt (about 4 characters per token, plus framing) and every
    one of ``max_tokens`` as output (reasoning tokens count as output and are capped by it)."""
    price_in, price_out = price_of(provider, model)
    tokens_in = math.ceil(len(prompt) / 4) + _FRAMING_TOKENS
    return (tokens_in * price_in + max(max_tokens, 0) * price_out) / 1_000_000


# --- the plan -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedProbe:
    """A probe (or, for ``overhead``, a batch) with its worst-case cost and whether the budget allows it."""

    kind: Kind
    provider: str
    model: str
    requests: int
    max_tokens: int
    cost_usd: float
    fits: bool

    @property
    def label(self) -> str:
        return f"{self.kind} {self.provider}/{self.model}"


@dataclass(frozen=True)
class ProbePlan:
    """Every probe notebook 03 may send, priced, in the order it is sent; ``fits`` within the budget."""

    run_id: str
    models: tuple[tuple[str, str], ...]
    max_tokens: int
    budget_usd: float
    cache_ttl: int
    overhead_samples: int
    overhead_warmup: int
    overhead_budget_ms: tuple[float, float]
    request_timeout_s: float
    probes: tuple[PlannedProbe, ...]
    checks: list[Check] = field(default_factory=list)

    @property
    def planned_usd(self) -> float:
        return sum(p.cost_usd for p in self.probes if p.fits)

    @property
    def skipped(self) -> list[PlannedProbe]:
        return [p for p in self.probes if not p.fits]

    def find(self, kind: Kind, provider: str | None = None) -> list[PlannedProbe]:
        return [p for p in self.probes if p.kind == kind and (provider is None or p.provider == provider)]

    def _repr_markdown_(self) -> str:
        rows = [(p.kind, f"{p.provider}/{p.model}", p.requests, p.max_tokens, usd(p.cost_usd, 5),
                 "yes" if p.fits else "**no: skipped**") for p in self.probes]
        head = (f"**Probe plan** for run `{self.run_id}`: at most **{usd(self.planned_usd)}** "
                f"of a {usd(self.budget_usd, 2)} budget (`probe_budget_usd`), `max_tokens` {self.max_tokens}\n\n")
        return head + markdown_table(["probe", "model", "requests", "max tokens", "worst case", "in budget"],
                                     rows, raw=False)


def plan_probes(
    session: Session,
    *,
    models: str | Iterable[str],
    max_tokens: int = 64,
    probe_budget_usd: float = 0.05,
    cache_ttl: int = 60,
    overhead_model: str = "openai/gpt-4o-mini",
    overhead_samples: int = 10,
    overhead_max_tokens: int = 8,
    overhead_budget_ms: float = CONTRACT_OVERHEAD_MS[1],
    request_timeout_s: float = 30.0,
) -> ProbePlan:
    """Price every probe before one is sent, and keep what fits ``probe_budget_usd`` (criteria first).

    Order: the lock checks (refused by the gateway, but priced as if they got through), one unified
    probe per model (criterion 3), one native probe per provider (criterion 4), the cache probes on the
    cheapest model (two, and up to ``CACHE_REPEAT_WAITS_S`` more), the overhead pairs (warm-up
    included), then one REST API probe per model (no criterion).
    A probe that would pass the budget is skipped; later, cheaper ones may still fit.
    """
    pairs = parse_models(models)
    if max_tokens < 1:
        raise ConfigError(f"max_tokens={max_tokens} is below 1", hint="Use 64: small, yet enough for reasoning models")
    if probe_budget_usd < 0:
        raise ConfigError(f"probe_budget_usd={probe_budget_usd} is negative", hint="Use e.g. 0.05")
    if cache_ttl < 60:
        raise ConfigError(f"cache_ttl={cache_ttl} is below Cloudflare's minimum of 60 seconds", hint="Use 60")
    if overhead_samples < 0:
        raise ConfigError(f"overhead_samples={overhead_samples} is negative", hint="Use 10, or 0 to skip")
    if request_timeout_s <= 0:
        raise ConfigError(f"request_timeout_s={request_timeout_s} is not positive", hint="Use e.g. 30")
    overhead_pair = parse_models([overhead_model])[0] if overhead_samples else None
    warmup = 2 if overhead_samples else 0

    wanted: list[tuple[Kind, str, str, int, int]] = []
    lock_model = DEFAULT_MODELS["openai"]
    wanted.append(("lock", "openai", lock_model, 2, 1))
    for provider, model in pairs:
        wanted.append(("unified", provider, model, 1, max_tokens))
    natives: dict[str, str] = {}
    for provider, model in pairs:
        natives.setdefault(provider, model)
    for provider, model in natives.items():
        wanted.append(("provider", provider, model, 1, max_tokens))
    cheapest = min(pairs, key=lambda pm: estimate_cost(pm[0], pm[1], max_tokens=max_tokens))
    # Priced for the worst case: the first request, its repeat, and every further repeat.
    wanted.append(("cache", cheapest[0], cheapest[1], 2 + len(CACHE_REPEAT_WAITS_S), max_tokens))
    if overhead_pair is not None:
        wanted.append(("overhead", overhead_pair[0], overhead_pair[1], 2 * (overhead_samples + warmup),
                       overhead_max_tokens))
    # Last: the REST API beside compat is no criterion, so it never takes budget from one.
    for provider, model in pairs:
        wanted.append(("rest", provider, model, 1, max_tokens))

    remaining = float(probe_budget_usd)
    planned: list[PlannedProbe] = []
    for kind, provider, model, requests, tokens in wanted:
        prompt = _WRONG_TOKEN_PROMPT if kind in ("lock", "overhead") else PROMPT
        cost = requests * estimate_cost(provider, model, prompt=prompt, max_tokens=tokens)
        fits = cost <= remaining + 1e-12
        if fits:
            remaining -= cost
        planned.append(PlannedProbe(kind, provider, model, requests, tokens, cost, fits))
    plan = ProbePlan(
        run_id=session.run_id,
        models=tuple(pairs),
        max_tokens=max_tokens,
        budget_usd=float(probe_budget_usd),
        cache_ttl=cache_ttl,
        overhead_samples=overhead_samples,
        overhead_warmup=warmup,
        overhead_budget_ms=(CONTRACT_OVERHEAD_MS[0], float(overhead_budget_ms)),
        request_timeout_s=float(request_timeout_s),
        probes=tuple(planned),
    )
    skipped = plan.skipped
    detail = (f"worst case {usd(plan.planned_usd)} of {usd(probe_budget_usd, 2)} for "
              f"{sum(p.requests for p in planned if p.fits)} requests")
    if skipped:
        detail += "; skipped to stay in budget: " + ", ".join(p.label for p in skipped)
    plan.checks.append(Check(None, "probes priced before sending (probe_budget_usd)", "pass", detail))
    return plan


# --- probing --------------------------------------------------------------------------------------------------


def _prober(session: Session, plan: ProbePlan) -> GatewayProber:
    # Every probe carries this run's id in cf-aig-metadata for notebook 04; retries add up in the session.
    return GatewayProber.from_settings(session.settings, run_id=session.run_id, timeout=plan.request_timeout_s,
                                       stats=session.probe_stats)


@dataclass
class EndpointChecks:
    """The probes of one step and what they prove."""

    title: str
    probes: list[ProbeResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        parts = [f"**{self.title}**", _checks_table(self.checks)]
        if self.probes:
            rows = [(p.check, f"{p.provider}/{p.model}", p.status, p.outcome,
                     p.gateway_error_code if p.gateway_error_code is not None else p.provider_error_type,
                     f"{p.latency_ms:.0f}", p.cache_status, p.log_id, p.excerpt[:60]) for p in self.probes]
            parts.append(markdown_table(
                ["probe", "model", "status", "outcome", "error", "ms", "cache", "cf-aig-log-id", "answer"], rows))
        parts.extend(f"_{note}_" for note in self.notes)
        return "\n\n".join(parts)


def _skip(checks: list[Check], criterion: int | None, name: str, planned: PlannedProbe) -> None:
    # The subject tells the evidence which provider of the contract this criterion's check is missing for.
    subject = f"{planned.provider}/{planned.model}" if criterion is not None else None
    checks.append(Check(criterion, name, "skip",
                        f"not sent: its worst case {usd(planned.cost_usd, 5)} would pass probe_budget_usd",
                        subject=subject))


def _attempts(probe: ProbeResult) -> str:
    return f" after {probe.attempts} attempts" if probe.attempts > 1 else ""


def _save(session: Session, step: str, data: Any) -> None:
    """Merge one step's results into the run folder's probe record (notebook 04 reads the log ids from it).

    Written after every step, so a notebook that stops at a failed check keeps what it saw.
    """
    path = session.run_dir / PROBES_FILE
    payload: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except ValueError:
            loaded = None
        if isinstance(loaded, dict) and loaded.get("run_id") == session.run_id:
            payload = loaded
    payload["run_id"] = session.run_id
    payload.setdefault("steps", {})[step] = data
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True))
    partial.replace(path)


def _saved(session: Session, step: str, result: EndpointChecks) -> EndpointChecks:
    _save(session, step, [p.as_dict() for p in result.probes])
    return result


def verify_lock(session: Session, plan: ProbePlan) -> EndpointChecks:
    """The gateway is authenticated: without ``cf-aig-authorization``, and with a wrong token, it answers
    401 with its own error code 2009 (not the provider's)."""
    result = EndpointChecks("Authenticated gateway: requests without a valid cf-aig-authorization")
    planned = plan.find("lock")[0]
    if not planned.fits:
        _skip(result.checks, None, "gateway refuses requests without a valid cf-aig-authorization", planned)
        return _saved(session, "lock", result)
    # A fresh random token stands for "wrong": it is no one's, and it is never shown.
    wrong = Secret(_random.token_urlsafe(30), "wrong gateway token")
    with _prober(session, plan) as prober:
        missing = prober.probe_without_gateway_token("openai", planned.model, prompt=_WRONG_TOKEN_PROMPT)
        bad = prober.probe_with_token(wrong, "openai", planned.model, prompt=_WRONG_TOKEN_PROMPT)
    result.probes.extend([missing, bad])
    for probe, name in ((missing, "without cf-aig-authorization"), (bad, "with a wrong token")):
        locked = probe.status == 401 and probe.outcome == "gateway_error" and probe.gateway_error_code == 2009
        detail = (f"{probe.status} code {probe.gateway_error_code}" if probe.outcome == "gateway_error"
                  else f"{probe.status} {probe.outcome}: {probe.excerpt}")
        if not locked:
            detail += " (expected 401 code 2009: is authentication on? see notebook 01)"
        result.checks.append(Check(None, f"gateway refuses a request {name} (401, code 2009)",
                                   "pass" if locked else "fail", detail))
    return _saved(session, "lock", result)


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
    with _prober(session, plan) as prober:
        for planned in plan.find("unified"):
            name = f"unified endpoint answers {planned.provider}/{planned.model}"
            if not planned.fits:
                _skip(result.checks, 3, name, planned)
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
                                           f"{_attempts(probe)}: {probe.excerpt}", subject=subject))
    log_check = _log_id_check(result.probes, 3)
    if log_check is not None:
        result.checks.append(log_check)
    return _saved(session, "unified", result)


def verify_providers(session: Session, plan: ProbePlan) -> EndpointChecks:
    """Criterion 4: each provider's native endpoint through the gateway answers 200 or a valid provider
    error (the provider's own body: the gateway forwarded it), never the gateway's 401/403."""
    result = EndpointChecks("Provider endpoints through the gateway (BYOK: no provider key sent), criterion 4")
    with _prober(session, plan) as prober:
        for planned in plan.find("provider"):
            url = f"{prober.gateway_url(planned.provider)}/..."
            name = f"{planned.provider} endpoint answers (200 or a provider's own 4xx, not 401/403)"
            if not planned.fits:
                _skip(result.checks, 4, name, planned)
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
                          f"on {planned.provider}/{path}{_attempts(probe)}: the provider is unavailable or rate "
                          f"limited, which proves nothing about the path; run 03 again later: {probe.excerpt}")
            else:
                status = "fail"
                detail = f"{probe.status} {probe.outcome} on {url}{_attempts(probe)}: {probe.excerpt}"
            result.checks.append(Check(4, name, status, detail, subject=f"{planned.provider}/{planned.model}"))
    log_check = _log_id_check(result.probes, 4)
    if log_check is not None:
        result.checks.append(log_check)
    return _saved(session, "provider", result)


def verify_cache(session: Session, plan: ProbePlan, *,
                 repeat_waits_s: Sequence[float] = CACHE_REPEAT_WAITS_S) -> EndpointChecks:
    """Caching works when asked for: the same request with ``cf-aig-cache-ttl`` is a MISS, then a HIT.

    The prompt carries a random nonce, so the first request cannot be in the cache already. Cloudflare's
    cache is volatile (the first repeat may not find the entry yet), so a repeat that misses is sent
    again after each of ``repeat_waits_s``; every status is recorded, and the check passes on a first
    MISS followed, within those repeats, by a HIT of the same answer.
    """
    result = EndpointChecks("Caching (cf-aig-cache-ttl): MISS, then HIT")
    planned = plan.find("cache")[0]
    name = "a repeated request with cf-aig-cache-ttl is served from the cache (MISS, then HIT)"
    if not planned.fits:
        _skip(result.checks, None, name, planned)
        return _saved(session, "cache", result)
    prompt = f"{PROMPT} (cache check {_random.token_hex(6)})"
    headers = {"cf-aig-cache-ttl": str(plan.cache_ttl)}
    waits = [0.0, *repeat_waits_s]  # before the first repeat no wait: the common case is an immediate HIT
    with _prober(session, plan) as prober:

        def probe(attempt: int) -> ProbeResult:
            sent = prober.probe_unified(
                f"{planned.provider}/{planned.model}", prompt, max_tokens=plan.max_tokens,
                metadata={"aigw_probe": f"cache-{attempt}"}, extra_headers=headers,
            )
            result.probes.append(sent)
            return sent

        first = probe(1)
        if first.ok and (first.cache_status or "").upper() == "MISS":
            for attempt, wait in enumerate(waits, start=2):
                if wait > 0:
                    time.sleep(wait)
                repeat = probe(attempt)
                if not repeat.ok or (repeat.cache_status or "").upper() != "MISS":
                    break
    statuses = [(p.cache_status or "none").upper() for p in result.probes]
    last = result.probes[-1]
    passed = (len(result.probes) > 1 and all(p.ok for p in result.probes) and statuses[0] == "MISS"
              and statuses[-1] == "HIT" and set(statuses[1:-1]) <= {"MISS"})
    repeats = len(result.probes) - 1
    detail = (f"cf-aig-cache-status {' then '.join(statuses)} ({planned.provider}/{planned.model}); "
              f"{repeats} repeat(s) of {len(waits)} allowed")
    if repeats > 1:
        detail += f", waits {', '.join(f'{w:g}' for w in waits[1:repeats])} s"
    if not all(p.ok for p in result.probes):
        detail += f"; answers {', '.join(str(p.status) for p in result.probes)}"
    elif passed and last.excerpt != first.excerpt:
        passed = False
        detail += "; the HIT's answer differs from the MISS's"
    result.checks.append(Check(None, name, "pass" if passed else "fail", detail))
    return _saved(session, "cache", result)


# --- overhead -------------------------------------------------------------------------------------------------


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
        from aigw.plots import plot_overhead

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
                 _checks_table(self.checks)]
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
        _skip(report.checks, None, name, probe)
        return report
    if session.settings.provider_key(probe.provider) is None:
        report.checks.append(Check(None, name, "skip",
                                   f"no {probe.provider} key in .dev.vars or the environment: the direct "
                                   "requests need one (the gateway's BYOK key is never readable)"))
        return report
    with _prober(session, plan) as prober:
        try:
            result = prober.measure_overhead(probe.provider, probe.model, n=plan.overhead_samples,
                                             max_tokens=probe.max_tokens, warmup=plan.overhead_warmup,
                                             prompt=_WRONG_TOKEN_PROMPT)
        except AigwError as exc:
            report.checks.append(Check(None, name, "fail", str(exc)))
            return report
    report.result = result
    report.checks.append(judge_overhead(result, plan.overhead_budget_ms))
    _save(session, "overhead", report.as_dict())
    if session.target == "twin":
        told = (f"{report.twin_overhead_ms:g} ms" if report.twin_overhead_ms is not None
                else "its configured gateway_overhead_ms")
        report.notes.append(f"On the twin the overhead is what the twin was told to add ({told}) plus loopback "
                            "noise: this shows the measurement works, not how fast Cloudflare is.")
    return report


# --- the REST API beside compat -------------------------------------------------------------------------------


PaidBy = Literal["byok", "unified billing", "unknown"]


@dataclass(frozen=True)
class RestRow:
    """One model through the REST API, beside its compat probe; cost and payer from the request's log."""

    model: str  # the REST API's author/model
    compat: str  # the compat probe's status ("-" when it was not sent)
    probe: ProbeResult | None  # None: not sent (probe budget)
    cost_usd: float | None = None
    paid_by: PaidBy = "unknown"
    log_note: str = ""


@dataclass
class RestParity:
    """``verify_rest``: the rows, and the ``REST API parity`` notes (criterion None: never the verdict)."""

    rows: list[RestRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def probes(self) -> list[ProbeResult]:
        return [r.probe for r in self.rows if r.probe is not None]

    def _repr_markdown_(self) -> str:
        rows = []
        for row in self.rows:
            probe = row.probe
            if probe is None:
                rows.append((row.model, row.compat, "not sent", "-", "-", "-", "-"))
                continue
            code = f" code {probe.gateway_error_code}" if probe.gateway_error_code is not None else ""
            tokens = (f"{probe.tokens_in} in / {probe.tokens_out} out" if probe.tokens_in is not None
                      or probe.tokens_out is not None else "-")
            cost = f"${row.cost_usd:.6f}" if row.cost_usd is not None else "unknown"
            rows.append((row.model, row.compat, f"{probe.status} {probe.outcome}{code}", tokens, cost,
                         probe.log_id or "-", row.paid_by))
        table = markdown_table(["model (REST)", "compat", "REST", "tokens", "cost (log)", "cf-aig-log-id", "paid by"],
                               rows)
        return ("**REST API parity** (`/ai/v1/chat/completions`, beside compat; not a criterion)\n\n"
                + _checks_table(self.checks) + "\n\n" + table)


def _compat_status(compat: EndpointChecks | None, provider: str, model: str) -> str:
    if compat is None:
        return "-"
    probe = next((p for p in compat.probes if p.provider == provider and p.model == model), None)
    return f"{probe.status} {probe.outcome}" if probe is not None else "not sent"


def _paid_by(session: Session, log_id: str) -> PaidBy:
    """From the log's ``wholesale`` (Unified Billing), a filter key of the logs API: the log detail does not show
    it. ASSUMPTION: a request that sent no provider key and was not wholesale was paid by the gateway's stored key
    (BYOK); ``wholesale`` is Unified Billing (the name third parties use for its credits)."""
    gateway_id = session.settings.gateway_id
    answers: tuple[tuple[bool, PaidBy], ...] = ((True, "unified billing"), (False, "byok"))
    for wholesale, paid in answers:
        filters: list[dict[str, Any]] = [{"key": "id", "operator": "eq", "value": [log_id]},
                   {"key": "wholesale", "operator": "eq", "value": [wholesale]}]
        if session.client.list_logs(gateway_id, filters=filters, per_page=5).logs:
            return paid
    return "unknown"


def _log_facts(session: Session, log_id: str, *, wait: bool = True,
               sleep: Any = time.sleep) -> tuple[float | None, PaidBy, str]:
    """``(cost, paid by, note)`` from the request's log, waiting ``REST_LOG_WAITS_S`` for it to appear (``wait``
    False: one look)."""
    waits = [0.0, *REST_LOG_WAITS_S] if wait else [0.0]
    for attempt, pause in enumerate(waits):
        if pause:
            sleep(pause)
        try:
            log = session.client.get_log(session.settings.gateway_id, log_id)
        except NotFoundError:
            if attempt == len(waits) - 1:
                return None, "unknown", f"log not listed after {sum(waits):g} s of waiting"
            continue
        except AigwError as exc:
            return None, "unknown", f"log not read: {exc}"
        try:
            paid = _paid_by(session, log_id)
        except AigwError as exc:
            return log.cost, "unknown", f"payer not read: {exc}"
        return log.cost, paid, ""
    return None, "unknown", "log not read"


def verify_rest(session: Session, plan: ProbePlan, compat: EndpointChecks | None = None) -> RestParity:
    """Each model through the REST API (``/ai/v1/chat/completions``, ``cf-aig-gateway-id`` our gateway), beside its
    compat probe: status, tokens, cost and log id, and whether BYOK or Unified Billing paid (from the log).

    The checks are ``REST API parity`` notes: shown in their own SUMMARY.md row, never the verdict (the contract
    asks compat, criterion 3). A REST request the gateway's stored key did not pay cost Unified Billing credits.
    """
    result = RestParity()
    # Once a log never appeared (e.g. an account whose logs live elsewhere), the next models look once, not again
    # for the whole wait.
    wait_for_logs = True
    with _prober(session, plan) as prober:
        for planned in plan.find("rest"):
            shown = rest_model(planned.provider, planned.model)
            name = f"{PARITY_CHECK}: {shown} answers like compat"
            subject = f"{planned.provider}/{planned.model}"
            compat_status = _compat_status(compat, planned.provider, planned.model)
            if not planned.fits:
                result.rows.append(RestRow(shown, compat_status, None))
                result.checks.append(Check(None, name, "skip", f"not sent: its worst case ${planned.cost_usd:.5f} "
                                           "would pass probe_budget_usd", subject=subject))
                continue
            probe = prober.probe_rest(planned.provider, planned.model, PROMPT, max_tokens=plan.max_tokens)
            cost: float | None
            paid: PaidBy
            if not probe.ok:
                cost, paid, note = None, "unknown", "no completion, nothing to pay for"
            elif probe.log_id:
                cost, paid, note = _log_facts(session, probe.log_id, wait=wait_for_logs)
                wait_for_logs = wait_for_logs and not note.startswith("log not listed")
            else:
                cost, paid, note = None, "unknown", "no cf-aig-log-id"
            row = RestRow(shown, compat_status, probe, cost, paid, note)
            result.rows.append(row)
            shown_cost = f"${cost:.6f}" if cost is not None else "cost unknown"
            facts = (f"tokens {probe.tokens_in}/{probe.tokens_out}, {shown_cost}, paid by {paid}, log "
                     f"{probe.log_id or 'none'}" + (f" ({note})" if note else ""))
            if probe.ok:
                result.checks.append(Check(None, name, "pass", f"{probe.status} (compat {compat_status}); {facts}",
                                           subject=subject))
            else:
                code = f" code {probe.gateway_error_code}" if probe.gateway_error_code is not None else ""
                hint = (" (no Unified Billing credits and no BYOK key for the provider on the gateway)"
                        if probe.status == 402 else "")
                result.checks.append(Check(None, name, "fail", f"{probe.status} {probe.outcome}{code}{hint}"
                                           f"{_attempts(probe)}: {probe.excerpt} (compat {compat_status})",
                                           subject=subject))
    _save(session, "rest", [p.as_dict() for p in result.probes])
    return result


# --- the record for notebook 04 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedProbes:
    """What the run folder holds of notebook 03's probes."""

    path: Path
    probes: int
    log_ids: tuple[str, ...]
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        return (f"**{self.probes}** probe results ({len(self.log_ids)} with a `cf-aig-log-id`) are in "
                f"`{self.path.name}` in the run folder; notebook 04 looks for them in the logs.")


def saved_probes(session: Session) -> SavedProbes:
    """The probe results this run saved (each step saves its own as it finishes)."""
    path = session.run_dir / PROBES_FILE
    log_ids = load_probe_log_ids(session.run_dir, session.run_id) or []
    count = 0
    if path.is_file():
        steps = json.loads(path.read_text()).get("steps", {})
        count = sum(len(v) for v in steps.values() if isinstance(v, list))
    return SavedProbes(path, count, tuple(log_ids))


def load_probe_log_ids(run_dir: Path, run_id: str | None = None) -> list[str] | None:
    """The ``cf-aig-log-id`` of every probe notebook 03 saved in ``run_dir`` (None when it saved none,
    or saved them for another run)."""
    path = Path(run_dir) / PROBES_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except ValueError:
        return None
    if not isinstance(payload, Mapping) or (run_id is not None and payload.get("run_id") != run_id):
        return None
    steps = payload.get("steps")
    if not isinstance(steps, Mapping):
        return None
    return [str(p["log_id"]) for probes in steps.values() if isinstance(probes, list)
            for p in probes if isinstance(p, Mapping) and p.get("log_id")]
