"""The twin's control-plane logs API over real HTTP: list, filter, order, paginate, delete, detail,
patch, payloads; validation (400 / 7001 with a path), 404 / 7002, permissions, ``log_management``,
and the admin seeding endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import pytest
from cftwin.logs.models import LogRow, count_logs, insert_logs
from openapi_schema import schema_hook

from tests.twin_support import gateway_body

_names = count()
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin(twin: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers, timeout=60) as client:
        # Every test here makes its own gateway: lift the account's gateway limit (10 by default).
        response = client.post("/accounts", json={"account_id": twin.account_id, "gateway_limit": 1000})
        assert response.status_code == 201, response.text
        yield client


@pytest.fixture(scope="module")
def api(twin: Any, admin: httpx.Client) -> Iterator[httpx.Client]:
    # Every answer of an operation in Cloudflare's OpenAPI is checked against its schema (tests/openapi_schema.py).
    with httpx.Client(base_url=twin.server.api_base_url, headers=twin.api_headers, timeout=30,
                      event_hooks={"response": [schema_hook(declared_only=True)]}) as client:
        yield client


def new_gateway(twin: Any, api: httpx.Client, **fields: Any) -> str:
    gateway_id = f"logs-{next(_names)}"
    response = api.post(f"/accounts/{twin.account_id}/ai-gateway/gateways", json=gateway_body(gateway_id, **fields))
    assert response.status_code == 200, response.text
    return gateway_id


def logs_url(twin: Any, gateway_id: str, suffix: str = "") -> str:
    return f"/accounts/{twin.account_id}/ai-gateway/gateways/{gateway_id}/logs{suffix}"


SAMPLE = [
    # provider, model, minutes after T0, tokens in/out, cost, success, cached, metadata
    ("openai", "gpt-4o-mini", 0, 100, 10, 0.001, True, False, {"team": "search", "tier": 1}),
    ("anthropic", "claude-3-5-haiku", 1, 300, 30, 0.010, True, False, {"team": "support"}),
    ("openai", "gpt-4o", 2, 50, None, 0.0, False, False, None),
    ("google-ai-studio", "gemini-2.5-flash", 3, 700, 70, 0.005, True, True, {"team": "search", "beta": True}),
    ("openai", "gpt-4o-mini", 4, 200, 20, 0.002, True, False, {"team": "billing"}),
    ("anthropic", "claude-sonnet-4-5", 5, 900, 90, 0.030, True, False, None),
    ("openai", "gpt-4o-mini", 6, 400, 40, 0.004, True, False, {"team": "support", "tier": 2}),
]


def sample_gateway(twin: Any, api: httpx.Client) -> tuple[str, list[str]]:
    """A gateway holding SAMPLE (oldest first); its log ids in that order."""
    gateway_id = new_gateway(twin, api)
    rows = [
        LogRow(
            provider=p,
            model=m,
            path="chat/completions",
            duration=10 * (i + 1),
            success=ok,
            cached=cached,
            status_code=200 if ok else 500,
            tokens_in=tin,
            tokens_out=tout,
            cost=cost,
            metadata=meta,
            created_at=T0 + timedelta(minutes=minute),
            request_body=json.dumps({"model": m, "messages": [{"role": "user", "content": f"q{i}"}]}),
            response_body=json.dumps({"answer": f"a{i}"}) if ok else None,
            request_content_type="application/json",
            response_content_type="application/json",
            event_id=f"evt-{i}",
        )
        for i, (p, m, minute, tin, tout, cost, ok, cached, meta) in enumerate(SAMPLE)
    ]
    assert insert_logs(twin.context.db, twin.account_id, gateway_id, rows) == len(rows)
    return gateway_id, [str(r.id) for r in rows]


def listed(api: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def models_of(body: dict[str, Any]) -> list[str]:
    return [item["model"] for item in body["result"]]


def assert_7001(response: httpx.Response, path: list[str]) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] == 7001
    assert body["errors"][0]["path"] == path
    assert body["result"] == {}


def filters(*items: tuple[str, str, list[Any]]) -> str:
    return json.dumps([{"key": k, "operator": o, "value": v} for k, o, v in items])


# --- list ---------------------------------------------------------------------------------------


def test_list_is_oldest_first_with_list_fields_only(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    body = listed(api, logs_url(twin, gateway_id))
    assert body["success"] is True
    assert [i["created_at"] for i in body["result"]] == sorted(i["created_at"] for i in body["result"])
    assert models_of(body)[0] == "gpt-4o-mini" and len(body["result"]) == 7
    first = body["result"][0]
    assert first["created_at"] == "2026-03-01T12:00:00.000000Z"
    assert first["metadata"] == '{"team":"search","tier":1}'
    assert first["success"] is True and first["cached"] is False and first["tokens_out"] == 10
    for hidden in ("request_body", "response_body", "request_head", "event_id"):
        assert hidden not in first
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 7, "total_count": 7}


def test_pages_and_past_the_end(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    pages = [listed(api, url, per_page=3, page=p) for p in (1, 2, 3, 4)]
    assert [len(p["result"]) for p in pages] == [3, 3, 1, 0]
    assert [p["result_info"]["count"] for p in pages] == [3, 3, 1, 0]
    assert {p["result_info"]["total_count"] for p in pages} == {7}
    ids = [item["id"] for p in pages for item in p["result"]]
    assert len(set(ids)) == 7
    assert listed(api, url, per_page=50, page=10**15)["result"] == []


@pytest.mark.parametrize(
    ("order_by", "direction", "expected_first"),
    [
        ("created_at", "desc", "gpt-4o-mini"),
        ("provider", "asc", "claude-3-5-haiku"),
        ("model", "asc", "claude-3-5-haiku"),
        ("success", "asc", "gpt-4o"),
        ("cached", "desc", "gemini-2.5-flash"),
    ],
)
def test_order(twin: Any, api: httpx.Client, order_by: str, direction: str, expected_first: str) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    body = listed(api, logs_url(twin, gateway_id), order_by=order_by, order_by_direction=direction)
    assert models_of(body)[0] == expected_first
    if order_by == "model":
        assert models_of(body) == sorted(models_of(body))


@pytest.mark.parametrize("order_by", ["cost", "tokens_in", "tokens_out", "duration", "feedback", "path"])
def test_list_orders_only_by_the_six_documented_columns(twin: Any, api: httpx.Client, order_by: str) -> None:
    # LogListParams.order_by (SDKs generated from the spec): created_at, provider, model, model_type,
    # success, cached. The wider set belongs to the delete operation only.
    gateway_id, _ = sample_gateway(twin, api)
    assert_7001(api.get(logs_url(twin, gateway_id), params={"order_by": order_by}), ["query", "order_by"])


def test_delete_orders_by_cost_as_its_operation_declares(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    deleted = api.delete(url, params={"order_by": "cost", "order_by_direction": "asc", "limit": 2})
    assert deleted.status_code == 200, deleted.text
    left = listed(api, url, per_page=50)
    assert sorted(i["cost"] for i in left["result"]) == [0.002, 0.004, 0.005, 0.010, 0.030]


def test_deprecated_direction_applies_without_order_by_direction(twin: Any, api: httpx.Client) -> None:
    gateway_id, ids = sample_gateway(twin, api)
    body = listed(api, logs_url(twin, gateway_id), direction="desc")
    assert body["result"][0]["id"] == ids[-1]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([("provider", "eq", ["openai"])], 4),
        ([("provider", "eq", ["openai", "anthropic"])], 6),
        ([("provider", "neq", ["openai"])], 3),
        ([("model", "contains", ["GPT-4O"])], 4),
        ([("tokens_in", "gt", [300])], 3),
        ([("tokens_in", "lt", [300])], 3),
        ([("tokens", "gt", [440])], 2),
        ([("cost", "gt", [0.004])], 3),
        ([("success", "eq", [False])], 1),
        ([("cached", "eq", ["true"])], 1),
        ([("tokens_out", "eq", [None])], 1),
        ([("tokens_out", "neq", [None])], 6),
        ([("created_at", "gt", ["2026-03-01T12:03:00Z"])], 3),
        ([("created_at", "lt", ["2026-03-01T13:03:00+01:00"])], 3),
        ([("event_id", "eq", ["evt-3"])], 1),
        ([("metadata.key", "eq", ["tier"])], 2),
        ([("metadata.key", "neq", ["team"])], 2),
        ([("metadata.value", "eq", ["search"])], 2),
        ([("metadata.value", "eq", [True])], 1),
        ([("metadata.value", "eq", [2])], 1),
        ([("metadata.key", "eq", ["team"]), ("metadata.value", "eq", ["support"])], 2),
        ([("metadata.key", "eq", ["tier"]), ("metadata.value", "eq", ["support"])], 0),
        ([("provider", "eq", ["openai"]), ("tokens_in", "gt", [150])], 2),
        ([("id", "contains", ["zzzz-no-such"])], 0),
    ],
)
def test_filters_json_form(twin: Any, api: httpx.Client, items: list[Any], expected: int) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    body = listed(api, logs_url(twin, gateway_id), filters=filters(*items))
    assert body["result_info"]["total_count"] == expected
    assert len(body["result"]) == expected


def test_filters_dotted_and_indexed_forms(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)

    def total(query: str) -> int:
        response = api.get(f"{url}?{query}")
        assert response.status_code == 200, response.text
        return int(response.json()["result_info"]["total_count"])

    # One filter with two values (the SDK's dots + repeat).
    assert total("filters.key=provider&filters.operator=eq&filters.value=openai&filters.value=anthropic") == 6
    # Two filters grouped by name (what httpx makes of the Python SDK's query): one value each.
    grouped = (
        "filters.key=provider&filters.key=tokens_in&filters.operator=eq&filters.operator=gt"
        "&filters.value=openai&filters.value=150"
    )
    assert total(grouped) == 2
    # Interleaved (the TypeScript SDK's order), with two values on the first filter.
    interleaved = (
        "filters.key=provider&filters.operator=eq&filters.value=openai&filters.value=google-ai-studio"
        "&filters.key=tokens_in&filters.operator=gt&filters.value=150"
    )
    assert total(interleaved) == 3
    indexed = "filters[0][key]=model&filters[0][operator]=eq&filters[0][value][]=gpt-4o-mini&filters[1].key=tokens_in" \
        "&filters[1].operator=lt&filters[1][value][0]=300"
    assert total(indexed) == 2
    # Grouped, with values that cannot be paired: refused, not guessed.
    ambiguous = (
        "filters.key=provider&filters.key=model&filters.operator=eq&filters.operator=eq"
        "&filters.value=openai&filters.value=anthropic&filters.value=gpt-4o"
    )
    assert_7001(api.get(f"{url}?{ambiguous}"), ["query", "filters", "value"])


def test_deprecated_parameters_and_search(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    assert listed(api, url, provider="openai")["result_info"]["total_count"] == 4
    assert listed(api, url, success="false")["result_info"]["total_count"] == 1
    assert listed(api, url, min_cost=0.004, max_cost=0.01)["result_info"]["total_count"] == 3
    window = {"start_date": "2026-03-01T12:01:00Z", "end_date": "2026-03-01T12:03:00Z"}
    assert listed(api, url, **window)["result_info"]["total_count"] == 3
    assert listed(api, url, min_total_tokens=440)["result_info"]["total_count"] == 3
    assert models_of(listed(api, url, search="SONNET")) == ["claude-sonnet-4-5"]
    assert listed(api, url, search="billing")["result_info"]["total_count"] == 1
    assert listed(api, url, search="50%_off")["result_info"]["total_count"] == 0


def test_meta_info_gives_min_max_of_the_filtered_logs(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    info = listed(api, logs_url(twin, gateway_id), meta_info="true", filters=filters(("provider", "eq", ["openai"])))[
        "result_info"
    ]
    assert info["total_count"] == 4
    assert (info["min_tokens_in"], info["max_tokens_in"]) == (50, 400)
    assert (info["min_cost"], info["max_cost"]) == (0.0, 0.004)
    assert (info["min_duration"], info["max_duration"]) == (10, 70)
    assert info["max_total_tokens"] == 440
    assert "min_cost" not in listed(api, logs_url(twin, gateway_id))["result_info"]


def test_filtered_total_follows_writes(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    query = {"filters": filters(("provider", "eq", ["openai"]))}
    assert listed(api, url, **query)["result_info"]["total_count"] == 4
    insert_logs(twin.context.db, twin.account_id, gateway_id, [LogRow("openai", "gpt-4o", "chat/completions")])
    assert listed(api, url, **query)["result_info"]["total_count"] == 5
    assert api.delete(url, params=query).status_code == 200
    assert listed(api, url, **query)["result_info"]["total_count"] == 0
    assert listed(api, url)["result_info"]["total_count"] == 3


# --- validation, 404, permissions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"per_page": "0"}, ["query", "per_page"]),
        ({"per_page": "51"}, ["query", "per_page"]),
        ({"per_page": "ten"}, ["query", "per_page"]),
        ({"page": "0"}, ["query", "page"]),
        ({"page": "-1"}, ["query", "page"]),
        ({"order_by": "feedback"}, ["query", "order_by"]),
        ({"order_by_direction": "up"}, ["query", "order_by_direction"]),
        ({"meta_info": "yes"}, ["query", "meta_info"]),
        ({"filters": "not json"}, ["query", "filters"]),
        ({"filters": '{"key": "provider"}'}, ["query", "filters", "0", "operator"]),
        ({"filters": filters(("nope", "eq", ["x"]))}, ["query", "filters", "0", "key"]),
        ({"filters": filters(("provider", "like", ["x"]))}, ["query", "filters", "0", "operator"]),
        ({"filters": filters(("provider", "gt", ["x"]))}, ["query", "filters", "0", "operator"]),
        ({"filters": filters(("success", "contains", [True]))}, ["query", "filters", "0", "operator"]),
        ({"filters": filters(("provider", "eq", []))}, ["query", "filters", "0", "value"]),
        ({"filters": json.dumps([{"key": "cost", "operator": "gt", "value": 1}])}, ["query", "filters", "0", "value"]),
        (
            {"filters": filters(("provider", "eq", ["a"]), ("cost", "gt", ["cheap"]))},
            ["query", "filters", "1", "value", "0"],
        ),
        ({"filters": filters(("cost", "gt", [1, 2]))}, ["query", "filters", "0", "value"]),
        ({"filters": filters(("created_at", "gt", ["yesterday"]))}, ["query", "filters", "0", "value", "0"]),
        ({"filters": filters(("success", "eq", ["maybe"]))}, ["query", "filters", "0", "value", "0"]),
        ({"filters": filters(("model", "eq", [{"a": 1}]))}, ["query", "filters", "0", "value", "0"]),
        ({"filters.key": "provider"}, ["query", "filters", "0", "operator"]),
        ({"filters.colour": "red"}, ["query", "filters"]),
        ({"start_date": "soon"}, ["query", "start_date"]),
        ({"min_cost": "free"}, ["query", "min_cost"]),
        ({"feedback": "2"}, ["query", "feedback"]),
    ],
)
def test_list_validation_errors(twin: Any, api: httpx.Client, params: dict[str, str], path: list[str]) -> None:
    gateway_id = new_gateway(twin, api)
    assert_7001(api.get(logs_url(twin, gateway_id), params=params), path)


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "10001"}, ["query", "limit"]),
        ({"order_by": "path"}, ["query", "order_by"]),
        ({"order_by_direction": "sideways"}, ["query", "order_by_direction"]),
        ({"filters": filters(("provider", "eq", []))}, ["query", "filters", "0", "value"]),
    ],
)
def test_delete_validation_errors_delete_nothing(
    twin: Any, api: httpx.Client, params: dict[str, str], path: list[str]
) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    assert_7001(api.delete(logs_url(twin, gateway_id), params=params), path)
    assert count_logs(twin.context.db, twin.account_id, gateway_id) == 7


def test_unknown_gateway_and_log_are_7002(twin: Any, api: httpx.Client) -> None:
    gateway_id, ids = sample_gateway(twin, api)
    for method, url in [
        ("GET", logs_url(twin, "no-such-gateway")),
        ("DELETE", logs_url(twin, "no-such-gateway")),
        ("GET", logs_url(twin, "no-such-gateway", f"/{ids[0]}")),
        ("GET", logs_url(twin, gateway_id, "/01ARZ3NDEKTSV4RRFFQ69G5FAV")),
        ("GET", logs_url(twin, gateway_id, "/01ARZ3NDEKTSV4RRFFQ69G5FAV/request")),
        ("GET", logs_url(twin, gateway_id, "/01ARZ3NDEKTSV4RRFFQ69G5FAV/response")),
        ("PATCH", logs_url(twin, gateway_id, "/01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    ]:
        response = api.request(method, url, json={"feedback": 1} if method == "PATCH" else None)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["errors"][0]["code"] == 7002


@pytest.mark.parametrize("method", ["GET", "DELETE", "GET /{id}", "PATCH /{id}", "GET /{id}/request"])
def test_a_gateway_id_outside_the_pattern_is_7001_not_404(twin: Any, api: httpx.Client, method: str) -> None:
    # Every logs operation declares the id pattern ^[a-z0-9_]+(?:-[a-z0-9_]+)*$ (1-64) on gateway_id.
    verb, _, suffix = method.partition(" ")
    for bad in ("Bad-Gateway", "a--b", "x" * 65):
        url = logs_url(twin, bad, suffix.replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        assert_7001(api.request(verb, url, json={"feedback": 1} if verb == "PATCH" else None),
                    ["path", "gateway_id"])


def test_logs_of_another_gateway_are_not_visible(twin: Any, api: httpx.Client) -> None:
    _, ids = sample_gateway(twin, api)
    second = new_gateway(twin, api)
    assert listed(api, logs_url(twin, second))["result"] == []
    assert api.get(logs_url(twin, second, f"/{ids[0]}")).status_code == 404


def _token(admin: httpx.Client, twin: Any, permissions: list[str]) -> dict[str, str]:
    response = admin.post("/tokens", json={"account_id": twin.account_id, "permissions": permissions})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['value']}"}


def test_permissions(twin: Any, api: httpx.Client, admin: httpx.Client) -> None:
    gateway_id, ids = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    read_only = _token(admin, twin, ["ai_gateway:read"])
    run_only = _token(admin, twin, ["ai_gateway:run"])
    assert api.get(url, headers=read_only).status_code == 200
    assert api.get(f"{url}/{ids[0]}", headers=read_only).status_code == 200
    assert api.get(f"{url}/{ids[0]}/request", headers=read_only).status_code == 200
    assert api.delete(url, headers=read_only).status_code == 403
    assert api.patch(f"{url}/{ids[0]}", headers=read_only, json={"feedback": 1}).status_code == 403
    assert api.get(url, headers=run_only).status_code == 403
    assert api.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    # A refused request changed nothing.
    assert count_logs(twin.context.db, twin.account_id, gateway_id) == 7
    assert api.get(f"{url}/{ids[0]}").json()["result"]["id"] == ids[0]


# --- delete, detail, patch, payloads ------------------------------------------------------------


def test_delete_by_filter_with_limit_and_order(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id)
    response = api.delete(
        url,
        params={"filters": filters(("provider", "eq", ["openai"])), "limit": 2, "order_by": "cost",
                "order_by_direction": "desc"},
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    remaining = listed(api, url, per_page=50)
    # The two costliest OpenAI logs (0.004, 0.002) are gone; the others stay.
    assert sorted(i["cost"] for i in remaining["result"] if i["provider"] == "openai") == [0.0, 0.001]
    assert remaining["result_info"]["total_count"] == 5
    assert api.delete(url).json() == {"success": True}
    assert listed(api, url)["result_info"]["total_count"] == 0


def test_detail_patch_and_payloads(twin: Any, api: httpx.Client) -> None:
    gateway_id, ids = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id, f"/{ids[1]}")
    detail = api.get(url).json()["result"]
    assert detail["model"] == "claude-3-5-haiku" and detail["provider"] == "anthropic"
    request_text = json.dumps({"model": "claude-3-5-haiku", "messages": [{"role": "user", "content": "q1"}]})
    assert detail["request_head"] == request_text and detail["request_head_complete"] is True
    assert detail["request_size"] == len(request_text.encode())
    assert detail["response_head"] == '{"answer": "a1"}'

    patched = api.patch(url, json={"feedback": -1, "score": 87.5, "metadata": {"reviewed": True}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["result"] == {}
    assert api.get(url).json()["result"]["metadata"] == '{"reviewed":true}'
    by_feedback = listed(api, logs_url(twin, gateway_id), filters=filters(("feedback", "eq", [-1])))
    assert [i["id"] for i in by_feedback["result"]] == [ids[1]]
    by_meta = listed(api, logs_url(twin, gateway_id), filters=filters(("metadata.key", "eq", ["reviewed"])))
    assert [i["id"] for i in by_meta["result"]] == [ids[1]]
    assert api.patch(url, json={"feedback": None}).status_code == 200
    assert listed(api, logs_url(twin, gateway_id), filters=filters(("feedback", "eq", [-1])))["result"] == []

    request_body = api.get(f"{url}/request")
    assert request_body.status_code == 200
    assert request_body.headers["content-type"].startswith("application/json")
    assert request_body.json() == json.loads(request_text)
    assert api.get(f"{url}/response").json() == {"answer": "a1"}
    # The failed request kept no response payload.
    assert api.get(logs_url(twin, gateway_id, f"/{ids[2]}/response")).status_code == 404


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"feedback": 2}, ["body", "feedback"]),
        ({"feedback": "up"}, ["body", "feedback"]),
        ({"score": 101}, ["body", "score"]),
        ({"score": True}, ["body", "score"]),
        ({"metadata": ["a"]}, ["body", "metadata"]),
        ({"metadata": {"k": {"nested": 1}}}, ["body", "metadata", "k"]),
        ([1], ["body"]),
    ],
)
def test_patch_validation_changes_nothing(twin: Any, api: httpx.Client, body: Any, path: list[str]) -> None:
    gateway_id, ids = sample_gateway(twin, api)
    url = logs_url(twin, gateway_id, f"/{ids[0]}")
    before = api.get(url).json()["result"]
    response = api.patch(url, json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 7001
    assert response.json()["errors"][0]["path"] == path
    assert api.get(url).json()["result"] == before


# --- log_management -----------------------------------------------------------------------------


def test_log_management_stop_inserting(twin: Any, api: httpx.Client, admin: httpx.Client) -> None:
    gateway_id = new_gateway(twin, api, log_management=10_000, log_management_strategy="STOP_INSERTING")
    seeded = admin.post("/logs/seed", json={"account_id": twin.account_id, "gateway_id": gateway_id, "count": 10_050})
    assert seeded.status_code == 201, seeded.text
    assert seeded.json()["inserted"] == 10_000
    newest_before = listed(api, logs_url(twin, gateway_id), order_by_direction="desc", per_page=1)["result"][0]
    insert_logs(twin.context.db, twin.account_id, gateway_id, [LogRow("openai", "gpt-4o", "chat/completions")])
    body = listed(api, logs_url(twin, gateway_id), order_by_direction="desc", per_page=1)
    assert body["result_info"]["total_count"] == 10_000
    assert body["result"][0]["id"] == newest_before["id"]


def test_log_management_delete_oldest(twin: Any, api: httpx.Client, admin: httpx.Client) -> None:
    gateway_id = new_gateway(twin, api, log_management=10_000, log_management_strategy="DELETE_OLDEST")
    seeded = admin.post("/logs/seed", json={"account_id": twin.account_id, "gateway_id": gateway_id, "count": 10_000})
    assert seeded.json()["inserted"] == 10_000
    url = logs_url(twin, gateway_id)
    oldest_two = [i["id"] for i in listed(api, url, per_page=2)["result"]]
    rows = [LogRow("anthropic", "claude-3-5-haiku", "v1/messages"), LogRow("openai", "gpt-4o", "chat/completions")]
    assert insert_logs(twin.context.db, twin.account_id, gateway_id, rows) == 2
    assert listed(api, url)["result_info"]["total_count"] == 10_000
    assert [i["id"] for i in listed(api, url, per_page=2)["result"]] != oldest_two
    for log_id in oldest_two:
        assert api.get(f"{url}/{log_id}").status_code == 404
    newest = listed(api, url, order_by_direction="desc", per_page=2)["result"]
    assert {i["id"] for i in newest} == {r.id for r in rows}


# --- admin seeding ------------------------------------------------------------------------------


def test_seed_totals_match_what_the_api_returns(twin: Any, api: httpx.Client, admin: httpx.Client) -> None:
    gateway_id = new_gateway(twin, api)
    response = admin.post(
        "/logs/seed",
        json={"account_id": twin.account_id, "gateway_id": gateway_id, "count": 1_500, "seed": 7,
              "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "providers": ["openai", "anthropic"]},
    )
    assert response.status_code == 201, response.text
    seeded = response.json()
    stats = seeded["stats"]
    assert seeded["inserted"] == stats["count"] == seeded["generated"]["count"] == 1_500
    assert stats["tokens_in"] == seeded["generated"]["tokens_in"]
    items = []
    page = 1
    while True:
        chunk = listed(api, logs_url(twin, gateway_id), per_page=50, page=page)["result"]
        if not chunk:
            break
        items += chunk
        page += 1
    assert len(items) == 1_500 and len({i["id"] for i in items}) == 1_500
    assert sum(i["tokens_in"] or 0 for i in items) == stats["tokens_in"]
    assert sum(i["tokens_out"] or 0 for i in items) == stats["tokens_out"]
    assert sum(i["cost"] for i in items) == pytest.approx(stats["cost"])
    assert {i["provider"] for i in items} == {"openai", "anthropic"} == set(stats["by_provider"])
    assert all("2026-01-01T00:00:00" <= i["created_at"] <= "2026-01-02T00:00:00.000000Z" for i in items)
    assert sum(1 for i in items if not i["success"]) == stats["errors"] > 0
    assert sum(1 for i in items if i["cached"]) == stats["cached"] > 0
    again = admin.get("/logs/stats", params={"account_id": twin.account_id, "gateway_id": gateway_id})
    assert again.json() == stats

    # The same seed gives the same values (fresh ids) on another gateway.
    other = new_gateway(twin, api)
    repeat = admin.post(
        "/logs/seed",
        json={"account_id": twin.account_id, "gateway_id": other, "count": 1_500, "seed": 7,
              "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "providers": ["openai", "anthropic"]},
    ).json()
    assert repeat["generated"] == seeded["generated"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"count": 0}, 400),
        ({"count": 1_000_001}, 400),
        ({"count": "ten"}, 400),
        ({"count": 5, "providers": ["nope"]}, 400),
        ({"count": 5, "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 400),
        ({"count": 5, "gateway_id": "no-such-gateway"}, 404),
    ],
)
def test_seed_rejects_bad_requests(
    twin: Any, api: httpx.Client, admin: httpx.Client, body: dict[str, Any], status: int
) -> None:
    gateway_id = new_gateway(twin, api)
    response = admin.post("/logs/seed", json={"account_id": twin.account_id, "gateway_id": gateway_id, **body})
    assert response.status_code == status
    assert "error" in response.json()
    assert count_logs(twin.context.db, twin.account_id, gateway_id) == 0


def test_deleting_a_gateway_deletes_its_logs(twin: Any, api: httpx.Client) -> None:
    gateway_id, _ = sample_gateway(twin, api)
    assert api.delete(f"/accounts/{twin.account_id}/ai-gateway/gateways/{gateway_id}").status_code == 200
    assert count_logs(twin.context.db, twin.account_id, gateway_id) == 0
    # The same id again starts with an empty log, not the old gateway's.
    new_body = {"id": gateway_id, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
                "rate_limiting_interval": 0, "rate_limiting_limit": 0}
    assert api.post(f"/accounts/{twin.account_id}/ai-gateway/gateways", json=new_body).status_code == 200
    listed = api.get(logs_url(twin, gateway_id)).json()
    assert listed["result"] == [] and listed["result_info"]["total_count"] == 0
