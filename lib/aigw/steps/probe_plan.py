"""Notebook 03's probe plan: every probe it may send, priced before one is sent, kept within ``probe_budget_usd``.

Also what each of 03's step modules shares: the prompts, the prober a step opens, and how a skipped or retried
probe reads in a check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from aigw.config import PROVIDERS
from aigw.errors import ConfigError
from aigw.evidence import Check
from aigw.gateway import DEFAULT_MODELS, PROBE_RETRY, GatewayProber, ProbeResult
from aigw.pricing import LIST_PRICES, list_price
from aigw.session import Session
from aigw.steps import markdown_table, usd

__all__ = [
    "CACHE_REPEAT_WAITS_S",
    "CONTRACT_OVERHEAD_MS",
    "DEFAULT_PRICE",
    "PRICES",
    "PROMPT",
    "WRONG_TOKEN_PROMPT",
    "Kind",
    "PlannedProbe",
    "ProbePlan",
    "attempts_note",
    "estimate_cost",
    "parse_models",
    "plan_probes",
    "price_of",
    "probe_client",
    "skip_check",
]

#: The contract's latency budget: "+50-200 ms overhead vs. direct provider (acceptable)".
CONTRACT_OVERHEAD_MS: Final = (50.0, 200.0)
PROMPT: Final = "Reply with the word ok."
WRONG_TOKEN_PROMPT: Final = "ping"
#: The cache is volatile ("the first request may not cache in time", cloudflare-docs
#: ai-gateway/features/caching.mdx): after the first repeat misses, it is sent again after each wait. The first
#: wait is short: 03's first repeat goes out about a second after the MISS that stored it, and half of the twin's
#: runs (1 s write delay) missed it by a fraction of a second, then waited a whole second (1, 2, 4 s before).
CACHE_REPEAT_WAITS_S: Final = (0.25, 1.0, 2.0, 4.0)
#: Tries per probe on a 5xx, 429 or no answer (notebook 03's ``probe_attempts``).
PROBE_ATTEMPTS: Final = PROBE_RETRY.attempts

#: List prices, USD per 1M tokens (input, output), for pricing probes before they are sent.
PRICES: Final = LIST_PRICES
#: An unlisted model is priced dearer than any listed one, on purpose: the budget errs on the safe side.
DEFAULT_PRICE: Final = (30.00, 120.00)
#: Tokens a chat request spends besides the prompt text (roles, framing).
_FRAMING_TOKENS: Final = 16

Kind = Literal["lock", "unified", "provider", "cache", "overhead", "rest"]


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
    probe_attempts: int
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
    probe_attempts: int = PROBE_ATTEMPTS,
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
    if probe_attempts < 1:
        raise ConfigError(f"probe_attempts={probe_attempts} is below 1", hint=f"Use {PROBE_ATTEMPTS}")
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
        prompt = WRONG_TOKEN_PROMPT if kind in ("lock", "overhead") else PROMPT
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
        probe_attempts=int(probe_attempts),
        probes=tuple(planned),
    )
    skipped = plan.skipped
    detail = (f"worst case {usd(plan.planned_usd)} of {usd(probe_budget_usd, 2)} for "
              f"{sum(p.requests for p in planned if p.fits)} requests")
    if skipped:
        detail += "; skipped to stay in budget: " + ", ".join(p.label for p in skipped)
    plan.checks.append(Check(None, "probes priced before sending (probe_budget_usd)", "pass", detail))
    return plan


def probe_client(session: Session, plan: ProbePlan) -> GatewayProber:
    # Every probe carries this run's id in cf-aig-metadata for notebook 04; retries add up in the session.
    return GatewayProber.from_settings(session.settings, run_id=session.run_id, timeout=plan.request_timeout_s,
                                       stats=session.probe_stats,
                                       retry=replace(PROBE_RETRY, attempts=plan.probe_attempts))


def skip_check(checks: list[Check], criterion: int | None, name: str, planned: PlannedProbe) -> None:
    # The subject tells the evidence which provider of the contract this criterion's check is missing for.
    subject = f"{planned.provider}/{planned.model}" if criterion is not None else None
    checks.append(Check(criterion, name, "skip",
                        f"not sent: its worst case {usd(planned.cost_usd, 5)} would pass probe_budget_usd",
                        subject=subject))


def attempts_note(probe: ProbeResult) -> str:
    return f" after {probe.attempts} attempts" if probe.attempts > 1 else ""
