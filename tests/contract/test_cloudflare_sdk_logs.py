"""The official ``cloudflare`` SDK drives the twin's logs API exactly as a user would: list with
filters and ordering, auto-paginate, get one, edit feedback, read payloads, delete by filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cloudflare
import httpx
import pytest
from cftwin.logs.models import LogRow, insert_logs
from openapi_schema import SchemaCheckingTransport

GATEWAY = "sdk-logs"


@pytest.fixture(scope="module")
def client(twin: Any) -> Iterator[cloudflare.Cloudflare]:
    # The official SDK over a transport that checks every answer against Cloudflare's OpenAPI.
    with cloudflare.Cloudflare(
        api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0,
        http_client=httpx.Client(transport=SchemaCheckingTransport()),
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def seeded(twin: Any, client: cloudflare.Cloudflare) -> dict[str, Any]:
    """A gateway with 230 seeded logs plus 3 known ones; the seeding endpoint's truth."""
    client.ai_gateway.create(
        account_id=twin.account_id,
        id=GATEWAY,
        cache_invalidate_on_update=False,
        cache_ttl=0,
        collect_logs=True,
        rate_limiting_interval=0,
        rate_limiting_limit=0,
    )
    known = [
        LogRow("openai", "gpt-4o-mini", "chat/completions", duration=120, tokens_in=11, tokens_out=7, cost=0.5,
               metadata={"suite": "sdk", "case": "one"}, request_body='{"q": 1}', response_body='{"a": 1}',
               request_content_type="application/json", response_content_type="application/json"),
        LogRow("anthropic", "claude-3-5-haiku", "v1/messages", duration=80, tokens_in=13, tokens_out=5, cost=0.25,
               metadata={"suite": "sdk", "case": "two"}),
        LogRow("google-ai-studio", "gemini-2.5-flash", "v1beta/models/gemini-2.5-flash:generateContent",
               success=False, status_code=500, duration=30, cost=0.0),
    ]
    insert_logs(twin.context.db, twin.account_id, GATEWAY, known)
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers, timeout=60) as admin:
        response = admin.post(
            "/logs/seed",
            json={"account_id": twin.account_id, "gateway_id": GATEWAY, "count": 230, "seed": 3,
                  "end": "2026-01-31T00:00:00Z"},
        )
        assert response.status_code == 201, response.text
        stats = admin.get("/logs/stats", params={"account_id": twin.account_id, "gateway_id": GATEWAY}).json()
    return {"known": [str(r.id) for r in known], "stats": stats}


def test_auto_pagination_visits_every_log_once(
    twin: Any, client: cloudflare.Cloudflare, seeded: dict[str, Any]
) -> None:
    logs = list(client.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id, per_page=50))
    assert len(logs) == seeded["stats"]["count"] == 233
    assert len({log.id for log in logs}) == 233
    assert sum(log.tokens_in or 0 for log in logs) == seeded["stats"]["tokens_in"]
    assert sum(log.cost or 0 for log in logs) == pytest.approx(seeded["stats"]["cost"])
    created = [log.created_at for log in logs]
    assert created == sorted(created)


def test_list_with_filters_and_ordering(twin: Any, client: cloudflare.Cloudflare, seeded: dict[str, Any]) -> None:
    page = client.ai_gateway.logs.list(
        GATEWAY,
        account_id=twin.account_id,
        filters=[{"key": "metadata.value", "operator": "eq", "value": ["sdk"]}],
        order_by="created_at",
        order_by_direction="desc",
        per_page=5,
    )
    assert [log.id for log in page.result] == seeded["known"][1::-1]
    assert page.result_info is not None and page.result_info.page == 1

    two = client.ai_gateway.logs.list(
        GATEWAY,
        account_id=twin.account_id,
        filters=[
            {"key": "provider", "operator": "eq", "value": ["openai"]},
            {"key": "cost", "operator": "gt", "value": [0.4]},
        ],
        meta_info=True,
    )
    assert [log.id for log in two.result] == seeded["known"][:1]
    info = two.result_info.model_dump() if two.result_info is not None else {}
    assert info["total_count"] == 1 and info["max_cost"] == 0.5

    by_provider = list(
        client.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id, provider="anthropic", per_page=50)
    )
    assert by_provider and {log.provider for log in by_provider} == {"anthropic"}
    assert len(by_provider) == seeded["stats"]["by_provider"]["anthropic"]["count"]

    ordered = client.ai_gateway.logs.list(
        GATEWAY, account_id=twin.account_id, order_by="model", order_by_direction="asc", per_page=50
    ).result
    assert [log.model for log in ordered] == sorted(log.model for log in ordered)


