"""Tokens, permissions, the API budget, the admin API and control-plane faults, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cftwin.faults import FaultInjector, FaultSpec, parse_fault_spec

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

GATEWAY = {"id": "gw", "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
           "rate_limiting_interval": 0, "rate_limiting_limit": 0}


@pytest.fixture
def admin(twin: TwinHandle) -> Iterator[httpx.Client]:
    twin.reset()
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers) as client:
        yield client
    twin.reset()


def make_token(admin: httpx.Client, account_id: str, permissions: list[str]) -> dict[str, Any]:
    response = admin.post("/tokens", json={"account_id": account_id, "permissions": permissions})
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_verify_user_and_account_tokens(twin: TwinHandle, admin: httpx.Client) -> None:
    base = twin.server.api_base_url
    ok = httpx.get(f"{base}/user/tokens/verify", headers=twin.api_headers)
    assert ok.status_code == 200
    assert ok.json()["result"]["status"] == "active"
    assert len(ok.json()["result"]["id"]) == 32
    account = httpx.get(f"{base}/accounts/{twin.account_id}/tokens/verify", headers=twin.api_headers)
    assert account.json()["result"]["id"] == ok.json()["result"]["id"]
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic abc"}):
        bad = httpx.get(f"{base}/user/tokens/verify", headers=headers)
        assert bad.status_code == 401
        assert bad.json()["errors"] == [{"code": 1000, "message": "Invalid API Token"}]
    other = httpx.get(f"{base}/accounts/{'0' * 32}/tokens/verify", headers=twin.api_headers)
    assert other.status_code == 401


def test_every_v4_path_needs_a_token(twin: TwinHandle, admin: httpx.Client) -> None:
    base = twin.server.api_base_url
    for path in (f"/accounts/{twin.account_id}/ai-gateway/gateways", f"/accounts/{twin.account_id}/nothing",
                 f"/accounts/{twin.account_id}/secrets_store/stores"):
        response = httpx.get(base + path, headers=bearer("wrong"))
        assert response.status_code == 401
        assert response.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]
    unknown = httpx.get(f"{base}/accounts/{twin.account_id}/nothing", headers=twin.api_headers)
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == 7003


def test_read_only_token_cannot_write(twin: TwinHandle, admin: httpx.Client) -> None:
    token = make_token(admin, twin.account_id, ["ai_gateway:read", "secrets_store:read"])
    base = f"{twin.server.api_base_url}/accounts/{twin.account_id}"
    with httpx.Client(base_url=base, headers=bearer(token["value"])) as client:
        assert client.get("/ai-gateway/gateways").status_code == 200
        assert client.get("/secrets_store/stores").status_code == 200
        denied = client.post("/ai-gateway/gateways", json=GATEWAY)
        assert denied.status_code == 403
        assert denied.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]
        assert client.post("/secrets_store/stores", json={"name": "s"}).status_code == 403
    # A write grant satisfies reads; a run-only token reads nothing.
    writer = make_token(admin, twin.account_id, ["ai_gateway:write"])
    assert httpx.get(f"{base}/ai-gateway/gateways", headers=bearer(writer["value"])).status_code == 200
    runner = httpx.get(f"{base}/ai-gateway/gateways", headers=bearer(twin.seed.aig_token or ""))
    assert runner.status_code == 403


def test_provider_config_writes_need_secrets_store_write(twin: TwinHandle, admin: httpx.Client) -> None:
    base = f"{twin.server.api_base_url}/accounts/{twin.account_id}"
    assert httpx.post(f"{base}/ai-gateway/gateways", json=GATEWAY, headers=twin.api_headers).status_code == 200
    token = make_token(admin, twin.account_id, ["ai_gateway:read", "ai_gateway:write"])
    response = httpx.post(f"{base}/ai-gateway/gateways/gw/provider_configs", headers=bearer(token["value"]),
                          json={"provider_slug": "openai", "alias": "default", "default_config": True,
                                "secret": "k" * 20})
    assert response.status_code == 403


def test_token_of_another_account_is_refused(twin: TwinHandle, admin: httpx.Client) -> None:
    other_account = "f" * 32
    token = make_token(admin, other_account, ["ai_gateway:read", "ai_gateway:write"])
    response = httpx.get(f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways",
                         headers=bearer(token["value"]))
    assert response.status_code == 403


def test_revoked_token_is_refused(twin: TwinHandle, admin: httpx.Client) -> None:
    token = make_token(admin, twin.account_id, ["ai_gateway:read"])
    url = f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways"
    assert httpx.get(url, headers=bearer(token["value"])).status_code == 200
    assert admin.delete(f"/tokens/{token['id']}").status_code == 200
    assert httpx.get(url, headers=bearer(token["value"])).status_code == 401
    assert admin.delete(f"/tokens/{token['id']}").status_code == 404


def test_budget_answers_429_with_headers(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.put("/config", json={"api_budget_requests": 3, "api_budget_window_s": 300}).status_code == 200
    url = f"{twin.server.api_base_url}/user/tokens/verify"
    remaining = []
    for _ in range(3):
        response = httpx.get(url, headers=twin.api_headers)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    limited = httpx.get(url, headers=twin.api_headers)
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    error = limited.json()["errors"][0]
    assert error["code"] == 10100
    assert error["message"].startswith("More than 3 requests per 300 seconds reached.")
    # The budget is per token: another token still has its own.
    other = make_token(admin, twin.account_id, ["ai_gateway:read"])
    assert httpx.get(url, headers=bearer(other["value"])).status_code == 200


def test_admin_api_validates_and_resets(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.get("/health").json() == {"status": "ok"}
    assert admin.post("/tokens", json={"account_id": twin.account_id, "permissions": ["root"]}).status_code == 400
    assert admin.put("/config", json={"no_such_option": 1}).status_code == 400
    assert admin.put("/config", json={"gateway_limit": "many"}).status_code == 400
    assert admin.post("/accounts", json={"account_id": "a" * 32, "gateway_limit": 1}).status_code == 201
    assert admin.post("/seed", json={"account_id": "short", "api_token": "t"}).status_code == 400
    url = f"{twin.server.api_base_url}/user/tokens/verify"
    assert admin.post("/reset").status_code == 200
    assert httpx.get(url, headers=twin.api_headers).status_code == 401
    assert admin.post("/seed", json=twin.seed.as_json()).status_code == 200
    assert httpx.get(url, headers=twin.api_headers).status_code == 200


def test_account_gateway_limit_overrides_the_default(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.post("/accounts", json={"account_id": twin.account_id, "gateway_limit": 1}).status_code == 201
    base = f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways"
    assert httpx.post(base, json=GATEWAY, headers=twin.api_headers).status_code == 200
    assert httpx.post(base, json={**GATEWAY, "id": "gw-2"}, headers=twin.api_headers).status_code == 400


# --- faults -----------------------------------------------------------------------------------


def test_fault_spec_grammar() -> None:
    spec = parse_fault_spec(
        "seed=7,control.5xx=0.2,control.429=0.1,control.retry_after=1,control.hang_after_apply=0.0,"
        "provider.5xx=0.2,provider.429=0.0,provider.slow=0.05,provider.slow_ms=30000,openai.5xx=0.5"
    )
    assert spec.seed == 7
    assert (spec.control_5xx, spec.control_429, spec.control_retry_after) == (0.2, 0.1, 1)
    assert spec.rates_for("anthropic").p_5xx == 0.2
    assert spec.rates_for("openai").p_5xx == 0.5
    assert spec.rates_for("openai").p_slow == 0.05  # inherits the provider-wide rates
    assert parse_fault_spec(spec.to_string()) == spec
    assert parse_fault_spec({"seed": 7, "control": {"5xx": 0.2}}).control_5xx == 0.2
    assert parse_fault_spec("") == FaultSpec()
    for bad in ("seed=x", "control.5xx=2", "control.teapot=0.1", "nonsense", "control.5xx=0.8,control.429=0.8"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


def test_fault_decisions_are_deterministic_per_seed() -> None:
    def run(seed: int) -> list[tuple[str, int]]:
        injector = FaultInjector(f"seed={seed},control.5xx=0.3,control.429=0.2")
        decisions = [injector.control_decision("GET", "/x") for _ in range(60)]
        return [(d.kind, d.status) for d in decisions]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    kinds = {kind for kind, _ in first}
    assert kinds == {"none", "error", "rate_limited"}
    assert {status for kind, status in first if kind == "error"} <= {500, 502, 503}
    provider = FaultInjector("seed=1,openai.slow=1,openai.slow_ms=250")
    assert provider.provider_decision("openai").delay_ms == 250
    assert provider.provider_decision("anthropic").is_none


def test_control_faults_over_http(twin: TwinHandle, admin: httpx.Client) -> None:
    spec = "seed=11,control.5xx=0.4,control.429=0.2,control.retry_after=2"
    with httpx.Client(base_url=twin.server.api_base_url, headers=twin.api_headers) as api:

        def statuses() -> list[int]:
            return [api.get("/user/tokens/verify").status_code for _ in range(30)]

        assert admin.put("/faults", json=spec).status_code == 200
        first = statuses()
        assert admin.put("/faults", json={"spec": spec}).status_code == 200
        assert statuses() == first
        assert set(first) <= {200, 429, 500, 502, 503}
        assert 200 in first and 429 in first and any(s >= 500 for s in first)
        limited = next(r for r in (api.get("/user/tokens/verify") for _ in range(50)) if r.status_code == 429)
        assert limited.headers["Retry-After"] == "2"
        assert admin.put("/faults", json="control.5xx=7").status_code == 400
        assert admin.delete("/faults").status_code == 200
        assert set(statuses()) == {200}


def test_hang_after_apply_commits_the_write(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.put("/faults", json="seed=1,control.hang_after_apply=1,control.hang_s=30").status_code == 200
    base = f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(base, json=GATEWAY, headers=twin.api_headers, timeout=httpx.Timeout(5.0, read=0.5))
    admin.delete("/faults")
    fetched = httpx.get(f"{base}/gw", headers=twin.api_headers)
    assert fetched.status_code == 200
    assert fetched.json()["result"]["id"] == "gw"
