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


def make_token(admin: httpx.Client, account_id: str, permissions: list[str], **extra: str) -> dict[str, Any]:
    response = admin.post("/tokens", json={"account_id": account_id, "permissions": permissions, **extra})
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_account_tokens_verify_on_the_account_endpoint_only(twin: TwinHandle, admin: httpx.Client) -> None:
    # Cloudflare: /user/tokens/verify is for user tokens, /accounts/{a}/tokens/verify for account tokens;
    # an account token on the user endpoint is 401 (cloudflare-docs #29486). The seed's tokens are account tokens.
    base = twin.server.api_base_url
    account = httpx.get(f"{base}/accounts/{twin.account_id}/tokens/verify", headers=twin.api_headers)
    assert account.status_code == 200, account.text
    assert account.json()["result"]["status"] == "active"
    assert len(account.json()["result"]["id"]) == 32
    user = httpx.get(f"{base}/user/tokens/verify", headers=twin.api_headers)
    assert user.status_code == 401
    assert user.json()["errors"] == [{"code": 1000, "message": "Invalid API Token"}]
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic abc"}):
        bad = httpx.get(f"{base}/user/tokens/verify", headers=headers)
        assert bad.status_code == 401
        assert bad.json()["errors"] == [{"code": 1000, "message": "Invalid API Token"}]
    unknown = httpx.get(f"{base}/accounts/{'0' * 32}/tokens/verify", headers=twin.api_headers)
    assert (unknown.status_code, [e["code"] for e in unknown.json()["errors"]]) == (400, [7003, 7000])
    make_token(admin, "f" * 32, ["ai_gateway:read"])  # makes the account "f" * 32
    other = httpx.get(f"{base}/accounts/{'f' * 32}/tokens/verify", headers=twin.api_headers)
    assert (other.status_code, other.json()["errors"][0]["code"]) == (401, 1000)


def test_user_tokens_verify_on_the_user_endpoint_only(twin: TwinHandle, admin: httpx.Client) -> None:
    token = make_token(admin, twin.account_id, ["ai_gateway:read"], kind="user", user="alice")
    base = twin.server.api_base_url
    user = httpx.get(f"{base}/user/tokens/verify", headers=bearer(token["value"]))
    assert user.status_code == 200, user.text
    assert user.json()["result"]["id"] == token["id"]
    # ASSUMPTION of the twin: a user token is not one of the account's tokens.
    account = httpx.get(f"{base}/accounts/{twin.account_id}/tokens/verify", headers=bearer(token["value"]))
    assert (account.status_code, account.json()["errors"][0]["code"]) == (401, 1000)
    # It may still act on the account it is granted.
    gateways = httpx.get(f"{base}/accounts/{twin.account_id}/ai-gateway/gateways", headers=bearer(token["value"]))
    assert gateways.status_code == 200


def test_seeded_api_token_holds_what_the_example_says_and_not_run(twin: TwinHandle, admin: httpx.Client) -> None:
    # .dev.vars.example: CLOUDFLARE_API_TOKEN = AI Gateway Read + Write, Secrets Store Write; CF_AIG_TOKEN = Run.
    base = f"{twin.server.api_base_url}/accounts/{twin.account_id}"
    assert httpx.post(f"{base}/ai-gateway/gateways", json=GATEWAY, headers=twin.api_headers).status_code == 200
    assert httpx.post(f"{base}/secrets_store/stores", json={"name": "s"}, headers=twin.api_headers).status_code == 200
    url = f"{twin.server.gateway_base_url}/{twin.account_id}/gw/openai/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    key = {"Authorization": f"Bearer {twin.seed.provider_keys['openai']}"}
    refused = httpx.post(url, json=body, headers={**key, "cf-aig-authorization": f"Bearer {twin.seed.api_token}"})
    assert refused.status_code == 401
    assert refused.json()["error"][0]["code"] == 2009
    served = httpx.post(url, json=body, headers={**key, **twin.aig_headers})
    assert served.status_code == 200, served.text


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


def test_unknown_account_is_7003(twin: TwinHandle, admin: httpx.Client) -> None:
    # Cloudflare answers an account id that names no account with 400, 7003 then 7000 (cloudflare-go#118).
    for path in ("ai-gateway/gateways", "secrets_store/stores", "ai-gateway/gateways/gw"):
        response = httpx.get(f"{twin.server.api_base_url}/accounts/{'e' * 32}/{path}", headers=twin.api_headers)
        assert response.status_code == 400, response.text
        codes = [e["code"] for e in response.json()["errors"]]
        assert codes == [7003, 7000]
        assert "perhaps your object identifier is invalid" in response.json()["errors"][0]["message"]


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


