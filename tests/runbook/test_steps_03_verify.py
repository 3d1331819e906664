"""Notebook 03's steps: pricing and the budget (pure), then every probe against the twin over real HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigw.config import PROVIDERS, load_settings
from aigw.errors import ConfigError
from aigw.evidence import PARITY_CHECK, Check, counts_for_verdict, run_status, summarize_criteria
from aigw.gateway import OverheadResult
from aigw.session import Session
from aigw.steps import rest_parity
from aigw.steps import verify_endpoints as ve
from cftwin.adminauth import write_admin_token
from cftwin.faults import FaultInjector, ProviderFault

from tests.steps_support import create_the_gateway, store_the_keys

MODELS = ["google-ai-studio/gemini-2.5-flash", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]


# --- pure: models, prices, plan -------------------------------------------------------------------------------


def test_models_use_cloudflare_slugs() -> None:
    assert ve.parse_models("openai/gpt-4o, anthropic/claude-3-sonnet,openai/gpt-4o") == [
        ("openai", "gpt-4o"), ("anthropic", "claude-3-sonnet")]
    with pytest.raises(ConfigError, match=re.escape("google-ai-studio/gemini-2.5-flash")):
        ve.parse_models(["google/gemini-2.5-flash"])
    with pytest.raises(ConfigError, match="not '<provider>/<model>'"):
        ve.parse_models(["gpt-4o"])
    with pytest.raises(ConfigError, match="no models"):
        ve.parse_models([])


def test_prices_and_worst_case_cost() -> None:
    assert ve.price_of("openai", "gpt-4o-2024-08-06") == ve.PRICES["openai"]["gpt-4o"]
    assert ve.price_of("openai", "gpt-4o-mini-2024-07-18") == ve.PRICES["openai"]["gpt-4o-mini"]
    assert ve.price_of("openai", "some-new-model") == ve.DEFAULT_PRICE
    # 23 prompt characters -> 6 tokens + 16 framing; 64 output tokens at the output price
    cost = ve.estimate_cost("openai", "gpt-4o", prompt="Reply with the word ok.", max_tokens=64)
    assert cost == pytest.approx((22 * 2.50 + 64 * 10.00) / 1_000_000)


def _session(tmp_path: Path, environ: dict[str, str] | None = None) -> Session:
    env = environ or {"CLOUDFLARE_ACCOUNT_ID": "0" * 32, "CLOUDFLARE_API_TOKEN": "t" * 40}
    return Session(settings=load_settings(environ=env), target="twin", run_id="plan", run_dir=tmp_path)


def test_plan_keeps_what_fits_the_budget_in_order(tmp_path: Path) -> None:
    session = _session(tmp_path)
    roomy = ve.plan_probes(session, models=MODELS)
    assert [p.kind for p in roomy.probes] == ["lock", "unified", "unified", "unified", "provider", "provider",
                                              "provider", "cache", "overhead", "rest", "rest", "rest"]
    assert all(p.fits for p in roomy.probes) and roomy.planned_usd < 0.05
    assert roomy.find("cache")[0].model == "gemini-2.5-flash"  # the cheapest model
    assert roomy.find("overhead")[0].requests == 2 * (10 + 2)

    claude = ve.estimate_cost("anthropic", "claude-sonnet-4-5", max_tokens=64)
    tight = ve.plan_probes(session, models=MODELS, probe_budget_usd=claude * 1.5, overhead_samples=0)
    fits = {(p.kind, p.model): p.fits for p in tight.probes}
    assert fits[("unified", "gemini-2.5-flash")] and fits[("unified", "gpt-4o")]
    assert not fits[("unified", "claude-sonnet-4-5")] and not fits[("provider", "claude-sonnet-4-5")]
    assert tight.planned_usd <= claude * 1.5
    assert "skipped to stay in budget" in tight.checks[0].detail
    nothing = ve.plan_probes(session, models=MODELS, probe_budget_usd=0)
    assert nothing.planned_usd == 0 and not any(p.fits for p in nothing.probes)


def test_plan_refuses_bad_parameters(tmp_path: Path) -> None:
    session = _session(tmp_path)
    with pytest.raises(ConfigError, match="max_tokens"):
        ve.plan_probes(session, models=MODELS, max_tokens=0)
    with pytest.raises(ConfigError, match="minimum of 60"):
        ve.plan_probes(session, models=MODELS, cache_ttl=10)


def test_overhead_is_judged_on_its_median() -> None:
    def result(overheads: list[float]) -> OverheadResult:
        return OverheadResult("openai", "gpt-4o-mini", tuple(o + 100 for o in overheads), (100.0,) * len(overheads),
                              tuple(overheads))

    within = ve.judge_overhead(result([120, 130, 125, 500]), (50, 200))
    assert within.status == "pass" and "the p95 passes 200 ms" in within.detail
    assert ve.judge_overhead(result([210, 230, 250]), (50, 200)).status == "fail"
    assert ve.judge_overhead(result([3, 4, 5]), (50, 200)).status == "pass"  # faster than budget is fine


# --- against the twin -----------------------------------------------------------------------------------------


@pytest.fixture
def session(twin: Any, tmp_path: Path) -> Iterator[Session]:
    twin.reset()
    made = _session(tmp_path, twin.seed.to_environ(twin.server))
    made.run_id = "run-03"
    create_the_gateway(made)
    yield made
    made.close()


def _statuses(result: Any) -> dict[str, str]:
    return {c.check: c.status for c in result.checks}


def test_every_probe_passes_on_a_configured_gateway(twin: Any, session: Session, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store_the_keys(session)
    # The step asks the twin what it adds, with the twin's admin token (as for a twin served by hand).
    write_admin_token(tmp_path / "admin-token", twin.server.admin_token)
    monkeypatch.setenv("AIGW_TWIN_ADMIN_TOKEN_FILE", str(tmp_path / "admin-token"))
    httpx.put(f"{twin.server.url}/__twin__/config", json={"gateway_overhead_ms": 120},
              headers=twin.server.admin_headers).raise_for_status()
    plan = ve.plan_probes(session, models=MODELS, overhead_samples=5)
    lock = ve.verify_lock(session, plan)
    assert set(_statuses(lock).values()) == {"pass"}
    assert [(p.status, p.gateway_error_code) for p in lock.probes] == [(401, 2009), (401, 2009)]
    unified = ve.verify_unified(session, plan)
    assert set(_statuses(unified).values()) == {"pass"} and len(unified.checks) == 4
    assert {c.criterion for c in unified.checks} == {3}
    providers = ve.verify_providers(session, plan)
    assert set(_statuses(providers).values()) == {"pass"} and {c.criterion for c in providers.checks} == {4}
    paths = {p.provider: p.url.split(f"/{session.settings.gateway_id}/", 1)[1] for p in providers.probes}
    assert paths == {"google-ai-studio": "google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
                     "openai": "openai/chat/completions", "anthropic": "anthropic/v1/messages"}
    cache = ve.verify_cache(session, plan)
    assert [p.cache_status for p in cache.probes] == ["MISS", "HIT"]
    overhead = ve.measure_overhead(session, plan)
    assert overhead.result is not None and overhead.result.n == 5
    assert 110 <= overhead.result.median_ms <= 200, overhead.result.as_dict()
    assert _statuses(overhead)["gateway overhead within the contract's budget"] == "pass"
    assert overhead.twin_overhead_ms == 120 and "told to add (120 ms)" in overhead._repr_markdown_()
    assert overhead.plot()._repr_png_().startswith(b"\x89PNG")

    saved = ve.saved_probes(session)
    assert saved.probes == 2 + 3 + 3 + 2 and len(saved.log_ids) == 8
    record = json.loads(saved.path.read_text())
    assert record["run_id"] == "run-03" and set(record["steps"]) == {"lock", "unified", "provider", "cache",
                                                                      "overhead"}
    assert ve.load_probe_log_ids(session.run_dir, "another-run") is None


def test_missing_byok_keys_fail_criterion_4_and_3(session: Session) -> None:
    # No notebook 02: the gateway has no stored keys, so the provider refuses the key-less request.
    plan = ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=0)
    providers = ve.verify_providers(session, plan)
    openai = next(c for c in providers.checks if c.check.startswith("openai"))
    assert openai.status == "fail", openai
    unified = ve.verify_unified(session, plan)
    assert _statuses(unified)["unified endpoint answers openai/gpt-4o-mini"] == "fail"


def test_a_provider_error_still_proves_the_path_but_not_criterion_3(session: Session) -> None:
    store_the_keys(session)
    plan = ve.plan_probes(session, models=["openai/no-such-model"], overhead_samples=0)
    providers = ve.verify_providers(session, plan)
    probe = providers.probes[0]
    assert probe.outcome == "provider_error" and probe.status not in (401, 403), probe
    assert providers.checks[0].status == "pass" and "the gateway forwarded it" in providers.checks[0].detail
    assert ve.verify_unified(session, plan).checks[0].status == "fail"


def test_skipped_probes_send_nothing(twin: Any, session: Session) -> None:
    store_the_keys(session)
    plan = ve.plan_probes(session, models=MODELS, probe_budget_usd=0)
    for step in (ve.verify_lock, ve.verify_unified, ve.verify_providers, ve.verify_cache):
        result = step(session, plan)
        assert result.probes == [] and set(_statuses(result).values()) == {"skip"}
    assert set(_statuses(ve.measure_overhead(session, plan)).values()) == {"skip"}
    stats = httpx.get(f"{twin.server.url}/__twin__/logs/stats",
                      params={"account_id": twin.account_id, "gateway_id": session.settings.gateway_id},
                      headers=twin.server.admin_headers).json()
    assert stats["count"] == 0, stats


def test_overhead_over_budget_fails(twin: Any, session: Session) -> None:
    store_the_keys(session)
    httpx.put(f"{twin.server.url}/__twin__/config", json={"gateway_overhead_ms": 260},
              headers=twin.server.admin_headers).raise_for_status()
    plan = ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=3)
    report = ve.measure_overhead(session, plan)
    assert _statuses(report)["gateway overhead within the contract's budget"] == "fail"
    assert report.result is not None and report.result.median_ms > 200


def _cache_plan(twin: Any, session: Session, *, cache_write_delay_s: float) -> ve.ProbePlan:
    """Keys stored, the twin's cache write delayed so, and a plan with one model and no overhead pairs."""
    store_the_keys(session)
    httpx.put(f"{twin.server.url}/__twin__/config", json={"cache_write_delay_s": cache_write_delay_s},
              headers=twin.server.admin_headers).raise_for_status()
    return ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=0)