def test_get_edit_and_payloads(twin: Any, client: cloudflare.Cloudflare, seeded: dict[str, Any]) -> None:
    first = seeded["known"][0]
    log = client.ai_gateway.logs.get(first, account_id=twin.account_id, gateway_id=GATEWAY)
    assert log.id == first and log.provider == "openai" and log.request_head == '{"q": 1}'
    assert log.request_size == 8 and log.metadata == '{"suite":"sdk","case":"one"}'
    assert client.ai_gateway.logs.edit(first, account_id=twin.account_id, gateway_id=GATEWAY, feedback=1) == {}
    liked = client.ai_gateway.logs.list(
        GATEWAY, account_id=twin.account_id, filters=[{"key": "feedback", "operator": "eq", "value": [1]}]
    )
    assert [entry.id for entry in liked.result] == [first]
    assert client.ai_gateway.logs.request(first, account_id=twin.account_id, gateway_id=GATEWAY) == {"q": 1}
    assert client.ai_gateway.logs.response(first, account_id=twin.account_id, gateway_id=GATEWAY) == {"a": 1}


def test_errors_map_to_the_sdk_exceptions(twin: Any, client: cloudflare.Cloudflare, seeded: dict[str, Any]) -> None:
    with pytest.raises(cloudflare.NotFoundError):
        client.ai_gateway.logs.list("no-such-gateway", account_id=twin.account_id)
    with pytest.raises(cloudflare.NotFoundError):
        client.ai_gateway.logs.get("01ARZ3NDEKTSV4RRFFQ69G5FAV", account_id=twin.account_id, gateway_id=GATEWAY)
    with pytest.raises(cloudflare.BadRequestError) as caught:
        client.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id, per_page=51)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"][0]["code"] == 7001
    with pytest.raises(cloudflare.BadRequestError):
        client.ai_gateway.logs.edit(seeded["known"][0], account_id=twin.account_id, gateway_id=GATEWAY, score=101)
    stranger = cloudflare.Cloudflare(api_token="not-a-token", base_url=twin.server.api_base_url, max_retries=0)
    with stranger, pytest.raises(cloudflare.AuthenticationError):
        stranger.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id)


def test_delete_by_filter(twin: Any, client: cloudflare.Cloudflare, seeded: dict[str, Any]) -> None:
    before = seeded["stats"]["by_provider"]["google-ai-studio"]["count"]
    assert before > 1
    result = client.ai_gateway.logs.delete(
        GATEWAY,
        account_id=twin.account_id,
        filters=[{"key": "provider", "operator": "eq", "value": ["google-ai-studio"]}],
        limit=1,
        order_by="created_at",
        order_by_direction="desc",
    )
    assert result.success is True
    remaining = list(
        client.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id, provider="google-ai-studio", per_page=50)
    )
    assert len(remaining) == before - 1
    # The newest Google log (one of the known three, inserted last) was the one deleted.
    assert seeded["known"][2] not in {log.id for log in remaining}
    client.ai_gateway.logs.delete(
        GATEWAY,
        account_id=twin.account_id,
        filters=[{"key": "provider", "operator": "eq", "value": ["google-ai-studio"]}],
    )
    assert list(client.ai_gateway.logs.list(GATEWAY, account_id=twin.account_id, provider="google-ai-studio")) == []
