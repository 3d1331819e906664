"""The twin checked against Cloudflare's official OpenAPI, not against our client.

Every operation of the documents in ``tests/openapi/`` that the twin serves (gateways, provider configs, logs,
the gateway URL; Secrets Store and token verification are not in them) is driven over real HTTP, once with a
request the documents allow and at least once with one they do not (or on a resource that does not exist).
Each answer's status must be one the operation declares and its body must match that status's schema;
``openapi_schema.schema_hook`` checks every exchange of this module's client.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cftwin.app import build_app
from cftwin.context import TwinContext, TwinOptions
from cftwin.db import Database
from openapi_schema import SPEC, Exchange, Operation, SchemaViolation, schema_hook
from starlette.routing import Match, Route

_GATEWAY = {"cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
            "rate_limiting_interval": 0, "rate_limiting_limit": 0, "rate_limiting_technique": "fixed"}


def _served(op: Operation) -> bool:
    """Whether the twin has a route of its own (not the catch-all 'No route') for ``op``."""
    app = build_app(TwinContext(db=Database(), options=TwinOptions()))
    path = "/client/v4" + op.template.replace("{account_id}", "a" * 32).replace("{provider}", "openai")
    path = path.replace("{gateway_id}", "gw").replace("{id}", "x1")
    scope = {"type": "http", "path": path, "method": op.method, "root_path": ""}
    for route in app.routes:
        if isinstance(route, Route) and route.path != "/client/v4/{rest:path}":
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return True
    return False


SERVED = [op for op in SPEC.operations if _served(op)]


def test_the_documents_cover_what_the_runbook_needs() -> None:
    # If a document went missing or lost operations, the tour below would check less without failing.
    ids = {op.operation_id for op in SERVED}
    assert len(SERVED) == 15, sorted(ids)
    assert {"aig-config-create-gateway", "aig-config-list-gateway-logs", "aig-config-create-providers",
            "aig-config-get-gateway-url"} <= ids
    assert not any(_served(op) for op in SPEC.operations if "evaluation" in op.template or "dataset" in op.template)


class Tour:
    """A client whose every exchange with an operation of the documents is recorded and validated."""

    def __init__(self, twin: Any) -> None:
        self.twin = twin
        self.record: list[Exchange] = []
        self.client = httpx.Client(base_url=f"{twin.server.api_base_url}/accounts/{twin.account_id}",
                                   headers=twin.api_headers, timeout=30,
                                   event_hooks={"response": [schema_hook(self.record, strict=False)]})

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        answer = self.client.request(method, path, **kwargs)
        assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        return answer.json()


@pytest.fixture(scope="module")
def tour(twin: Any) -> Iterator[list[Exchange]]:
    """Drive every served operation: a valid request, and an invalid one or one on a missing resource."""
    twin.reset()
    t = Tour(twin)
    gateway_id = "schema-" + secrets.token_hex(3)
    gateways = "/ai-gateway/gateways"
    store = t.call("POST", "/secrets_store/stores", 200, json={"name": "schema"})["result"]["id"]

    # gateways
    t.call("POST", gateways, 200, json={"id": gateway_id, **_GATEWAY, "authentication": True, "store_id": store})
    t.call("POST", gateways, 400, json={"id": "Not A Valid Id", **_GATEWAY})
    t.call("POST", gateways, 400, json={"id": "missing-fields"})
    t.call("GET", gateways, 200, params={"page": 1, "per_page": 20})
    t.call("GET", gateways, 400, params={"per_page": 0})
    t.call("GET", f"{gateways}/{gateway_id}", 200)
    t.call("GET", f"{gateways}/no-such-gateway", 404)
    t.call("PUT", f"{gateways}/{gateway_id}", 200, json={**_GATEWAY, "cache_ttl": 120})
    t.call("PUT", f"{gateways}/{gateway_id}", 400, json={"cache_ttl": -1})
    t.call("PUT", f"{gateways}/no-such-gateway", 404, json=_GATEWAY)

    # provider configs
    configs = f"{gateways}/{gateway_id}/provider_configs"
    key = twin.seed.provider_keys["openai"]
    config = t.call("POST", configs, 200, json={"provider_slug": "openai", "alias": "default",
                                                "default_config": True, "secret": key})["result"]
    t.call("POST", configs, 400, json={"provider_slug": "openai", "secret": key})
    t.call("GET", configs, 200, params={"per_page": 50})
    t.call("GET", configs, 400, params={"per_page": 0})
    t.call("PUT", f"{configs}/{config['id']}", 200, json={"secret": key})
    t.call("PUT", f"{configs}/{config['id']}", 400, json={})
    t.call("PUT", f"{configs}/no-such-config", 404, json={"secret": key})

    # the gateway URL
    t.call("GET", f"{gateways}/{gateway_id}/url/openai", 200)
    t.call("GET", f"{gateways}/{gateway_id}/url/not-a-provider", 400)

    # logs: one data-plane request makes one
    answer = httpx.post(f"{twin.server.gateway_base_url}/{twin.account_id}/{gateway_id}/openai/chat/completions",
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                        headers=twin.aig_headers, timeout=30)
    assert answer.status_code == 200, answer.text
    log_id = answer.headers["cf-aig-log-id"]
    logs = f"{gateways}/{gateway_id}/logs"
    t.call("GET", logs, 200, params={"per_page": 10, "order_by": "created_at", "direction": "desc"})
    t.call("GET", logs, 400, params={"order_by": "not-a-column"})
    t.call("GET", f"{logs}/{log_id}", 200)
    t.call("GET", f"{logs}/01NOSUCHLOG000000000000000", 404)
    t.call("PATCH", f"{logs}/{log_id}", 200, json={"feedback": 1, "score": 90, "metadata": {"checked": True}})
    t.call("PATCH", f"{logs}/01NOSUCHLOG000000000000000", 404, json={"feedback": 1})
    t.call("GET", f"{logs}/{log_id}/request", 200)
    t.call("GET", f"{logs}/01NOSUCHLOG000000000000000/request", 404)
    t.call("DELETE", logs, 400, params={"limit": 0})
    t.call("DELETE", logs, 200, params={"limit": 10})

    # deletes last
    t.call("DELETE", f"{configs}/{config['id']}", 200)
    t.call("DELETE", f"{configs}/{config['id']}", 404)
    t.call("DELETE", f"{gateways}/{gateway_id}", 200)
    t.call("DELETE", f"{gateways}/{gateway_id}", 404)
    t.client.close()
    yield t.record
    twin.reset()


@pytest.mark.parametrize("op", SERVED, ids=lambda op: op.operation_id)
def test_each_operation_answers_as_its_schema_says(tour: list[Exchange], op: Operation) -> None:
    mine = [e for e in tour if e.operation is op]
    statuses = sorted({e.status for e in mine})
    assert any(200 <= s < 300 for s in statuses), f"{op.operation_id}: no success driven ({statuses})"
    assert any(400 <= s < 500 for s in statuses), f"{op.operation_id}: no error driven ({statuses})"
    problems = [line for e in mine for line in e.response_violations]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", SERVED, ids=lambda op: op.operation_id)
def test_valid_requests_succeed_and_invalid_ones_are_refused(tour: list[Exchange], op: Operation) -> None:
    # The documents' own verdict on each request: one they allow got a 2xx (or a 404 for a missing resource);
    # one they refuse never got a 2xx, so the twin is not more lenient than the schema.
    for exchange in (e for e in tour if e.operation is op):
        if exchange.request_violations:
            assert exchange.status >= 400, (op.operation_id, exchange.request_violations)
        else:
            assert exchange.status < 300 or exchange.status in (400, 404), exchange


def test_a_violating_answer_fails() -> None:
    # The oracle itself: an answer without the required fields, or with a wrong type, is a violation.
    op = SPEC.operation("GET", "/client/v4/accounts/a/ai-gateway/gateways/my-gateway")
    assert op is not None and op.operation_id == "aig-config-fetch-gateway"
    good = (b'{"success": true, "result": {"id": "my-gateway", "rate_limiting_interval": null, '
            b'"rate_limiting_limit": null, "rate_limiting_technique": "fixed", "collect_logs": true, '
            b'"cache_ttl": null, "cache_invalidate_on_update": false, "created_at": "2026-01-01T00:00:00Z", '
            b'"modified_at": "2026-01-01T00:00:00.123456Z"}}')
    path = "/client/v4/accounts/a/ai-gateway/gateways/my-gateway"
    assert SPEC.response_violations("GET", path, 200, good) == []
    assert SPEC.response_violations("GET", path, 200, good.replace(b'"collect_logs": true, ', b""))
    assert SPEC.response_violations("GET", path, 200, good.replace(b'"fixed"', b'"bursty"'))
    assert SPEC.response_violations("GET", path, 200, good.replace(b"2026-01-01T00:00:00Z", b"yesterday"))
    assert SPEC.response_violations("GET", path, 200, good.replace(b'"my-gateway", "rate', b'"My Gw", "rate'))
    assert SPEC.response_violations("GET", path, 500, b"{}")  # an undeclared status
    hook = schema_hook()
    request = httpx.Request("GET", "http://twin" + path)
    with pytest.raises(SchemaViolation, match="aig-config-fetch-gateway"):
        hook(httpx.Response(200, content=b'{"success": true}', request=request))


def test_the_twins_gateway_id_rule_is_the_schemas_everywhere() -> None:
    # Every gateway id the documents describe (bodies, paths) has one rule; the twin's must be that rule.
    from cftwin import validation

    rules = set()
    for op in SPEC.operations:
        schemas = [p["schema"] for p in op.spec.get("parameters", []) if p["name"] in ("gateway_id", "id")]
        body = op.request_schema()
        if body is not None and "id" in body.get("properties", {}):
            schemas.append(body["properties"]["id"])
        rules |= {(s["pattern"], s.get("minLength"), s.get("maxLength")) for s in schemas if "pattern" in s}
    assert rules == {(validation.GATEWAY_ID_PATTERN.pattern, 1, validation.GATEWAY_ID_MAX)}
