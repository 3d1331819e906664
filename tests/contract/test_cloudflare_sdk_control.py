"""The official ``cloudflare`` SDK drives the twin's control plane exactly as a user would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudflare
import httpx
import pytest
from cftwin.seed import generated_seed
from cftwin.server import TwinProcess
from cloudflare import Cloudflare
from openapi_schema import SchemaCheckingTransport

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

REQUIRED: dict[str, Any] = {
    "cache_invalidate_on_update": False,
    "cache_ttl": 0,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
}


@pytest.fixture
def client(twin: TwinHandle) -> Iterator[Cloudflare]:
    twin.reset()
    # The official SDK over a transport that checks every answer against Cloudflare's OpenAPI.
    with Cloudflare(api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0,
                    http_client=httpx.Client(transport=SchemaCheckingTransport())) as sdk:
        yield sdk


def test_gateway_crud(twin: TwinHandle, client: Cloudflare) -> None:
    account = twin.account_id
    created = client.ai_gateway.create(account_id=account, id="sdk-gw", **REQUIRED, retry_max_attempts=2)
    assert created.id == "sdk-gw"
    assert created.authentication is True
    assert created.created_at.tzinfo is not None
    got = client.ai_gateway.get("sdk-gw", account_id=account)
    assert got.retry_max_attempts == 2
    updated = client.ai_gateway.update("sdk-gw", account_id=account, **{**REQUIRED, "cache_ttl": 120})
    assert updated.cache_ttl == 120
    assert updated.modified_at >= created.modified_at
    assert [g.id for g in client.ai_gateway.list(account_id=account)] == ["sdk-gw"]
    deleted = client.ai_gateway.delete("sdk-gw", account_id=account)
    assert deleted.id == "sdk-gw"
    with pytest.raises(cloudflare.NotFoundError) as missing:
        client.ai_gateway.get("sdk-gw", account_id=account)
    assert missing.value.status_code == 404


def test_auto_pagination_crosses_pages(twin: TwinHandle, client: Cloudflare) -> None:
    names = [f"page-gw-{i}" for i in range(5)]
    for name in names:
        client.ai_gateway.create(account_id=twin.account_id, id=name, **REQUIRED)
    seen = [g.id for g in client.ai_gateway.list(account_id=twin.account_id, per_page=2)]
    assert seen == names
    first = client.ai_gateway.list(account_id=twin.account_id, per_page=2)
    assert len(first.result) == 2
    assert [g.id for g in client.ai_gateway.list(account_id=twin.account_id, search="gw-3")] == ["page-gw-3"]


def test_sdk_error_types(twin: TwinHandle, client: Cloudflare) -> None:
    account = twin.account_id
    with pytest.raises(cloudflare.BadRequestError) as bad:
        client.ai_gateway.create(account_id=account, id="Not Valid", **REQUIRED)
    assert bad.value.status_code == 400
    assert isinstance(bad.value.body, dict)
    assert bad.value.body["errors"][0]["code"] == 7001
    assert bad.value.body["errors"][0]["path"] == ["body", "id"]
    with pytest.raises(cloudflare.BadRequestError):
        client.ai_gateway.create(account_id=account, id="no-auth", **REQUIRED, authentication=False)
    client.ai_gateway.create(account_id=account, id="dup", **REQUIRED)
    # Cloudflare's recorded GatewayAlreadyExists: code 7001 (the status, 400, is the twin's ASSUMPTION).
    with pytest.raises(cloudflare.BadRequestError) as dup:
        client.ai_gateway.create(account_id=account, id="dup", **REQUIRED)
    dup_body: Any = dup.value.body
    assert dup_body["errors"][0]["code"] == 7001
    assert "already exists" in dup_body["errors"][0]["message"]
    with pytest.raises(cloudflare.NotFoundError):
        client.ai_gateway.delete("never-made", account_id=account)
    with Cloudflare(api_token="wrong-token", base_url=twin.server.api_base_url, max_retries=0) as wrong:
        with pytest.raises(cloudflare.AuthenticationError):
            wrong.ai_gateway.list(account_id=account)
        with pytest.raises(cloudflare.AuthenticationError):
            wrong.user.tokens.verify()
        with pytest.raises(cloudflare.AuthenticationError):
            wrong.accounts.tokens.verify(account_id=account)
    with pytest.raises(cloudflare.BadRequestError) as unknown:
        client.ai_gateway.list(account_id="e" * 32)
    unknown_body: Any = unknown.value.body
    assert [e["code"] for e in unknown_body["errors"]] == [7003, 7000]
    admin = httpx.post(f"{twin.server.admin_url}/tokens",
                       json={"account_id": account, "permissions": ["ai_gateway:read"]},
                       headers=twin.server.admin_headers)
    reader_token = admin.json()["value"]
    with Cloudflare(api_token=reader_token, base_url=twin.server.api_base_url, max_retries=0) as reader:
        assert [g.id for g in reader.ai_gateway.list(account_id=account)] == ["dup"]
        with pytest.raises(cloudflare.PermissionDeniedError):
            reader.ai_gateway.create(account_id=account, id="denied", **REQUIRED)


def test_nested_gateway_settings_through_the_sdk(twin: TwinHandle, client: Cloudflare) -> None:
    account = twin.account_id
    rule: Any = {"limit": 50, "limit_type": "cost", "window": 86400,
                 "provider": {"mode": "filter", "values": ["openai"]}}
    # These settings are update-only: AIGatewayCreateParams has none of them (raw create to send one).
    with pytest.raises(cloudflare.BadRequestError) as on_create:
        client.post(f"/accounts/{account}/ai-gateway/gateways", cast_to=object,
                    body={"id": "nested-gw", **REQUIRED, "spend_limits": {"enabled": True, "rules": [rule]}})
    create_body: Any = on_create.value.body
    assert (create_body["errors"][0]["code"], create_body["errors"][0]["path"]) == (7001, ["body", "spend_limits"])
    client.ai_gateway.create(account_id=account, id="nested-gw", **REQUIRED)
    updated = client.ai_gateway.update("nested-gw", account_id=account, **REQUIRED,
                                       spend_limits={"enabled": True, "rules": [rule]},
                                       otel=[{"url": "https://otel.example/v1/traces", "headers": {}}])
    assert updated.spend_limits is not None and updated.spend_limits.rules
    assert updated.spend_limits.rules[0].limit_type == "cost"
    bad_guardrails: Any = {"prompt": {"s1": "ALLOW"}, "response": {}}
    with pytest.raises(cloudflare.BadRequestError) as refused:
        client.ai_gateway.update("nested-gw", account_id=account, **REQUIRED, guardrails=bad_guardrails)
    body: Any = refused.value.body
    error = body["errors"][0]
    assert (error["code"], error["path"]) == (7001, ["body", "guardrails", "prompt", "S1"])


def test_gateway_url(twin: TwinHandle, client: Cloudflare) -> None:
    client.ai_gateway.create(account_id=twin.account_id, id="url-gw", **REQUIRED)
    url = client.ai_gateway.urls.get("anthropic", account_id=twin.account_id, gateway_id="url-gw")
    assert url == f"{twin.server.gateway_base_url}/{twin.account_id}/url-gw/anthropic"


def test_byok_flow_with_secrets_store_and_provider_configs(twin: TwinHandle, client: Cloudflare) -> None:
    account = twin.account_id
    store = client.secrets_store.stores.create(account_id=account, name="default_secrets_store")
    assert client.secrets_store.stores.get(store.id, account_id=account).name == "default_secrets_store"
    assert [s.id for s in client.secrets_store.stores.list(account_id=account)] == [store.id]
    client.ai_gateway.create(account_id=account, id="byok", **REQUIRED, store_id=store.id)
    key = twin.seed.provider_keys["google-ai-studio"]
    config = client.ai_gateway.provider_configs.create(
        "byok", account_id=account, provider_slug="google-ai-studio", alias="default", default_config=True,
        secret=key,
    )
    assert config.secret_preview.endswith(key[-4:])
    assert key not in config.model_dump_json()
    assert config.rate_limit_period == 60
    configs = list(client.ai_gateway.provider_configs.list("byok", account_id=account))
    assert [c.id for c in configs] == [config.id]
    with pytest.raises(cloudflare.BadRequestError) as duplicate:
        client.ai_gateway.provider_configs.create(
            "byok", account_id=account, provider_slug="google-ai-studio", alias="default", default_config=True,
            secret=key,
        )
    duplicate_body: Any = duplicate.value.body
    assert duplicate_body["errors"][0]["code"] == 7001
    with pytest.raises(cloudflare.BadRequestError):
        client.ai_gateway.provider_configs.create(
            "byok", account_id=account, provider_slug="no-such-provider", alias="default", default_config=True,
            secret=key,
        )
    # The SDK has no update/delete for provider configs; the generic verbs reach them.
    path = f"/accounts/{account}/ai-gateway/gateways/byok/provider_configs/{config.id}"
    rotated: Any = client.put(path, body={"secret": key[:-4] + "wxyz"}, cast_to=object)
    assert rotated["result"]["secret_preview"].endswith("wxyz")
    removed: Any = client.delete(path, cast_to=object)
    assert removed["result"]["id"] == config.id
    assert list(client.ai_gateway.provider_configs.list("byok", account_id=account)) == []


def test_secrets_crud(twin: TwinHandle, client: Cloudflare) -> None:
    account = twin.account_id
    store = client.secrets_store.stores.create(account_id=account, name="s")
    value = generated_seed().api_token
    created = list(client.secrets_store.stores.secrets.create(
        store.id, account_id=account, body=[{"name": "my_secret", "value": value, "scopes": ["workers"]}]
    ))
    assert [s.name for s in created] == ["my_secret"]
    secret_id = created[0].id
    got = client.secrets_store.stores.secrets.get(secret_id, account_id=account, store_id=store.id)
    assert got is not None and got.status == "active"
    edited = client.secrets_store.stores.secrets.edit(
        secret_id, account_id=account, store_id=store.id, comment="rotated", scopes=["workers", "ai_gateway"]
    )
    assert edited is not None and edited.comment == "rotated"
    listed = client.secrets_store.stores.secrets.list(store.id, account_id=account, scopes=["ai_gateway"])
    assert [s.id for s in listed] == [secret_id]
    with pytest.raises(cloudflare.BadRequestError) as duplicate:
        client.secrets_store.stores.secrets.create(
            store.id, account_id=account, body=[{"name": "my_secret", "value": "v", "scopes": ["workers"]}]
        )
    duplicate_body: Any = duplicate.value.body
    assert duplicate_body["errors"][0]["code"] == 1003
    assert duplicate_body["errors"][0]["message"].startswith("secret_name_already_exists")
    with pytest.raises(cloudflare.ConflictError):
        client.secrets_store.stores.delete(store.id, account_id=account)
    client.secrets_store.stores.secrets.delete(secret_id, account_id=account, store_id=store.id)
    with pytest.raises(cloudflare.NotFoundError):
        client.secrets_store.stores.secrets.get(secret_id, account_id=account, store_id=store.id)
    quota = client.secrets_store.quota.get(account_id=account)
    assert quota is not None and quota.secrets is not None and quota.secrets.usage == 0
    client.secrets_store.stores.delete(store.id, account_id=account)
    assert list(client.secrets_store.stores.list(account_id=account)) == []


def test_token_verify(twin: TwinHandle, client: Cloudflare) -> None:
    # The seeded token is account-owned: it verifies on the account's endpoint, and the user endpoint
    # answers it 401 as Cloudflare does.
    verified = client.accounts.tokens.verify(account_id=twin.account_id)
    assert verified is not None and verified.status == "active"
    with pytest.raises(cloudflare.AuthenticationError):
        client.user.tokens.verify()


def test_serve_from_env_file_with_the_sdk(tmp_path: Path) -> None:
    seed = generated_seed()
    example = Path(__file__).resolve().parents[2] / ".dev.vars.example"
    values = seed.to_environ()
    lines = []
    for line in example.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if "=" in line and name in values else line)
    env_file = tmp_path / ".dev.vars"
    env_file.write_text("\n".join(lines) + "\n")
    # The environment wins over the file (as for the runbook): keep the child's free of these names.
    environ = {k: v for k, v in os.environ.items() if k not in values}
    with TwinProcess(env_file=env_file, env=environ) as twin, Cloudflare(
        api_token=seed.api_token, base_url=twin.api_base_url, max_retries=0
    ) as sdk:
        assert sdk.accounts.tokens.verify(account_id=seed.account_id) is not None
        created = sdk.ai_gateway.create(account_id=seed.account_id, id=seed.gateway_id, **REQUIRED)
        assert created.id == seed.gateway_id
        assert [g.id for g in sdk.ai_gateway.list(account_id=seed.account_id)] == [seed.gateway_id]
        run_only = Cloudflare(api_token=seed.aig_token, base_url=twin.api_base_url, max_retries=0)
        with run_only, pytest.raises(cloudflare.PermissionDeniedError):
            run_only.ai_gateway.list(account_id=seed.account_id)