def test_the_cache_pair_is_repeated_until_the_volatile_cache_hits(twin: Any, session: Session) -> None:
    # Cloudflare's cache is volatile: the first repeat may miss. The twin's write lands after 0.3 s.
    plan = _cache_plan(twin, session, cache_write_delay_s=0.3)
    assert plan.find("cache")[0].requests == 2 + len(ve.CACHE_REPEAT_WAITS_S)  # priced for every repeat
    cache = ve.verify_cache(session, plan, repeat_waits_s=(0.5, 1.0, 2.0))
    statuses = [p.cache_status for p in cache.probes]
    assert statuses[0] == "MISS" and statuses[-1] == "HIT" and set(statuses[1:-1]) <= {"MISS"}, statuses
    assert cache.checks[0].status == "pass", cache.checks[0]
    assert "cf-aig-cache-status MISS then" in cache.checks[0].detail and "of 4 allowed" in cache.checks[0].detail


def test_a_cache_that_never_hits_within_the_repeats_fails_naming_each_status(twin: Any, session: Session) -> None:
    plan = _cache_plan(twin, session, cache_write_delay_s=60)
    cache = ve.verify_cache(session, plan, repeat_waits_s=(0.01, 0.01))
    assert [p.cache_status for p in cache.probes] == ["MISS"] * 4
    check = cache.checks[0]
    assert check.status == "fail"
    assert check.detail.startswith("cf-aig-cache-status MISS then MISS then MISS then MISS")
    assert "3 repeat(s) of 3 allowed, waits 0.01, 0.01 s" in check.detail


