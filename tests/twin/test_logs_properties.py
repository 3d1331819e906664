"""Hypothesis against the logs API over real HTTP: random and hostile query strings, filters, page
parameters and PATCH bodies never give a 5xx (a 200, or a 4xx in Cloudflare's shape), and a rejected
request stores nothing. Valid filters mean the same in every encoding the twin reads.

The expectations come from Cloudflare's official OpenAPI (``tests/openapi/``), not from the twin: the filter
keys and operators are the schema's enums, the page bound its ``maximum``, and every answer of a declared
status must match the operation's response schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cftwin.logs.models import count_logs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema import SPEC

SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
STORED = 400

_LIST = SPEC.operation("GET", "/accounts/a/ai-gateway/gateways/g/logs")
_DELETE = SPEC.operation("DELETE", "/accounts/a/ai-gateway/gateways/g/logs")
assert _LIST is not None and _DELETE is not None
_FILTER = next(p for p in _DELETE.parameters("query") if p["name"] == "filters")["schema"]["items"]["properties"]
FILTER_KEYS: tuple[str, ...] = tuple(_FILTER["key"]["enum"])
OPERATORS: tuple[str, ...] = tuple(_FILTER["operator"]["enum"])
PER_PAGE_MAX: int = next(p for p in _LIST.parameters("query") if p["name"] == "per_page")["schema"]["maximum"]


@pytest.fixture(scope="module")
def setup(twin: Any) -> Iterator[tuple[httpx.Client, str]]:
    gateway_id = "logs-properties"
    with httpx.Client(base_url=twin.server.api_base_url, headers=twin.api_headers, timeout=30) as api:
        created = api.post(
            f"/accounts/{twin.account_id}/ai-gateway/gateways",
            json={"id": gateway_id, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
                  "rate_limiting_interval": 0, "rate_limiting_limit": 0},
        )
        assert created.status_code == 200, created.text
        seeded = httpx.post(
            twin.server.admin_url + "/logs/seed",
            json={"account_id": twin.account_id, "gateway_id": gateway_id, "count": STORED, "seed": 11},
            timeout=60, headers=twin.server.admin_headers,
        )
        assert seeded.status_code == 201, seeded.text
        yield api, f"/accounts/{twin.account_id}/ai-gateway/gateways/{gateway_id}/logs"


def _top_up(twin: Any, gateway_id: str) -> None:
    missing = STORED - count_logs(twin.context.db, twin.account_id, gateway_id)
    if missing > 0:
        response = httpx.post(
            twin.server.admin_url + "/logs/seed",
            json={"account_id": twin.account_id, "gateway_id": gateway_id, "count": missing},
            timeout=60, headers=twin.server.admin_headers,
        )
        assert response.status_code == 201


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["openai", "anthropic", "gpt-4o-mini", "2026-01-01T00:00:00Z", "true", "1e999", "%", "_", "'"]),
)
filter_items = st.fixed_dictionaries(
    {},
    optional={
        "key": st.one_of(st.sampled_from(sorted(FILTER_KEYS)), st.text(max_size=12), scalars),
        "operator": st.one_of(st.sampled_from(OPERATORS), st.text(max_size=8), scalars),
        "value": st.one_of(st.lists(scalars, max_size=4), scalars, st.dictionaries(st.text(max_size=5), scalars)),
    },
)
filters_json = st.one_of(
    st.lists(filter_items, max_size=4).map(json.dumps),
    filter_items.map(json.dumps),
    st.text(max_size=40),
)
param_names = st.sampled_from(
    ["page", "per_page", "order_by", "order_by_direction", "direction", "meta_info", "search", "filters",
     "filters.key", "filters.operator", "filters.value", "filters[0][key]", "filters[0][operator]",
     "filters[0][value][]", "filters[1].key", "filters[x]", "start_date", "end_date", "min_cost", "max_tokens_in",
     "feedback", "success", "cached", "provider", "model", "limit", "unknown"]
)
param_values = st.one_of(
    st.text(max_size=25),
    st.integers(-5, 10**30).map(str),
    st.sampled_from(["asc", "desc", "true", "false", "created_at", "cost", "feedback", "eq", "gt", "contains",
                     "provider", "tokens_in", "metadata.key", "0", "50", "51", "-1", "9" * 5000]),
    filters_json,
)
queries = st.lists(st.tuples(param_names, param_values), max_size=6)


def _check_shape(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 400), response.text
    request = response.request
    wrong = SPEC.response_violations(request.method, request.url.path, response.status_code, response.content)
    assert not wrong, wrong
    body = response.json()
    if response.status_code == 400:
        assert body["success"] is False
        error = body["errors"][0]
        assert error["code"] == 7001 and isinstance(error["message"], str)
        assert error["path"][0] == "query" and all(isinstance(p, str) for p in error["path"])
        assert body["result"] == {}


@SETTINGS
@given(query=queries)
def test_list_never_fails_on_any_query(setup: tuple[httpx.Client, str], query: list[tuple[str, str]]) -> None:
    api, url = setup
    response = api.get(url, params=query)
    _check_shape(response)
    if response.status_code == 200:
        body = response.json()
        info = body["result_info"]
        assert len(body["result"]) == info["count"] <= info["per_page"] <= PER_PAGE_MAX
        assert info["total_count"] <= STORED


@SETTINGS
@given(
    raw=st.lists(
        st.one_of(
            st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
            st.sampled_from(["&", "=", "%00", "%ZZ", "%ff%fe", "filters=", "filters.value=", "filters[0][key]=",
                             "per_page=", "page=", "[", "]", ".", "%5B", "%22", "+"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_list_never_fails_on_a_raw_query_string(setup: tuple[httpx.Client, str], raw: str) -> None:
    api, url = setup
    _check_shape(api.get(f"{url}?{raw}"))


@SETTINGS
@given(query=queries)
def test_rejected_delete_deletes_nothing(
    twin: Any, setup: tuple[httpx.Client, str], query: list[tuple[str, str]]
) -> None:
    api, url = setup
    before = count_logs(twin.context.db, twin.account_id, "logs-properties")
    response = api.delete(url, params=query)
    _check_shape(response)
    if response.status_code == 400:
        assert count_logs(twin.context.db, twin.account_id, "logs-properties") == before
    else:
        assert response.json() == {"success": True}
        _top_up(twin, "logs-properties")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
patch_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"feedback": json_values, "score": json_values, "metadata": json_values}),
)


@SETTINGS
@given(body=patch_bodies)
def test_rejected_patch_changes_nothing(twin: Any, setup: tuple[httpx.Client, str], body: Any) -> None:
    api, url = setup
    log_id = api.get(url, params={"per_page": 1}).json()["result"][0]["id"]
    before = api.get(f"{url}/{log_id}").json()["result"]
    by_id = {"filters": json.dumps([{"key": "id", "operator": "eq", "value": [log_id]}])}
    response = api.patch(f"{url}/{log_id}", content=json.dumps(body))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:  # 400 (Cloudflare's 7001) is not among the operation's declared statuses
        path = response.request.url.path
        assert SPEC.response_violations("PATCH", path, 200, response.content) == []
    if response.status_code == 400:
        assert response.json()["errors"][0]["code"] == 7001
        assert api.get(f"{url}/{log_id}").json()["result"] == before
    assert api.get(url, params=by_id).json()["result_info"]["total_count"] == 1


valid_filters = st.lists(
    st.one_of(
        st.tuples(st.just("provider"), st.sampled_from(["eq", "neq"]),
                  st.lists(st.sampled_from(["openai", "anthropic", "google-ai-studio"]), min_size=1, max_size=2)),
        st.tuples(st.just("tokens_in"), st.sampled_from(["lt", "gt"]), st.integers(0, 2000).map(lambda n: [n])),
        st.tuples(st.just("success"), st.just("eq"), st.booleans().map(lambda b: [b])),
        st.tuples(st.just("metadata.value"), st.sampled_from(["eq", "neq"]),
                  st.lists(st.sampled_from(["search", "support", "billing"]), min_size=1, max_size=2)),
        st.tuples(
            st.just("model"), st.just("contains"), st.sampled_from(["gpt", "claude", "flash"]).map(lambda m: [m])
        ),
    ),
    min_size=1,
    max_size=3,
)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def test_the_twin_reads_exactly_the_schemas_filter_keys_and_operators() -> None:
    from cftwin.logs import filters

    assert set(filters.FILTER_KEYS) == set(FILTER_KEYS) and set(filters.OPERATORS) == set(OPERATORS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(items=valid_filters)
def test_every_encoding_of_filters_means_the_same(
    setup: tuple[httpx.Client, str], items: list[tuple[str, str, list[Any]]]
) -> None:
    api, url = setup
    as_json = urlencode({"filters": json.dumps([{"key": k, "operator": o, "value": v} for k, o, v in items])})
    interleaved = urlencode(
        [pair for k, o, v in items for pair in
         [("filters.key", k), ("filters.operator", o), *[("filters.value", _text(x)) for x in v]]]
    )
    indexed = urlencode(
        [
            pair
            for i, (k, o, v) in enumerate(items)
            for pair in [
                (f"filters[{i}][key]", k),
                (f"filters[{i}][operator]", o),
                *[(f"filters[{i}][value][]", _text(x)) for x in v],
            ]
        ]
    )
    totals = set()
    for query in (as_json, interleaved, indexed):
        response = api.get(f"{url}?{query}&per_page=1")
        assert response.status_code == 200, (query, response.text)
        totals.add(response.json()["result_info"]["total_count"])
    assert len(totals) == 1