def _ratelimit(response: httpx.Response) -> tuple[int, int]:
    """``(r, t)`` of ``Ratelimit: "default";r=<remaining>;t=<reset>``."""
    name, *params = response.headers["Ratelimit"].split(";")
    assert name == '"default"'
    values = dict(p.split("=") for p in params)
    return int(values["r"]), int(values["t"])


def test_budget_answers_429_with_the_ietf_headers(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.put("/config", json={"api_budget_requests": 3, "api_budget_window_s": 300}).status_code == 200
    url = f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways"
    remaining = []
    for _ in range(3):
        response = httpx.get(url, headers=twin.api_headers)
        assert response.status_code == 200
        assert response.headers["Ratelimit-Policy"] == '"default";q=3;w=300'
        assert "retry-after" not in response.headers  # only on a 429
        assert "x-ratelimit-limit" not in response.headers
        r, t = _ratelimit(response)
        assert 1 <= t <= 300
        remaining.append(r)
    assert remaining == [2, 1, 0]
    limited = httpx.get(url, headers=twin.api_headers)
    assert limited.status_code == 429
    r, t = _ratelimit(limited)
    assert r == 0
    assert int(limited.headers["Retry-After"]) == t
    error = limited.json()["errors"][0]
    assert error["code"] == 10100
    assert error["message"].startswith("More than 3 requests per 300 seconds reached.")
    # The budget is the owner's: another token of the same account is blocked too, every call is.
    same_owner = make_token(admin, twin.account_id, ["ai_gateway:read"])
    assert httpx.get(url, headers=bearer(same_owner["value"])).status_code == 429
    verify = httpx.get(f"{twin.server.api_base_url}/accounts/{twin.account_id}/tokens/verify", headers=twin.api_headers)
    assert verify.status_code == 429
    # A user's token is another owner's budget.
    user = make_token(admin, twin.account_id, ["ai_gateway:read"], kind="user", user="bob")
    assert httpx.get(url, headers=bearer(user["value"])).status_code == 200


def test_budget_blocks_until_the_fixed_window_ends() -> None:
    from cftwin.auth import ApiBudget

    now = [100.0]
    budget = ApiBudget(clock=lambda: now[0])
    assert [budget.charge("account:a", 2, 300).allowed for _ in range(3)] == [True, True, False]
    now[0] = 399.0  # later requests do not move the window, and stay refused until it ends
    blocked = budget.charge("account:a", 2, 300)
    assert (blocked.allowed, blocked.remaining, blocked.reset_s) == (False, 0, 1)
    assert budget.charge("user:b", 2, 300).allowed  # another owner has its own
    now[0] = 400.0
    fresh = budget.charge("account:a", 2, 300)
    assert (fresh.allowed, fresh.remaining, fresh.reset_s) == (True, 1, 300)


def test_admin_api_validates_and_resets(twin: TwinHandle, admin: httpx.Client) -> None:
    assert admin.get("/health").json() == {"status": "ok"}
    assert admin.post("/tokens", json={"account_id": twin.account_id, "permissions": ["root"]}).status_code == 400
    assert admin.put("/config", json={"no_such_option": 1}).status_code == 400
    assert admin.put("/config", json={"gateway_limit": "many"}).status_code == 400
    assert admin.post("/accounts", json={"account_id": "a" * 32, "gateway_limit": 1}).status_code == 201
    assert admin.post("/seed", json={"account_id": "short", "api_token": "t"}).status_code == 400
    url = f"{twin.server.api_base_url}/accounts/{twin.account_id}/tokens/verify"
    bad_kind = {"account_id": twin.account_id, "permissions": [], "kind": "x"}
    assert admin.post("/tokens", json=bad_kind).status_code == 400
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
    verify = f"/accounts/{twin.account_id}/tokens/verify"
    with httpx.Client(base_url=twin.server.api_base_url, headers=twin.api_headers) as api:

        def statuses() -> list[int]:
            return [api.get(verify).status_code for _ in range(30)]

        assert admin.put("/faults", json=spec).status_code == 200
        first = statuses()
        assert admin.put("/faults", json={"spec": spec}).status_code == 200
        assert statuses() == first
        assert set(first) <= {200, 429, 500, 502, 503}
        assert 200 in first and 429 in first and any(s >= 500 for s in first)
        limited = next(r for r in (api.get(verify) for _ in range(50)) if r.status_code == 429)
        assert limited.headers["Retry-After"] == "2"
        assert limited.headers["Ratelimit"] == '"default";r=0;t=2'
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


def test_a_fresh_budget_window_resets_in_exactly_its_length_whatever_the_clock() -> None:
    # (start + window) - now rounds above the window for some clock values: the header said 301 of 300 s.
    from cftwin.auth import ApiBudget

    for tick in range(1, 2000):
        now = 212.0 + tick * 0.001  # monotonic-clock values; many of them rounded to 301 before
        state = ApiBudget(clock=lambda now=now: now).charge("owner", 3, 300)
        assert state.reset_s == 300, (now, state)