def test_a_cache_request_sent_early_is_repeated_later_and_hits_without_a_wait(twin: Any, session: Session) -> None:
    # 03 sends the first request before the overhead pairs: the cache write lands while they run, so the first
    # repeat (sent at once) is the HIT, and the early request is the pair's MISS, not sent again.
    plan = _cache_plan(twin, session, cache_write_delay_s=0.3)
    sent = ve.send_cache(session, plan)
    assert sent.first is not None and sent.first.cache_status == "MISS" and "MISS" in sent._repr_markdown_()
    record = json.loads((session.run_dir / ve.PROBES_FILE).read_text())
    assert [p["cache_status"] for p in record["steps"]["cache"]] == ["MISS"]  # kept even if 03 stops here
    time.sleep(0.4)  # what the notebook's provider and overhead steps take, here spent idle
    cache = ve.verify_cache(session, plan, sent=sent)
    assert cache.probes[0] is sent.first
    assert [p.cache_status for p in cache.probes] == ["MISS", "HIT"]
    allowed = 1 + len(ve.CACHE_REPEAT_WAITS_S)  # the first repeat, then one after each wait
    assert cache.checks[0].status == "pass" and f"1 repeat(s) of {allowed} allowed" in cache.checks[0].detail, \
        cache.checks[0]
    record = json.loads((session.run_dir / ve.PROBES_FILE).read_text())
    assert [p["cache_status"] for p in record["steps"]["cache"]] == ["MISS", "HIT"]


