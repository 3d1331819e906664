"""aigw.gateway end to end: probes through the twin's gateway data plane and straight to its providers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aigw._http import RetryPolicy
from aigw.cloudflare import CloudflareClient, RequestBudget
from aigw.config import PROVIDERS, Secret
from aigw.errors import AigwError, ConfigError
from aigw.gateway import DEFAULT_MODELS, GatewayProber, ProbeResult

GATEWAY = "gw-probe"
RUN_ID = "run-" + secrets.token_hex(4)


def wire_gateway(twin: Any) -> None:
    """A BYOK gateway: a store, one ``{gateway}_{slug}_default`` secret and provider config per provider."""
    with CloudflareClient(base_url=twin.server.api_base_url, api_token=Secret(twin.seed.api_token),
                          account_id=twin.account_id, budget=RequestBudget(10_000, 1.0)) as cf:
        cf.create_gateway(GATEWAY, {"collect_logs": True, "cache_ttl": 300})
        store = cf.create_store("probe-store")
        cf.update_gateway(GATEWAY, {"store_id": store.id})
        for slug in PROVIDERS:
            key = Secret(twin.seed.provider_keys[slug], slug)
            stored = cf.create_secret(store.id, f"{GATEWAY}_{slug}_default", key)
            cf.create_provider_config(GATEWAY, slug, "default", secret_id=stored.id)


@pytest.fixture(autouse=True)
def wired(twin: Any) -> None:
    twin.reset()
    wire_gateway(twin)


def make_prober(twin: Any, **options: Any) -> GatewayProber:
    return GatewayProber(
        gateway_base_url=twin.server.gateway_base_url,
        account_id=twin.account_id,
        gateway_id=GATEWAY,
        gateway_token=Secret(twin.seed.aig_token or twin.seed.api_token, "CF_AIG_TOKEN"),
        provider_keys={slug: Secret(v, slug) for slug, v in twin.seed.provider_keys.items()},
        provider_base_url=twin.server.provider_base_url,
        run_id=RUN_ID,
        retry=options.pop("retry", RetryPolicy(attempts=3, base_s=0.01, max_s=0.05, max_retry_after_s=0.1)),
        **options,
    )


@pytest.fixture
def prober(twin: Any) -> Iterator[GatewayProber]:
    with make_prober(twin) as p:
        yield p


def test_urls(prober: GatewayProber, twin: Any) -> None:
    base = f"{twin.server.gateway_base_url}/{twin.account_id}/{GATEWAY}"
    assert prober.gateway_url() == base and prober.gateway_url("openai") == base + "/openai"
    assert prober.direct_url("anthropic", "m") == f"{twin.server.provider_base_url}/anthropic/v1/messages"
    real = GatewayProber(account_id=twin.account_id, gateway_id=GATEWAY, gateway_token=None)
    assert real.direct_url("google-ai-studio", "gemini-2.0-flash") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert real.gateway_url("openai").startswith("https://gateway.ai.cloudflare.com/v1/")
    real.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_probe_through_byok_is_ok_and_logged(prober: GatewayProber, twin: Any, provider: str) -> None:
    result = prober.probe_provider(provider, DEFAULT_MODELS[provider], "Say ok", max_tokens=8,
                                   metadata={"case": provider})
    assert result.ok and result.healthy and result.status == 200, result
    assert result.log_id and result.attempts == 1 and result.excerpt
    assert result.latency_ms > 0 and result.gateway_error_code is None
    with CloudflareClient(base_url=twin.server.api_base_url, api_token=Secret(twin.seed.api_token),
                          account_id=twin.account_id) as cf:
        log = cf.get_log(GATEWAY, result.log_id)
        assert log.provider == provider and log.success is True
        assert log.metadata == {"aigw_run_id": RUN_ID, "aigw_check": "provider", "case": provider}
        stored = cf.get_log_request(GATEWAY, result.log_id)
        assert "Say ok" in json.dumps(stored)
        tagged = cf.fetch_logs(GATEWAY, filters=[{"key": "metadata.value", "operator": "eq", "value": [RUN_ID]}])
        assert tagged["id"] == [result.log_id]


def test_unified_probe(prober: GatewayProber) -> None:
    result = prober.probe_unified("anthropic/claude-3-5-haiku-latest", max_tokens=4)
    assert result.ok and result.provider == "anthropic" and result.model == "claude-3-5-haiku-latest", result


def test_repeated_probe_is_a_cache_hit(prober: GatewayProber) -> None:
    first = prober.probe_provider("openai", "gpt-4o-mini", "cache me", max_tokens=4)
    second = prober.probe_provider("openai", "gpt-4o-mini", "cache me", max_tokens=4)
    assert (first.cache_status, second.cache_status) == ("MISS", "HIT")


def test_gateway_lock(prober: GatewayProber) -> None:
    anonymous = prober.probe_without_gateway_token("openai")
    assert anonymous.status == 401 and anonymous.gateway_error_code == 2009
    assert anonymous.rejected_by_gateway and not anonymous.healthy and not anonymous.ok
    wrong = prober.probe_with_token(Secret(secrets.token_urlsafe(30)), "anthropic")
    assert wrong.rejected_by_gateway and not wrong.healthy


def test_provider_error_is_a_valid_provider_error(prober: GatewayProber) -> None:
    result = prober.probe_provider("openai", "no-such-model", max_tokens=4)
    assert result.outcome == "provider_error" and result.status == 404, result
    assert result.healthy and not result.ok and result.provider_error_type


def test_direct_probe_and_missing_key(prober: GatewayProber, twin: Any) -> None:
    direct = prober.probe_direct("google-ai-studio", "gemini-2.0-flash", max_tokens=4)
    assert direct.ok and direct.log_id is None, direct
    with GatewayProber(gateway_base_url=twin.server.gateway_base_url, account_id=twin.account_id,
                       gateway_id=GATEWAY, gateway_token=None,
                       provider_base_url=twin.server.provider_base_url) as keyless, pytest.raises(ConfigError):
        keyless.probe_direct("openai", "gpt-4o-mini")


def test_metadata_limit(prober: GatewayProber) -> None:
    with pytest.raises(ConfigError, match="at most 5"):
        prober.probe_provider("openai", "gpt-4o-mini", metadata={f"k{i}": i for i in range(4)})


def test_transient_upstream_failures_are_retried(twin: Any) -> None:
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers) as admin:
        admin.put("/faults", json="seed=4,openai.5xx=0.5").raise_for_status()
        try:
            with make_prober(twin, retry=RetryPolicy(attempts=6, base_s=0.01, max_s=0.02)) as p:
                results = [p.probe_provider("openai", "gpt-4o-mini", f"retry {i}", max_tokens=2) for i in range(6)]
        finally:
            admin.delete("/faults").raise_for_status()
    assert all(r.ok for r in results), [str(r) for r in results]
    assert max(r.attempts for r in results) > 1


def test_measure_overhead_structure_and_sign(twin: Any) -> None:
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers) as admin:
        admin.put("/config", json={"gateway_overhead_ms": 40}).raise_for_status()
    with make_prober(twin) as p:
        result = p.measure_overhead("openai", "gpt-4o-mini", n=6, warmup=1)
    assert result.n == 6 and result.failures == 0 and result.warmup == 1
    assert len(result.gateway_ms) == len(result.direct_ms) == len(result.overhead_ms) == 6
    assert [round(g - d, 6) for g, d in zip(result.gateway_ms, result.direct_ms, strict=True)] == [
        round(o, 6) for o in result.overhead_ms
    ]
    assert result.median_ms > 0 and result.p95_ms >= result.median_ms
    assert set(result.as_dict()) >= {"median_ms", "p95_ms", "n"}


def test_no_key_or_token_in_results_or_reprs(twin: Any) -> None:
    planted = [twin.seed.api_token, *(twin.seed.provider_keys.values())]
    if twin.seed.aig_token:
        planted.append(twin.seed.aig_token)
    wrong = Secret(secrets.token_urlsafe(30))
    texts: list[str] = []
    with make_prober(twin) as p:
        results: list[ProbeResult] = [
            p.probe_provider("anthropic", "claude-3-5-haiku-latest", use_provider_key=True),
            p.probe_direct("openai", "gpt-4o-mini"),
            p.probe_with_token(wrong),
            p.probe_without_gateway_token(),
        ]
        texts.append(repr(p))
        try:
            p.measure_overhead("openai", "no-such-model", n=1, warmup=0)
        except AigwError as err:
            texts.append(str(err))
    for result in results:
        texts += [repr(result), str(result), json.dumps(result.as_dict())]
    for text in texts:
        for value in [*planted, wrong.reveal()]:
            assert value not in text
