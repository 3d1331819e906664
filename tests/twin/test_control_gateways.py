"""The twin's AI Gateway control plane over real HTTP: gateways, URLs, provider configs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cftwin.digests import sha256_hex
from cftwin.secrets_store.models import read_secret_digest
from openapi_schema import schema_hook

from tests.twin_support import gateway_body

if TYPE_CHECKING:
    from tests.conftest import TwinHandle


@pytest.fixture
def api(twin: TwinHandle) -> Iterator[httpx.Client]:
    twin.reset()
    # Every answer of an operation in Cloudflare's OpenAPI is checked against its schema (tests/openapi_schema.py).
    with httpx.Client(base_url=f"{twin.server.api_base_url}/accounts/{twin.account_id}",
                      headers=twin.api_headers, event_hooks={"response": [schema_hook(declared_only=True)]}) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    assert body["errors"], body
    first: dict[str, Any] = body["errors"][0]
    return first


def test_create_get_list_update_delete(api: httpx.Client) -> None:
    created = api.post("/ai-gateway/gateways", json=gateway_body("runbook-gw", retry_max_attempts=3))
    assert created.status_code == 200, created.text
    gateway = created.json()["result"]
    assert gateway["id"] == "runbook-gw"
    assert gateway["authentication"] is True
    assert gateway["retry_max_attempts"] == 3
    assert gateway["created_at"].endswith("Z") and "." in gateway["created_at"]
    assert created.json()["success"] is True

    fetched = api.get("/ai-gateway/gateways/runbook-gw").json()["result"]
    assert fetched == gateway

    updated = api.put(
        "/ai-gateway/gateways/runbook-gw",
        json={**gateway_body("ignored"), "cache_ttl": 300, "created_at": "2000-01-01T00:00:00Z"},
    )
    assert updated.status_code == 200, updated.text
    result = updated.json()["result"]
    assert result["cache_ttl"] == 300
    assert result["created_at"] == gateway["created_at"]
    assert result["retry_max_attempts"] == 3  # optional fields left out keep their values
    assert result["id"] == "runbook-gw"

    listed = api.get("/ai-gateway/gateways").json()
    assert [g["id"] for g in listed["result"]] == ["runbook-gw"]
    assert listed["result_info"]["total_count"] == 1

    deleted = api.delete("/ai-gateway/gateways/runbook-gw")
    assert deleted.status_code == 200
    assert deleted.json()["result"]["id"] == "runbook-gw"
    assert api.get("/ai-gateway/gateways/runbook-gw").status_code == 404


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (gateway_body("Bad Id"), ["body", "id"]),
        (gateway_body("x" * 65), ["body", "id"]),
        (gateway_body("a--b"), ["body", "id"]),
        ({k: v for k, v in gateway_body("gw").items() if k != "collect_logs"}, ["body", "collect_logs"]),
        (gateway_body("gw", cache_ttl=-1), ["body", "cache_ttl"]),
        (gateway_body("gw", collect_logs="yes"), ["body", "collect_logs"]),
        (gateway_body("gw", log_management=9999), ["body", "log_management"]),
        (gateway_body("gw", log_management=10000001), ["body", "log_management"]),
        (gateway_body("gw", retry_delay=5001), ["body", "retry_delay"]),
        (gateway_body("gw", retry_max_attempts=0), ["body", "retry_max_attempts"]),
        (gateway_body("gw", retry_max_attempts=6), ["body", "retry_max_attempts"]),
        (gateway_body("gw", retry_backoff="random"), ["body", "retry_backoff"]),
        (gateway_body("gw", rate_limiting_technique="leaky"), ["body", "rate_limiting_technique"]),
        (gateway_body("gw", log_management_strategy="KEEP"), ["body", "log_management_strategy"]),
        (gateway_body("gw", workers_ai_billing_mode="prepaid"), ["body", "workers_ai_billing_mode"]),
        (gateway_body("gw", store_id="0" * 32), ["body", "store_id"]),
        (gateway_body("gw", authentication=False), ["body", "authentication"]),
    ],
)
def test_create_validation(api: httpx.Client, body: dict[str, Any], path: list[str]) -> None:
    response = api.post("/ai-gateway/gateways", json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == 7001
    assert error["path"] == path
    assert api.get("/ai-gateway/gateways").json()["result"] == []  # nothing half-made


@pytest.mark.parametrize(
    ("body", "path"),
    [
        # Nested settings (update only), shaped as the SDKs' AIGatewayUpdateParams declare them.
        (gateway_body("gw", dlp={"enabled": "yes"}), ["body", "dlp", "action"]),
        (gateway_body("gw", dlp={"action": "DROP", "enabled": True, "profiles": []}), ["body", "dlp", "action"]),
        (gateway_body("gw", dlp={"enabled": True, "policies": [{"id": "p", "action": "FLAG", "check": ["BOTH"],
                                                                "enabled": True, "profiles": []}]}),
         ["body", "dlp", "policies", "0", "check", "0"]),
        (gateway_body("gw", guardrails={"prompt": {}}), ["body", "guardrails", "response"]),
        (gateway_body("gw", guardrails={"prompt": {"S1": "ALLOW"}, "response": {}}),
         ["body", "guardrails", "prompt", "S1"]),
        (gateway_body("gw", otel=[{"url": "https://otel.example"}]), ["body", "otel", "0", "headers"]),
        (gateway_body("gw", otel=[{"url": "https://o.example", "headers": {}, "content_type": "xml"}]),
         ["body", "otel", "0", "content_type"]),
        (gateway_body("gw", spend_limits={"rules": [{"limit": -1, "limitType": "cost", "window": 60}]}),
         ["body", "spend_limits", "rules", "0", "limit"]),
        (gateway_body("gw", spend_limits={"rules": [{"limit": 5, "limitType": "tokens", "window": 60}]}),
         ["body", "spend_limits", "rules", "0", "limitType"]),
        (gateway_body("gw", spend_limits={"rules": [{"limit": 5, "limitType": "cost"}]}),
         ["body", "spend_limits", "rules", "0", "window"]),
        (gateway_body("gw", spend_limits={"rules": [{"limit": 5, "limitType": "cost", "window": 60,
                                                     "metadata": {"team": {"mode": "filter"}}}]}),
         ["body", "spend_limits", "rules", "0", "metadata", "team", "values"]),
        (gateway_body("gw", spend_limits={"enabled": "on"}), ["body", "spend_limits", "enabled"]),
        (gateway_body("gw", stripe={"authorization": "x"}), ["body", "stripe", "usage_events"]),
    ],
)
def test_update_validates_nested_settings(api: httpx.Client, body: dict[str, Any], path: list[str]) -> None:
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    response = api.put("/ai-gateway/gateways/gw", json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["path"]) == (7001, path)
    stored = api.get("/ai-gateway/gateways/gw").json()["result"]
    assert stored.get(path[1]) is None  # nothing half-made


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dlp", {"action": "FLAG", "enabled": False, "profiles": []}),
        ("guardrails", {"prompt": {}, "response": {}}),
        ("otel", []),
        ("spend_limits", {"enabled": False}),
        ("stripe", {"authorization": "x", "usage_events": []}),
        ("log_classification", True),
        ("byok_only", False),
    ],
)
def test_create_refuses_update_only_fields(api: httpx.Client, field: str, value: Any) -> None:
    # The SDKs' AIGatewayCreateParams have none of these; only AIGatewayUpdateParams does.
    response = api.post("/ai-gateway/gateways", json=gateway_body("gw", **{field: value}))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["path"]) == (7001, ["body", field])
    assert api.get("/ai-gateway/gateways").json()["result"] == []
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    updated = api.put("/ai-gateway/gateways/gw", json=gateway_body("gw", **{field: value}))
    assert updated.status_code == 200, updated.text
    assert updated.json()["result"][field] == value


def test_nested_settings_of_the_documented_shape_round_trip(api: httpx.Client) -> None:
    settings: dict[str, Any] = {
        "dlp": {"enabled": True, "policies": [{"id": "pol", "action": "BLOCK", "check": ["REQUEST", "RESPONSE"],
                                               "enabled": True, "profiles": ["prof"]}]},
        "guardrails": {"prompt": {"P1": "FLAG", "S13": "BLOCK"}, "response": {}},
        "otel": [{"url": "https://otel.example/v1/traces", "headers": {"x-team": "a"}, "content_type": "protobuf"}],
        "spend_limits": {"enabled": True, "rules": [
            {"limit": 100, "limitType": "cost", "window": 604800, "technique": "sliding",
             "metadata": {"team": {"mode": "partition"}, "tier": {"mode": "filter", "values": ["1"]}},
             "provider": {"mode": "filter", "values": ["openai"]}}]},
        "stripe": {"authorization": "stripe-auth", "usage_events": [{"payload": "{}"}]},
    }
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    updated = api.put("/ai-gateway/gateways/gw", json=gateway_body("gw", **settings))
    assert updated.status_code == 200, updated.text
    result = updated.json()["result"]
    assert {k: result[k] for k in settings} == settings
    assert api.get("/ai-gateway/gateways/gw").json()["result"]["guardrails"] == settings["guardrails"]
    put = api.put("/ai-gateway/gateways/gw", json=gateway_body("gw", dlp={"action": "FLAG", "enabled": False,
                                                                          "profiles": []}))
    assert put.status_code == 200, put.text
    assert put.json()["result"]["dlp"] == {"action": "FLAG", "enabled": False, "profiles": []}


def test_authentication_cannot_be_turned_off(api: httpx.Client) -> None:
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    response = api.put("/ai-gateway/gateways/gw", json=gateway_body("gw", authentication=False))
    assert response.status_code == 400
    assert error_of(response)["path"] == ["body", "authentication"]
    assert api.get("/ai-gateway/gateways/gw").json()["result"]["authentication"] is True


def test_put_requires_the_required_set(api: httpx.Client) -> None:
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    body = {k: v for k, v in gateway_body("gw").items() if k != "rate_limiting_limit"}
    response = api.put("/ai-gateway/gateways/gw", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["path"]) == (7001, ["body", "rate_limiting_limit"])


def test_not_found_and_bad_json(api: httpx.Client) -> None:
    for response in (
        api.get("/ai-gateway/gateways/missing"),
        api.put("/ai-gateway/gateways/missing", json=gateway_body("missing")),
        api.delete("/ai-gateway/gateways/missing"),
        api.get("/ai-gateway/gateways/missing/url/openai"),
        api.get("/ai-gateway/gateways/missing/provider_configs"),
    ):
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == 7002
    bad = api.post("/ai-gateway/gateways", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert error_of(bad)["code"] == 7001


def test_duplicate_id_conflicts(api: httpx.Client) -> None:
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    again = api.post("/ai-gateway/gateways", json=gateway_body("gw", cache_ttl=60))
    # Cloudflare's recorded GatewayAlreadyExists is code 7001 (the HTTP status 400 is the twin's ASSUMPTION).
    assert again.status_code == 400
    error = error_of(again)
    assert error["code"] == 7001
    assert "already exists" in error["message"]
    assert api.get("/ai-gateway/gateways/gw").json()["result"]["cache_ttl"] == 0


def test_gateway_quota(twin: TwinHandle, api: httpx.Client) -> None:
    twin.context.options.gateway_limit = 2
    for name in ("gw-a", "gw-b"):
        assert api.post("/ai-gateway/gateways", json=gateway_body(name)).status_code == 200
    over = api.post("/ai-gateway/gateways", json=gateway_body("gw-c"))
    assert over.status_code == 400
    assert error_of(over)["code"] == 7001  # no source names a code of its own: the generic one
    assert "Maximum number of gateways (2)" in error_of(over)["message"]
    api.delete("/ai-gateway/gateways/gw-a")
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw-c")).status_code == 200


def test_pagination_and_search(api: httpx.Client) -> None:
    names = [f"gw-{i}" for i in range(5)] + ["other"]
    for name in names:
        assert api.post("/ai-gateway/gateways", json=gateway_body(name)).status_code == 200
    pages = [api.get("/ai-gateway/gateways", params={"per_page": 2, "page": p}).json() for p in (1, 2, 3, 4)]
    assert [g["id"] for page in pages for g in page["result"]] == names
    assert pages[3]["result"] == []
    assert pages[0]["result_info"] == {"page": 1, "per_page": 2, "count": 2, "total_count": 6}
    found = api.get("/ai-gateway/gateways", params={"search": "gw-"}).json()["result"]
    assert [g["id"] for g in found] == names[:5]
    for bad in ({"per_page": 0}, {"per_page": 101}, {"page": 0}, {"per_page": "x"}):
        response = api.get("/ai-gateway/gateways", params=bad)
        assert response.status_code == 400
        name = next(iter(bad))
        assert error_of(response)["path"] == ["query", name]


def test_gateway_url_points_at_the_twin(twin: TwinHandle, api: httpx.Client) -> None:
    api.post("/ai-gateway/gateways", json=gateway_body("gw"))
    response = api.get("/ai-gateway/gateways/gw/url/google-ai-studio")
    assert response.json()["result"] == f"{twin.server.gateway_base_url}/{twin.account_id}/gw/google-ai-studio"
    unknown = api.get("/ai-gateway/gateways/gw/url/not-a-provider")
    assert unknown.status_code == 400
    assert error_of(unknown)["path"] == ["path", "provider"]


def _gateway_with_store(api: httpx.Client, gateway_id: str = "gw") -> str:
    store = api.post("/secrets_store/stores", json={"name": "main"}).json()["result"]
    assert api.post("/ai-gateway/gateways", json=gateway_body(gateway_id, store_id=store["id"])).status_code == 200
    store_id: str = store["id"]
    return store_id


def test_provider_config_lifecycle(twin: TwinHandle, api: httpx.Client) -> None:
    store_id = _gateway_with_store(api)
    key = twin.seed.provider_keys["openai"]
    created = api.post("/ai-gateway/gateways/gw/provider_configs",
                       json={"provider_slug": "openai", "alias": "default", "default_config": True, "secret": key})
    assert created.status_code == 200, created.text
    config = created.json()["result"]
    assert key not in created.text
    assert config["secret_preview"] == "****" + key[-4:]
    assert config["rate_limit_period"] == 60
    assert config["gateway_id"] == "gw"
    # The key is stored as the secret the gateway looks up at run time.
    assert read_secret_digest(twin.context.db, twin.account_id, store_id, "gw_openai_default") == sha256_hex(key)
    secret = api.get(f"/secrets_store/stores/{store_id}/secrets/{config['secret_id']}").json()["result"]
    assert secret["name"] == "gw_openai_default"
    assert secret["scopes"] == ["ai_gateway"]

    listed = api.get("/ai-gateway/gateways/gw/provider_configs").json()
    assert [c["id"] for c in listed["result"]] == [config["id"]]
    assert api.get("/ai-gateway/gateways/gw/provider_configs", params={"page": 2}).json()["result"] == []

    duplicate = api.post("/ai-gateway/gateways/gw/provider_configs",
                         json={"provider_slug": "openai", "alias": "default", "default_config": False, "secret": key})
    assert (duplicate.status_code, error_of(duplicate)["code"]) == (400, 7001)
    assert "already exists" in error_of(duplicate)["message"]

    rotated_key = key[:-6] + "rotate"
    rotated = api.put(f"/ai-gateway/gateways/gw/provider_configs/{config['id']}", json={"secret": rotated_key})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["result"]["secret_preview"] == "****tate"
    digest = read_secret_digest(twin.context.db, twin.account_id, store_id, "gw_openai_default")
    assert digest == sha256_hex(rotated_key)

    deleted = api.delete(f"/ai-gateway/gateways/gw/provider_configs/{config['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["result"]["id"] == config["id"]
    assert api.get("/ai-gateway/gateways/gw/provider_configs").json()["result"] == []
    assert api.delete(f"/ai-gateway/gateways/gw/provider_configs/{config['id']}").status_code == 404


def test_provider_config_with_secret_id(twin: TwinHandle, api: httpx.Client) -> None:
    store_id = _gateway_with_store(api)
    key = twin.seed.provider_keys["anthropic"]
    secret = api.post(f"/secrets_store/stores/{store_id}/secrets",
                      json=[{"name": "gw_anthropic_default", "value": key, "scopes": ["ai_gateway"]}])
    secret_id = secret.json()["result"][0]["id"]
    created = api.post("/ai-gateway/gateways/gw/provider_configs",
                       json={"provider_slug": "anthropic", "alias": "default", "default_config": True,
                             "secret_id": secret_id})
    assert created.status_code == 200, created.text
    assert created.json()["result"]["secret_id"] == secret_id
    assert created.json()["result"]["secret_preview"] == "****" + key[-4:]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"alias": "default", "default_config": True, "secret": "k" * 20}, ["body", "provider_slug"]),
        ({"provider_slug": "nope", "alias": "default", "default_config": True, "secret": "k" * 20},
         ["body", "provider_slug"]),
        ({"provider_slug": "openai", "alias": "has space", "default_config": True, "secret": "k" * 20},
         ["body", "alias"]),
        ({"provider_slug": "openai", "alias": "default", "default_config": "yes", "secret": "k" * 20},
         ["body", "default_config"]),
        ({"provider_slug": "openai", "alias": "default", "default_config": True}, ["body", "secret"]),
        ({"provider_slug": "openai", "alias": "default", "default_config": True, "secret_id": "0" * 32},
         ["body", "secret_id"]),
        ({"provider_slug": "openai", "alias": "default", "default_config": True, "secret": "k" * 20,
          "rate_limit": -1}, ["body", "rate_limit"]),
    ],
)
def test_provider_config_validation(api: httpx.Client, body: dict[str, Any], path: list[str]) -> None:
    _gateway_with_store(api)
    response = api.post("/ai-gateway/gateways/gw/provider_configs", json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == 7001
    assert error_of(response)["path"] == path
    assert api.get("/ai-gateway/gateways/gw/provider_configs").json()["result"] == []


def test_provider_config_needs_a_store(twin: TwinHandle, api: httpx.Client) -> None:
    api.post("/ai-gateway/gateways", json=gateway_body("gw"))
    response = api.post("/ai-gateway/gateways/gw/provider_configs",
                        json={"provider_slug": "openai", "alias": "default", "default_config": True,
                              "secret": twin.seed.provider_keys["openai"]})
    assert response.status_code == 400
    assert "store_id" in error_of(response)["message"]
    assert twin.seed.provider_keys["openai"] not in response.text


def test_deleting_a_gateway_removes_its_provider_configs(twin: TwinHandle, api: httpx.Client) -> None:
    _gateway_with_store(api)
    api.post("/ai-gateway/gateways/gw/provider_configs",
             json={"provider_slug": "openai", "alias": "default", "default_config": True, "secret": "k" * 20})
    assert api.delete("/ai-gateway/gateways/gw").status_code == 200
    api.post("/ai-gateway/gateways", json=gateway_body("gw"))
    assert api.get("/ai-gateway/gateways/gw/provider_configs").json()["result"] == []


def test_bad_requests_of_list_and_url_operations_carry_an_empty_result_object(api: httpx.Client) -> None:
    # The spec's 400 for these operations requires ``result`` (an object), unlike create/update's 7001.
    assert api.post("/ai-gateway/gateways", json=gateway_body("gw")).status_code == 200
    for response in (
        api.get("/ai-gateway/gateways", params={"per_page": 101}),
        api.get("/ai-gateway/gateways/gw/provider_configs", params={"page": 0}),
        api.get("/ai-gateway/gateways/gw/url/not-a-provider"),
    ):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["success"] is False and body["errors"][0]["message"]
        assert body["result"] == {}
    created = api.post("/ai-gateway/gateways", json=gateway_body("Bad Id"))
    assert created.status_code == 400 and created.json()["result"] is None