def test_a_cache_request_sent_early_still_needs_its_hit(twin: Any, session: Session) -> None:
    plan = _cache_plan(twin, session, cache_write_delay_s=60)
    cache = ve.verify_cache(session, plan, sent=ve.send_cache(session, plan), repeat_waits_s=(0.01,))
    assert [p.cache_status for p in cache.probes] == ["MISS", "MISS", "MISS"]
    assert cache.checks[0].status == "fail"


def test_a_cache_check_over_budget_sends_nothing_early_either(twin: Any, session: Session) -> None:
    plan = ve.plan_probes(session, models=MODELS, probe_budget_usd=0)
    sent = ve.send_cache(session, plan)
    assert sent.first is None and "nothing sent" in sent._repr_markdown_()
    cache = ve.verify_cache(session, plan, sent=sent)
    assert cache.probes == [] and [c.status for c in cache.checks] == ["skip"]


class _SlowFirstProviderCalls(FaultInjector):
    """The first ``count`` provider calls answer after ``delay_ms``; every later call at once."""

    def __init__(self, count: int, delay_ms: float) -> None:
        super().__init__()
        self.count, self.delay_ms, self.calls = count, delay_ms, 0

    def provider_decision(self, provider: str) -> ProviderFault:
        self.calls += 1
        return ProviderFault("slow", delay_ms=self.delay_ms) if self.calls <= self.count else ProviderFault()


def test_a_first_cache_request_answered_from_its_own_timed_out_attempt_is_sent_again(
        twin: Any, session: Session) -> None:
    # The first request times out twice (0.9 s upstream, 0.5 s timeout); the gateway still finishes and caches
    # the first attempt, so the third attempt is a HIT: no MISS was seen, so the pair starts again, fresh.
    store_the_keys(session)
    plan = ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=0, request_timeout_s=0.5)
    faults, twin.context.faults = twin.context.faults, _SlowFirstProviderCalls(2, 900)
    try:
        cache = ve.verify_cache(session, plan)
    finally:
        twin.context.faults = faults
    assert [(p.cache_status, p.attempts) for p in cache.probes] == [("HIT", 3), ("MISS", 1), ("HIT", 1)]
    check = cache.checks[0]
    assert check.status == "pass", check
    assert check.detail.startswith("cf-aig-cache-status MISS then HIT")
    # One repeat less than a fresh pair's 1 + len(waits): the spoiled first request was priced too.
    assert f"1 repeat(s) of {len(ve.CACHE_REPEAT_WAITS_S)} allowed" in check.detail
    assert "fresh nonce after the first request's HIT after 3 attempts" in check.detail
    assert len(cache.probes) <= plan.find("cache")[0].requests  # within the probes priced for the step


def test_a_provider_outage_that_survives_the_retries_fails_criterion_4(twin: Any, session: Session) -> None:
    store_the_keys(session)
    twin.context.faults.set_spec("seed=1,provider.5xx=1")
    try:
        plan = ve.plan_probes(session, models=MODELS, overhead_samples=0)
        providers = ve.verify_providers(session, plan)
    finally:
        twin.context.faults.set_spec("")
    outcomes = [(p.outcome, p.status is not None and p.status >= 500, p.attempts) for p in providers.probes]
    assert outcomes == [("provider_error", True, 3)] * 3, outcomes
    answers = [c for c in providers.checks if c.subject]
    assert [c.status for c in answers] == ["fail"] * 3
    assert all("proves nothing about the path" in c.detail and "after 3 attempts" in c.detail for c in answers)
    assert [c.subject for c in answers] == MODELS


def test_checks_of_criteria_3_and_4_name_their_provider_even_when_skipped(session: Session) -> None:
    plan = ve.plan_probes(session, models=MODELS, probe_budget_usd=0)
    for step, criterion in ((ve.verify_unified, 3), (ve.verify_providers, 4)):
        checks = step(session, plan).checks
        assert [(c.criterion, c.status, c.subject) for c in checks] == [(criterion, "skip", m) for m in MODELS]


# --- the REST API beside compat (issue 13) ----------------------------------------------------------------------


