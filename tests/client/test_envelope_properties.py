"""Property tests: whatever the server sends, the client answers a result or an ``AigwError``, never a crash."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aigw.cloudflare import (
    CloudflareClient,
    LogColumns,
    RequestBudget,
    RetryPolicy,
    append_columns,
    parse_envelope,
)
from aigw.config import Secret
from aigw.errors import AigwError, CloudflareError
from aigw.gateway import classify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
error_items = st.fixed_dictionaries(
    {},
    optional={
        "code": st.integers() | st.text(max_size=5) | st.none() | st.booleans(),
        "message": json_values,
        "path": st.lists(json_scalars, max_size=3) | json_scalars,
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "success": st.booleans() | json_scalars,
        "errors": st.lists(error_items | json_values, max_size=3) | json_values,
        "error": st.lists(error_items, max_size=2) | json_values,
        "messages": json_values,
        "result": json_values,
        "result_info": st.dictionaries(st.sampled_from(["page", "per_page", "count", "total_count"]), json_values)
        | json_values,
        "code": json_values,
        "message": json_values,
    },
)
statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503]) | st.integers(
    100, 599
)
bodies = (
    envelopes.map(lambda e: json.dumps(e).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass") if t.isprintable() else b"<html>x")
)


@given(status=statuses, body=bodies, bare_ok=st.booleans())
@settings(max_examples=250, deadline=None)
def test_parse_envelope_answers_an_envelope_or_an_aigw_error(status: int, body: bytes, bare_ok: bool) -> None:
    try:
        env = parse_envelope(status, body, method="GET", path="/x", bare_ok=bare_ok)
    except AigwError as err:
        text = str(err)
        assert "\n" not in text and text
        if isinstance(err, CloudflareError):
            assert err.status == status or err.status in (400, status)
        return
    assert 200 <= env.status < 300


@given(status=statuses, body=bodies)
@settings(max_examples=200, deadline=None)
def test_gateway_classify_never_crashes(status: int, body: bytes) -> None:
    outcome, _code, _kind, excerpt = classify(status, body)
    assert outcome in {"ok", "provider_error", "gateway_error", "error"}
    assert "\n" not in excerpt and len(excerpt) <= 160
    if outcome == "ok":
        assert 200 <= status < 300


rows = json_scalars | st.dictionaries(st.sampled_from(["id", "model", "cost", "x", ""]), json_scalars, max_size=4)


@given(pages=st.lists(st.lists(rows, max_size=6), max_size=4))
@settings(max_examples=150, deadline=None)
def test_append_columns_stays_aligned_or_raises(pages: list[list[Any]]) -> None:
    columns = LogColumns()
    for rows in pages:
        try:
            append_columns(columns, rows, seen=set())
        except CloudflareError:
            assert any(not isinstance(r, dict) for r in rows)
            return
        assert {len(values) for values in columns.values()} == {columns.rows}


page_bodies = st.one_of(
    st.fixed_dictionaries(
        {"success": st.just(True), "result": st.lists(st.dictionaries(st.sampled_from(["id", "model", "cost"]),
                                                                      json_scalars), max_size=4)
         | json_values},
        optional={"result_info": st.dictionaries(st.sampled_from(["total_count", "page"]), json_values) | json_values},
    ).map(lambda e: json.dumps(e).encode()),
    bodies,
)


@given(responses=st.lists(st.tuples(statuses, page_bodies), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_paged_operations_answer_a_result_or_an_aigw_error(responses: list[tuple[int, bytes]]) -> None:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = queue.pop(0) if queue else (200, b'{"success": true, "result": []}')
        return httpx.Response(status, content=body)

    client = CloudflareClient(
        base_url="https://api.example.test/client/v4",
        api_token=Secret("hypothesis-token"),
        account_id="0" * 32,
        budget=RequestBudget(10_000, 1.0),
        retry=RetryPolicy(attempts=2, base_s=0.0, max_s=0.0),
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    for operation in (
        lambda: client.fetch_logs("gw", per_page=2, concurrency=2),
        lambda: client.list_logs("gw"),
        client.list_gateways,
    ):
        try:
            operation()
        except AigwError as err:
            assert "\n" not in str(err)
        except Exception as err:  # pragma: no cover - the property under test
            pytest.fail(f"unexpected {type(err).__name__}: {err}")
