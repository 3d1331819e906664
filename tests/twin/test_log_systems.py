"""The account decides its log system and limits (cloudflare-docs legacy-logs.mdx, limits.mdx): Legacy Logs
for accounts created before 2026-09-24, Logs powered by Workers Observability since; free and paid plans.

Driven with the official ``cloudflare`` SDK over HTTP, as a user would.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cloudflare
import httpx
import pytest
from cftwin.accounts import account_profile, created_at_for
from cftwin.context import TwinOptions
from cftwin.gateways.models import create_gateway
from cftwin.logs.models import LogRow, count_logs, insert_log_tuples, insert_logs
from cftwin.seed import generated_seed
from cftwin.server import TwinServer
from cftwin.timing import NO_DELAYS

GATEWAY = "logs-systems"


@dataclasses.dataclass
class Account:
    server: TwinServer
    account_id: str
    api_token: str
    sdk: cloudflare.Cloudflare


def _account(log_system: str, plan: str = "paid") -> Iterator[Account]:
    seed = dataclasses.replace(generated_seed(), plan=plan, created_at=created_at_for(log_system))  # type: ignore[arg-type]
    server = TwinServer(TwinOptions(admin_enabled=True, **NO_DELAYS), seed=seed).start()
    sdk = cloudflare.Cloudflare(api_token=seed.api_token, base_url=server.api_base_url, max_retries=0)
    try:
        sdk.ai_gateway.create(account_id=seed.account_id, id=GATEWAY, cache_invalidate_on_update=False, cache_ttl=0,
                              collect_logs=True, rate_limiting_interval=0, rate_limiting_limit=0)
        now = datetime.now(UTC)
        insert_logs(server.context.db, seed.account_id, GATEWAY, [
            LogRow("openai", "gpt-4o-mini", "chat/completions", duration=100 + i, tokens_in=10, tokens_out=5,
                   cost=0.001, metadata={"aigw_run_id": "run-1" if i < 3 else "run-2"},
                   created_at=now - timedelta(seconds=10 * i))
            for i in range(5)
        ] + [LogRow("anthropic", "claude-sonnet-4-5", "v1/messages", status_code=500, success=False,
                    created_at=now - timedelta(days=10))])
        yield Account(server, seed.account_id, seed.api_token, sdk)
    finally:
        sdk.close()
        server.close()


@pytest.fixture(scope="module")
def legacy() -> Iterator[Account]:
    yield from _account("legacy")


@pytest.fixture(scope="module")
def observability() -> Iterator[Account]:
    yield from _account("observability")


def _window_ms(days: int = 30) -> dict[str, int]:
    now = int(time.time() * 1000)
    return {"from": now - days * 86_400_000, "to": now + 60_000}


def _query(account: Account, **kwargs: Any) -> Any:
    return account.sdk.workers.observability.telemetry.query(
        account_id=account.account_id, query_id="aigw-test", timeframe=_window_ms(), view="events", **kwargs)


def test_profiles_follow_the_creation_date() -> None:
    assert created_at_for("legacy") < "2026-09-24" <= created_at_for("observability")


def test_a_legacy_account_lists_its_logs_and_has_no_observability_events(legacy: Account) -> None:
    listed = list(legacy.sdk.ai_gateway.logs.list(GATEWAY, account_id=legacy.account_id, per_page=50))
    assert len(listed) == 6
    assert _query(legacy).events.count == 0


def test_a_new_account_finds_nothing_in_the_legacy_logs_api(observability: Account) -> None:
    assert list(observability.sdk.ai_gateway.logs.list(GATEWAY, account_id=observability.account_id)) == []
    stored = count_logs(observability.server.context.db, observability.account_id, GATEWAY)
    assert stored == 6, "the gateway logged; only the legacy API does not show it"


def test_the_observability_query_returns_the_gateway_logs_as_events(observability: Account) -> None:
    answer = _query(observability, parameters={"filters": [
        {"key": "$metadata.service", "operation": "eq", "type": "string", "value": GATEWAY}]})
    events = answer.events.events
    # Paid plan: 7 days of retention, so the 10-day-old log is gone.
    assert answer.events.count == 5 and len(events) == 5
    assert answer.run.status == "COMPLETED"
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    first = events[0]
    assert first.dataset == "ai-gateway"
    assert first.metadata.service == GATEWAY and first.metadata.status_code == 200
    assert first.source["model"] == "gpt-4o-mini" and first.source["tokens_in"] == 10
    assert first.source["metadata"] == {"aigw_run_id": "run-1"}
    assert first.metadata.id == first.source["log_id"]


def test_filters_groups_and_the_offset_cursor(observability: Account) -> None:
    run_1 = _query(observability, parameters={"filters": [
        {"key": "metadata.aigw_run_id", "operation": "eq", "type": "string", "value": "run-1"}]})
    assert run_1.events.count == 3
    either = _query(observability, parameters={"filters": [{"kind": "group", "filterCombination": "or", "filters": [
        {"key": "duration", "operation": "gte", "type": "number", "value": 104},
        {"key": "metadata.aigw_run_id", "operation": "eq", "type": "string", "value": "run-1"}]}]})
    assert either.events.count == 4
    page_1 = _query(observability, limit=2)
    page_2 = _query(observability, limit=2, offset=page_1.events.events[-1].metadata.id)
    ids = [e.metadata.id for e in [*page_1.events.events, *page_2.events.events]]
    assert len(ids) == len(set(ids)) == 4


def test_the_query_needs_workers_observability_read(observability: Account) -> None:
    admin = httpx.Client(base_url=observability.server.url + "/__twin__", headers=observability.server.admin_headers)
    token = admin.post("/tokens", json={"account_id": observability.account_id,
                                        "permissions": ["ai_gateway:read"]}).json()["value"]
    with cloudflare.Cloudflare(api_token=token, base_url=observability.server.api_base_url, max_retries=0) as sdk,\
            pytest.raises(cloudflare.PermissionDeniedError):
        sdk.workers.observability.telemetry.query(account_id=observability.account_id, query_id="q",
                                                  timeframe=_window_ms(), view="events")


@pytest.mark.parametrize(("body", "path"), [
    ({"timeframe": {"from": 1, "to": 2}}, ["body", "queryId"]),
    ({"queryId": "q"}, ["body", "timeframe"]),
    ({"queryId": "q", "timeframe": {"from": 5, "to": 2}}, ["body", "timeframe"]),
    ({"queryId": "q", "timeframe": {"from": 1, "to": 2}, "view": "calculations"}, ["body", "view"]),
    ({"queryId": "q", "timeframe": {"from": 1, "to": 2}, "limit": 0}, ["body", "limit"]),
    ({"queryId": "q", "timeframe": {"from": 1, "to": 2},
      "parameters": {"filters": [{"key": "a", "operation": "like", "type": "string"}]}},
     ["body", "parameters", "filters", "0", "operation"]),
])
def test_a_bad_query_is_a_400_naming_the_field(observability: Account, body: dict[str, Any], path: list[str]) -> None:
    answer = httpx.post(f"{observability.server.api_base_url}/accounts/{observability.account_id}"
                        "/workers/observability/telemetry/query", json=body,
                        headers={"Authorization": f"Bearer {observability.api_token}"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["path"] == path


def _bulk(n: int, start: int = 0) -> list[tuple[Any, ...]]:
    stamp = "2026-11-01T00:00:00.000000Z"
    return [(f"id-{start + i:09d}", stamp, "openai", "gpt-4o-mini", "chat/completions", 1, 1, 0) for i in range(n)]


_BULK_COLUMNS = ("id", "created_at", "provider", "model", "path", "duration", "success", "cached")


def test_the_free_plan_stores_100000_logs_across_the_account(legacy: Account) -> None:
    seed = generated_seed()
    server = TwinServer(TwinOptions(**NO_DELAYS), seed=seed).start()
    try:
        db, account = server.context.db, seed.account_id
        assert account_profile(db, account).plan == "free"
        for gateway in ("one", "two"):
            create_gateway(db, account, {"id": gateway})
        assert insert_log_tuples(db, account, "one", _BULK_COLUMNS, _bulk(60_000)) == 60_000
        assert insert_log_tuples(db, account, "two", _BULK_COLUMNS, _bulk(60_000, 60_000)) == 40_000
    finally:
        server.close()


def test_the_paid_plan_stores_more_than_100000_logs_in_one_gateway(legacy: Account) -> None:
    db = legacy.server.context.db
    stored = insert_log_tuples(db, legacy.account_id, GATEWAY, _BULK_COLUMNS, _bulk(100_001))
    assert stored == 100_001


def test_a_paid_account_may_have_20_gateways(legacy: Account) -> None:
    made = [legacy.sdk.ai_gateway.create(account_id=legacy.account_id, id=f"gw-{i}", cache_invalidate_on_update=False,
                                         cache_ttl=0, collect_logs=True, rate_limiting_interval=0,
                                         rate_limiting_limit=0) for i in range(19)]
    assert len(made) == 19  # with logs-systems: 20
    with pytest.raises(cloudflare.BadRequestError):
        legacy.sdk.ai_gateway.create(account_id=legacy.account_id, id="gw-20", cache_invalidate_on_update=False,
                                     cache_ttl=0, collect_logs=True, rate_limiting_interval=0, rate_limiting_limit=0)