def test_rest_parity_beside_compat_paid_by_byok(twin: Any, session: Session) -> None:
    store_the_keys(session)
    plan = ve.plan_probes(session, models=MODELS, overhead_samples=0)
    unified = ve.verify_unified(session, plan)
    rest = ve.verify_rest(session, plan, unified)
    assert [r.model for r in rest.rows] == ["google/gemini-2.5-flash", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"]
    assert [(c.criterion, c.status) for c in rest.checks] == [(None, "pass")] * 3, rest.checks
    assert all(c.check.startswith(PARITY_CHECK) and not counts_for_verdict(c) for c in rest.checks)
    for row in rest.rows:
        assert row.compat == "200 ok" and row.paid_by == "byok", row
        assert row.probe is not None and row.probe.tokens_out is not None and row.probe.tokens_out > 0
        log = session.client.get_log(session.settings.gateway_id, str(row.probe.log_id))
        assert row.cost_usd == log.cost and log.cost is not None and log.cost > 0
        assert log.path == "v1/chat/completions" and log.provider == row.probe.provider
    assert "paid by byok" in rest.checks[0].detail and "| `anthropic/claude-sonnet-4-5` | `200 ok` |" in (
        rest._repr_markdown_())
    record = json.loads((session.run_dir / ve.PROBES_FILE).read_text())
    assert len(record["steps"]["rest"]) == 3


def test_rest_probes_sent_early_are_read_later_not_sent_again(twin: Any, session: Session) -> None:
    store_the_keys(session)
    plan = ve.plan_probes(session, models=MODELS, overhead_samples=0)
    sent = ve.send_rest(session, plan)
    assert len(sent.probes) == 3 and all(p.ok and p.log_id for p in sent.probes)
    rest = ve.verify_rest(session, plan, sent=sent)
    assert rest.probes == sent.probes and [c.status for c in rest.checks] == ["pass"] * 3, rest.checks
    assert all(row.paid_by == "byok" and row.cost_usd for row in rest.rows), rest.rows


def test_rest_without_byok_or_credits_fails_its_note_but_not_the_verdict(twin: Any, session: Session) -> None:
    # No notebook 02: no stored key, and the twin's account has no Unified Billing credits.
    plan = ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=0)
    rest = ve.verify_rest(session, plan)
    check = rest.checks[0]
    assert check.status == "fail" and "402" in check.detail and "Unified Billing credits" in check.detail, check
    assert rest.rows[0].paid_by == "unknown" and rest.rows[0].compat == "-"
    passed = [Check(n, f"criterion {n}", "pass", subject=f"{p}/m") for n in (1, 2, 5, 6) for p in ("x",)]
    passed += [Check(n, f"criterion {n} {p}", "pass", subject=f"{p}/m") for n in (3, 4) for p in PROVIDERS]
    criteria = summarize_criteria([*passed, check])
    assert run_status(criteria, [*passed, check], target="twin") == "rehearsal-passed"
    twin.context.options.unified_billing_credits_usd = 1.0
    paid = ve.verify_rest(session, plan)
    assert paid.checks[0].status == "pass" and paid.rows[0].paid_by == "unified billing", paid.checks[0]


def test_rest_probes_over_budget_are_skipped(twin: Any, session: Session) -> None:
    plan = ve.plan_probes(session, models=MODELS, probe_budget_usd=0)
    rest = ve.verify_rest(session, plan)
    assert rest.probes == [] and [c.status for c in rest.checks] == ["skip"] * 3
    assert [c.subject for c in rest.checks] == MODELS


def test_a_log_that_never_appears_is_waited_for_then_unknown(session: Session) -> None:
    slept: list[float] = []
    missing = "01" + "Z" * 24
    assert rest_parity._log_facts(session, missing, sleep=slept.append) == (
        None, "unknown", f"log not listed after {sum(ve.REST_LOG_WAITS_S):g} s of waiting")
    assert slept == list(ve.REST_LOG_WAITS_S)
    slept.clear()
    assert rest_parity._log_facts(session, missing, wait=False, sleep=slept.append)[1:] == (
        "unknown", "log not listed after 0 s of waiting")
    assert slept == []


def test_probe_attempts_sets_the_tries_per_probe_and_must_be_at_least_one(twin: Any, session: Session) -> None:
    with pytest.raises(ConfigError, match="probe_attempts=0 is below 1"):
        ve.plan_probes(session, models=MODELS, probe_attempts=0)
    store_the_keys(session)
    twin.context.faults.set_spec("seed=1,provider.5xx=1")
    try:
        plan = ve.plan_probes(session, models=["openai/gpt-4o-mini"], overhead_samples=0, probe_attempts=2)
        providers = ve.verify_providers(session, plan)
    finally:
        twin.context.faults.set_spec("")
    assert {p.attempts for p in providers.probes} == {2}
    assert all("after 2 attempts" in c.detail for c in providers.checks if c.subject)
