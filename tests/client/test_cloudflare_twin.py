"""aigw.cloudflare end to end: the real client against the twin over loopback HTTP, and against the official SDK.

One twin per module (the ``twin`` fixture); each test starts from ``twin.reset()``.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Iterator
from typing import Any

import cloudflare
import httpx
import pytest
from aigw.cloudflare import CloudflareClient, RequestBudget, RetryPolicy
from aigw.config import Secret
from aigw.errors import (
    AigwError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    ServerError,
    ValidationError,
)
from openapi_schema import SchemaCheckingTransport

FAST = RetryPolicy(attempts=4, base_s=0.01, max_s=0.05, max_retry_after_s=2.0)


@pytest.fixture(autouse=True)
def fresh(twin: Any) -> None:
    twin.reset()


@pytest.fixture
def admin(twin: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers, timeout=30) as client:
        yield client


def make_client(twin: Any, token: str | None = None, **options: Any) -> CloudflareClient:
    options.setdefault("retry", FAST)
    options.setdefault("budget", RequestBudget(10_000, 1.0))
    # Every answer of an operation in Cloudflare's OpenAPI is checked against its schema (tests/openapi_schema.py).
    options.setdefault("transport", SchemaCheckingTransport())
    return CloudflareClient(
        base_url=twin.server.api_base_url,
        api_token=Secret(token or twin.seed.api_token, "CLOUDFLARE_API_TOKEN"),
        account_id=twin.account_id,
        **options,
    )


@pytest.fixture
def cf(twin: Any) -> Iterator[CloudflareClient]:
    with make_client(twin) as client:
        yield client


def new_token(admin: httpx.Client, account_id: str, permissions: list[str]) -> str:
    answer = admin.post("/tokens", json={"account_id": account_id, "permissions": permissions})
    answer.raise_for_status()
    value: str = answer.json()["value"]
    return value


def test_verify_token_finds_account_and_user_tokens(cf: CloudflareClient, twin: Any, admin: httpx.Client) -> None:
    # The seeded API token is account-owned: the twin (as Cloudflare) answers it 401 on /user/tokens/verify,
    # and the client's fallback to the account's endpoint is what verifies it.
    status = cf.verify_token()
    assert (status.active, status.scope) == (True, "account")
    answer = admin.post("/tokens", json={"account_id": twin.account_id, "permissions": ["ai_gateway:read"],
                                         "kind": "user"})
    answer.raise_for_status()
    with make_client(twin, answer.json()["value"]) as user:
        assert (user.verify_token().scope, user.verify_token().id) == ("user", answer.json()["id"])


def test_a_full_store_is_a_quota_error_and_a_duplicate_secret_a_conflict(cf: CloudflareClient) -> None:
    store = cf.create_store("first")
    with pytest.raises(QuotaExceededError, match=r"code 1003: maximum_stores_exceeded.*use the existing store"):
        cf.create_store("second")
    key = Secret(secrets.token_urlsafe(20))
    cf.create_secret(store.id, "dup_secret", key)
    with pytest.raises(ConflictError, match="code 1003: secret_name_already_exists"):
        cf.create_secret(store.id, "dup_secret", key)


def test_unknown_account_is_not_found(twin: Any) -> None:
    with CloudflareClient(base_url=twin.server.api_base_url, account_id="e" * 32, retry=FAST,
                          api_token=Secret(twin.seed.api_token), budget=RequestBudget(100, 1.0)) as stranger:
        with pytest.raises(NotFoundError, match="code 7003: Could not route to"):
            stranger.list_gateways()
        with pytest.raises(NotFoundError, match=r"account e{32} does not exist: .*Check CLOUDFLARE_ACCOUNT_ID"):
            stranger.verify_token()


def test_gateway_lifecycle(cf: CloudflareClient, twin: Any) -> None:
    assert cf.verify_token().active
    assert cf.find_gateway("gw-life") is None
    created = cf.create_gateway("gw-life", {"cache_ttl": 120, "rate_limiting_limit": 10, "rate_limiting_interval": 60})
    assert (created.id, created.cache_ttl, created.rate_limiting_limit, created.authentication) == (
        "gw-life", 120, 10, True,
    )
    assert cf.get_gateway("gw-life") == created
    assert [g.id for g in cf.list_gateways()] == ["gw-life"]
    updated = cf.update_gateway("gw-life", {"collect_logs": False})
    assert updated.collect_logs is False and updated.cache_ttl == 120 and updated.rate_limiting_limit == 10
    assert cf.gateway_url("gw-life", "openai").endswith(f"/{twin.account_id}/gw-life/openai")
    cf.delete_gateway("gw-life")
    assert cf.find_gateway("gw-life") is None
    with pytest.raises(NotFoundError, match="code 7002"):
        cf.delete_gateway("gw-life")


def test_byok_wiring_lifecycle(cf: CloudflareClient) -> None:
    key = Secret(secrets.token_urlsafe(32), "OPENAI_API_KEY")
    cf.create_gateway("gw-keys")
    store = cf.create_store("aigw-store")
    assert cf.find_store("aigw-store") == store and cf.get_store(store.id) == store
    secret = cf.create_secret(store.id, "gw-keys_openai_default", key, comment="runbook")
    assert secret.scopes == ("ai_gateway",) and secret.comment == "runbook"
    assert cf.find_secret(store.id, "gw-keys_openai_default") == secret
    assert cf.get_secret(store.id, secret.id).name == secret.name
    rotated = cf.update_secret(store.id, secret.id, value=Secret(secrets.token_urlsafe(32)), comment="rotated")
    assert rotated.comment == "rotated"
    assert cf.update_gateway("gw-keys", {"store_id": store.id}).store_id == store.id
    config = cf.create_provider_config("gw-keys", "openai", "default", secret_id=secret.id)
    assert (config.provider_slug, config.alias, config.secret_id) == ("openai", "default", secret.id)
    assert cf.list_provider_configs("gw-keys") == [config]
    cf.update_provider_config("gw-keys", config.id, Secret(secrets.token_urlsafe(32)))
    with pytest.raises(ConflictError):
        cf.create_provider_config("gw-keys", "openai", "default", secret_id=secret.id)
    cf.delete_provider_config("gw-keys", config.id)
    assert cf.list_provider_configs("gw-keys") == []
    with pytest.raises(ConflictError):
        cf.delete_store(store.id)  # it still holds the secret
    cf.delete_secret(store.id, secret.id)
    assert cf.list_secrets(store.id) == []
    cf.delete_store(store.id)
    assert cf.find_store("aigw-store") is None


def test_api_errors_map_to_the_hierarchy(cf: CloudflareClient, twin: Any, admin: httpx.Client) -> None:
    with pytest.raises(ValidationError) as caught:
        cf.create_gateway("Not A Valid Id")
    assert "body" in caught.value.errors[0].path and 7001 in caught.value.codes
    cf.create_gateway("gw-dup")
    with pytest.raises(ConflictError):
        cf.create_gateway("gw-dup")
    with pytest.raises(NotFoundError):
        cf.get_gateway("gw-missing")
    reader = new_token(admin, twin.account_id, ["ai_gateway:read"])
    with make_client(twin, reader) as read_only:
        assert [g.id for g in read_only.list_gateways()] == ["gw-dup"]
        with pytest.raises(PermissionDeniedError, match="HTTP 403"):
            read_only.create_gateway("gw-other")
    with make_client(twin, secrets.token_urlsafe(30)) as stranger, pytest.raises(AuthenticationError):
        stranger.list_gateways()


def test_gateway_quota(twin: Any) -> None:
    twin.reset(gateway_limit=1)
    with make_client(twin) as cf:
        cf.create_gateway("gw-one")
        with pytest.raises(QuotaExceededError):
            cf.create_gateway("gw-two")


def _first_seed_where(outcomes: list[bool], rate: float) -> int:
    """A fault seed whose first draws hang (True) or pass (False), following faults.py's documented
    draw: one random() per request, then a choice() of the 5xx status."""
    for seed in range(10_000):
        rng = random.Random(seed)
        draws = []
        for _ in outcomes:
            draws.append(rng.random() < rate)
            rng.choice((500, 502, 503))
        if draws == outcomes:
            return seed
    raise AssertionError("no seed found")


def test_429_with_retry_after_then_success(twin: Any, admin: httpx.Client) -> None:
    waits: list[float] = []
    # The wait itself is not what is tested; what the client waited for is.
    with make_client(twin, sleep=waits.append) as cf:
        cf.create_gateway("gw-429")
        seed = _first_seed_where([True, False], 0.5)
        admin.put("/faults", json=f"seed={seed},control.429=0.5,control.retry_after=1").raise_for_status()
        assert cf.get_gateway("gw-429").id == "gw-429"
        admin.delete("/faults").raise_for_status()
    snap = cf.stats.snapshot()
    assert snap["retries_by_reason"] == {"429": 1} and snap["requests"] == 3
    assert len(waits) == 1 and waits[0] >= 1.0  # Retry-After: 1 honoured over the 10 ms backoff


def test_5xx_faults_are_retried_and_creates_stay_single(cf: CloudflareClient, admin: httpx.Client) -> None:
    admin.put("/faults", json="seed=11,control.5xx=0.3").raise_for_status()
    for i in range(8):
        cf.create_gateway(f"gw-{i}")
    assert sorted(g.id for g in cf.list_gateways()) == [f"gw-{i}" for i in range(8)]
    snap = cf.stats.snapshot()
    assert snap["retries_by_reason"].get("5xx", 0) >= 1
    assert snap["recoveries"] >= 1  # a POST that got a 5xx was checked before it was repeated


def test_create_whose_answer_hangs_is_recovered_not_repeated(twin: Any, admin: httpx.Client) -> None:
    seed = _first_seed_where([True, False], 0.5)
    admin.put("/faults", json=f"seed={seed},control.hang_after_apply=0.5,control.hang_s=2").raise_for_status()
    with make_client(twin, timeout=0.5) as cf:
        gateway = cf.create_gateway("gw-hang")
        assert gateway.id == "gw-hang"
        snap = cf.stats.snapshot()
    admin.delete("/faults").raise_for_status()
    assert snap["retries_by_reason"] == {"timeout": 1}
    assert snap["recoveries_by_outcome"] == {"took_effect": 1}
    with make_client(twin) as check:
        assert [g.id for g in check.list_gateways()] == ["gw-hang"]


def test_deadline_bounds_retries(twin: Any, admin: httpx.Client) -> None:
    admin.put("/faults", json="seed=1,control.5xx=1").raise_for_status()
    with make_client(twin, deadline=1.0, retry=RetryPolicy(attempts=50, base_s=0.2, max_s=0.4)) as cf:
        with pytest.raises(ServerError, match="deadline"):
            cf.list_gateways()
        assert cf.stats.requests >= 2


def test_client_budget_keeps_under_the_twin_budget(twin: Any) -> None:
    twin.reset(api_budget_requests=15, api_budget_window_s=1.0)
    with make_client(twin, budget=RequestBudget(15, 1.0), retry=RetryPolicy(attempts=1)) as cf:
        for _ in range(40):
            cf.find_gateway("gw-x")
        snap = cf.stats.snapshot()
    assert snap["requests"] == 40 and snap["retries"] == 0  # attempts=1: a single 429 would have raised
    assert snap["budget_waits"] >= 1


def test_budget_adapts_to_the_twins_headers(twin: Any) -> None:
    twin.reset(api_budget_requests=10, api_budget_window_s=1.0)
    budget = RequestBudget(1000, 1.0)  # the twin says 10 per second in Ratelimit-Policy (q=10;w=1)
    with make_client(twin, budget=budget, retry=RetryPolicy(attempts=1)) as cf:
        for _ in range(25):
            cf.find_gateway("gw-x")  # attempts=1: a single 429 would raise
        assert cf.stats.requests == 25
    assert budget.limit == 1000 and budget.capacity == 10


def seed_logs(admin: httpx.Client, account_id: str, gateway_id: str, count: int) -> dict[str, Any]:
    answer = admin.post("/logs/seed", json={"account_id": account_id, "gateway_id": gateway_id, "count": count,
                                            "seed": 5})
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def test_fetch_logs_matches_the_official_sdk(cf: CloudflareClient, twin: Any, admin: httpx.Client) -> None:
    cf.create_gateway("gw-logs")
    seed_logs(admin, twin.account_id, "gw-logs", 730)
    progress: list[int] = []
    columns = cf.fetch_logs("gw-logs", concurrency=4, progress=lambda n, total: progress.append(n))
    assert columns.rows == columns.total_count == 730
    assert len(set(columns["id"])) == 730 and columns["created_at"] == sorted(columns["created_at"])
    assert {len(v) for v in columns.values()} == {730}
    assert progress[-1] == 730 and columns.pages == 15
    sdk = cloudflare.Cloudflare(api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0)
    with sdk:
        sdk_ids = {log.id for log in sdk.ai_gateway.logs.list("gw-logs", account_id=twin.account_id, per_page=50)}
    assert sdk_ids == set(columns["id"])

    openai_only = [{"key": "provider", "operator": "eq", "value": ["openai"]}]
    filtered = cf.fetch_logs("gw-logs", filters=openai_only, concurrency=2)
    expected = sum(1 for p in columns["provider"] if p == "openai")
    assert 0 < filtered.rows == expected and set(filtered["provider"]) == {"openai"}
    page = cf.list_logs("gw-logs", filters=openai_only, per_page=5, page=2, meta_info=True)
    assert len(page.logs) == 5 and page.total_count == expected
    log = cf.get_log("gw-logs", page.logs[0].id)
    assert log.id == page.logs[0].id and log.provider == "openai"


def test_fetch_logs_window_and_delete(cf: CloudflareClient, twin: Any, admin: httpx.Client) -> None:
    cf.create_gateway("gw-del")
    seed_logs(admin, twin.account_id, "gw-del", 120)
    columns = cf.fetch_logs("gw-del")
    middle = sorted(columns["created_at"])[60]
    before = cf.fetch_logs("gw-del", until=middle)
    after = cf.fetch_logs("gw-del", since=middle)
    assert before.rows == 60 and after.rows == 59  # strictly before / strictly after the middle log
    cf.delete_logs("gw-del", [{"key": "created_at", "operator": "lt", "value": [middle]}], limit=10_000)
    assert cf.fetch_logs("gw-del").rows == 60
    with pytest.raises(ValidationError):
        cf.delete_logs("gw-del", limit=0)


def test_no_secret_in_logs_reprs_or_errors(twin: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = Secret(secrets.token_urlsafe(32), "ANTHROPIC_API_KEY")
    wrong = Secret(secrets.token_urlsafe(30), "CLOUDFLARE_API_TOKEN")
    texts: list[str] = []
    with make_client(twin) as cf:
        cf.create_gateway("gw-sec")
        store = cf.create_store("s")
        secret = cf.create_secret(store.id, "gw-sec_anthropic_default", key)
        cf.update_gateway("gw-sec", {"store_id": store.id})
        config = cf.create_provider_config("gw-sec", "anthropic", "default", secret=key)
        texts += [repr(cf), repr(secret), repr(config), repr(store), repr(cf.stats)]
        for bad in (
            lambda: cf.create_secret(store.id, "gw-sec_anthropic_default", key),
            lambda: cf.create_provider_config("gw-sec", "anthropic", "default", secret=key),
            lambda: cf.create_secret("no-such-store", "x y", key),
        ):
            with pytest.raises(AigwError) as caught:
                bad()
            texts += [str(caught.value), repr(caught.value)]
    with CloudflareClient(base_url=twin.server.api_base_url, api_token=wrong, account_id=twin.account_id,
                          retry=FAST, budget=RequestBudget(100, 1.0)) as stranger:
        with pytest.raises(AuthenticationError) as denied:
            stranger.verify_token()
        texts += [str(denied.value), repr(stranger)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("/secrets_store/" in t for t in texts)  # the log records are there to be checked
    for text in texts:
        for value in (key.reveal(), wrong.reveal(), twin.seed.api_token):
            assert value not in text
