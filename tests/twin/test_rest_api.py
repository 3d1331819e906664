"""The REST API (``/client/v4/accounts/{a}/ai/...``) over real HTTP, with the official SDKs: auth and the
v4 envelope, the gateway chosen by ``cf-aig-gateway-id`` (else ``default``), BYOK vs Unified Billing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from cftwin.dataplane.billing import balance_usd

PROMPT = "Say something short about gateways."


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture(autouse=True)
def fresh(twin: Any) -> None:
    twin.reset()


def _api(twin: Any) -> str:
    return f"{twin.server.api_base_url}/accounts/{twin.account_id}"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()["result"]


def _gateway(twin: Any, client: httpx.Client, *, byok: dict[str, str] | None = None) -> str:
    """A gateway (with a store); ``byok``: provider slug -> key stored as its ``default`` provider config."""
    api, headers = _api(twin), twin.api_headers
    store = _ok(client.post(f"{api}/secrets_store/stores", json={"name": "runbook"}, headers=headers))["id"]
    gateway_id = "gw-" + secrets.token_hex(4)
    _ok(client.post(f"{api}/ai-gateway/gateways", headers=headers, json={
        "id": gateway_id, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
        "rate_limiting_interval": 0, "rate_limiting_limit": 0, "authentication": True, "store_id": store}))
    for slug, key in (byok or {}).items():
        _ok(client.post(f"{api}/ai-gateway/gateways/{gateway_id}/provider_configs", headers=headers,
                        json={"provider_slug": slug, "alias": "default", "default_config": True, "secret": key}))
    return gateway_id


def _paid_by(twin: Any, client: httpx.Client, gateway_id: str, log_id: str) -> list[bool]:
    """The ``wholesale`` values the logs API filters out for ``log_id`` (one of them matches)."""
    found = []
    for wholesale in (True, False):
        filters = [{"key": "id", "operator": "eq", "value": [log_id]},
                   {"key": "wholesale", "operator": "eq", "value": [wholesale]}]
        response = client.get(f"{_api(twin)}/ai-gateway/gateways/{gateway_id}/logs", headers=twin.api_headers,
                              params={"filters": json.dumps(filters)})
        if _ok(response):
            found.append(wholesale)
    return found


def _openai(twin: Any, token: str, gateway_id: str | None) -> openai.OpenAI:
    headers = {"cf-aig-gateway-id": gateway_id} if gateway_id else {}
    return openai.OpenAI(base_url=f"{_api(twin)}/ai/v1", api_key=token, default_headers=headers, max_retries=0)


def test_openai_sdk_gets_a_completion_paid_by_byok(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client, byok={"openai": twin.seed.provider_keys["openai"]})
    sdk = _openai(twin, twin.seed.aig_token, gateway_id)
    raw = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], max_tokens=8)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens <= 8
    log_id = raw.headers["cf-aig-log-id"]
    log = _ok(client.get(f"{_api(twin)}/ai-gateway/gateways/{gateway_id}/logs/{log_id}", headers=twin.api_headers))
    assert (log["provider"], log["model"], log["path"]) == ("openai", "gpt-4o-mini", "v1/chat/completions")
    assert log["tokens_out"] == completion.usage.completion_tokens and log["cost"] > 0
    assert _paid_by(twin, client, gateway_id, log_id) == [False]  # BYOK paid, not Unified Billing
    assert "cf-aig-billing" not in raw.headers  # no source names such a header


def test_google_author_reaches_google_ai_studio(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client, byok={"google-ai-studio": twin.seed.provider_keys["google-ai-studio"]})
    completion = _openai(twin, twin.seed.aig_token, gateway_id).chat.completions.create(
        model="google/gemini-2.5-flash", messages=[{"role": "user", "content": PROMPT}], max_tokens=8)
    assert completion.model == "gemini-2.5-flash" and completion.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as refused:  # the gateway's slug is not the REST API's author
        _openai(twin, twin.seed.aig_token, gateway_id).chat.completions.create(
            model="google-ai-studio/gemini-2.5-flash", messages=[{"role": "user", "content": PROMPT}])
    assert refused.value.body is not None and "google/gemini-2.5-flash" in str(refused.value.body)


def test_anthropic_sdk_gets_a_message(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client, byok={"anthropic": twin.seed.provider_keys["anthropic"]})
    sdk = anthropic.Anthropic(base_url=f"{_api(twin)}/ai", auth_token=twin.seed.aig_token, api_key=None,
                              default_headers={"cf-aig-gateway-id": gateway_id}, max_retries=0)
    message = sdk.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=8,
                                  messages=[{"role": "user", "content": PROMPT}])
    assert message.type == "message" and message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens <= 8


def test_responses_and_run_answer_in_their_own_shapes(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client, byok={"anthropic": twin.seed.provider_keys["anthropic"]})
    response = _openai(twin, twin.seed.aig_token, gateway_id).responses.create(
        model="anthropic/claude-sonnet-4-5", input=PROMPT, max_output_tokens=16)
    assert response.output_text and response.usage is not None and response.usage.output_tokens > 0
    run = client.post(f"{_api(twin)}/ai/run", json={"model": "anthropic/claude-sonnet-4-5", "input": PROMPT},
                      headers={"Authorization": f"Bearer {twin.seed.aig_token}", "cf-aig-gateway-id": gateway_id})
    envelope = run.json()
    assert run.status_code == 200 and envelope["success"] is True and envelope["errors"] == []
    assert envelope["result"]["response"] and envelope["result"]["usage"]["completion_tokens"] > 0


def test_token_without_ai_gateway_permission_is_refused(twin: Any, client: httpx.Client) -> None:
    admin = f"{twin.server.url}/__twin__/tokens"
    made = client.post(admin, json={"account_id": twin.account_id, "permissions": ["secrets_store:read"]},
                       headers=twin.server.admin_headers)
    assert made.status_code == 201, made.text
    reader = client.post(admin, json={"account_id": twin.account_id, "permissions": ["ai_gateway:read"]},
                         headers=twin.server.admin_headers)
    for token in (made.json()["value"], reader.json()["value"]):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _openai(twin, token, None).chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
        assert refused.value.status_code == 403
        assert refused.value.body is not None and "10000" in json.dumps(refused.value.response.json())
    with pytest.raises(openai.AuthenticationError):
        _openai(twin, "not-a-token", None).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])


def test_no_gateway_header_uses_the_default_gateway(twin: Any, client: httpx.Client) -> None:
    twin.context.options.unified_billing_credits_usd = 1.0
    raw = _openai(twin, twin.seed.aig_token, None).chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], max_tokens=8)
    assert raw.http_response.status_code == 200
    default = _ok(client.get(f"{_api(twin)}/ai-gateway/gateways/default", headers=twin.api_headers))
    assert default["id"] == "default" and default["authentication"] is True
    log = _ok(client.get(f"{_api(twin)}/ai-gateway/gateways/default/logs/{raw.headers['cf-aig-log-id']}",
                         headers=twin.api_headers))
    assert log["provider"] == "openai"
    with pytest.raises(openai.BadRequestError) as missing:
        _openai(twin, twin.seed.aig_token, "no-such-gateway").chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    assert missing.value.response.json()["errors"][0]["code"] == 2001


def test_unified_billing_without_credits_is_refused(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client)  # no BYOK key: Unified Billing would pay
    response = client.post(f"{_api(twin)}/ai/v1/chat/completions",
                           json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
                           headers={"Authorization": f"Bearer {twin.seed.aig_token}", "cf-aig-gateway-id": gateway_id})
    body = response.json()
    assert response.status_code == 402
    assert body["success"] is False and body["result"] is None and body["errors"][0]["code"] == 2021
    assert "credits" in body["errors"][0]["message"]


def test_unified_billing_with_credits_pays_and_is_logged_wholesale(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client)
    twin.context.options.unified_billing_credits_usd = 1.0
    raw = _openai(twin, twin.seed.aig_token, gateway_id).chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], max_tokens=8)
    log_id = raw.headers["cf-aig-log-id"]
    assert _paid_by(twin, client, gateway_id, log_id) == [True]
    cost = _ok(client.get(f"{_api(twin)}/ai-gateway/gateways/{gateway_id}/logs/{log_id}",
                          headers=twin.api_headers))["cost"]
    assert balance_usd(twin.context.db, twin.account_id, 1.0) == pytest.approx(1.0 - cost)


def test_workers_ai_and_unknown_authors_are_refused_clearly(twin: Any, client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {twin.seed.aig_token}"}
    for model, status in (("@cf/meta/llama-3.1-8b-instruct", 501), ("nobody/model", 400), ("gpt-4o-mini", 400)):
        response = client.post(f"{_api(twin)}/ai/v1/chat/completions", headers=headers,
                               json={"model": model, "messages": [{"role": "user", "content": PROMPT}]})
        assert response.status_code == status, response.text
        assert response.json()["success"] is False and response.json()["errors"][0]["message"]


def test_cf_aig_headers_apply_as_on_the_gateway(twin: Any, client: httpx.Client) -> None:
    gateway_id = _gateway(twin, client, byok={"openai": twin.seed.provider_keys["openai"]})
    url = f"{_api(twin)}/ai/v1/chat/completions"
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
    headers = {"Authorization": f"Bearer {twin.seed.aig_token}", "cf-aig-gateway-id": gateway_id,
               "cf-aig-cache-ttl": "120", "cf-aig-metadata": json.dumps({"aigw_run_id": "r1"})}
    first, second = client.post(url, json=body, headers=headers), client.post(url, json=body, headers=headers)
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert first.json()["choices"][0]["message"]["content"] == second.json()["choices"][0]["message"]["content"]
    log = _ok(client.get(f"{_api(twin)}/ai-gateway/gateways/{gateway_id}/logs/{first.headers['cf-aig-log-id']}",
                         headers=twin.api_headers))
    assert json.loads(log["metadata"]) == {"aigw_run_id": "r1"}
    unlogged = client.post(url, json=body, headers={**headers, "cf-aig-collect-log": "false",
                                                     "cf-aig-skip-cache": "true"})
    assert unlogged.status_code == 200 and "cf-aig-log-id" not in unlogged.headers
