"""The gateway data plane over real HTTP: auth, BYOK key resolution, cache, rate limit, retries,
timeouts, logs. State is set up through the control-plane API (v4) as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_schema import schema_hook

PROMPT = {"role": "user", "content": "Say something short about gateways."}


class Gateways:
    """Creates stores, gateways and provider configs through the twin's v4 API."""

    def __init__(self, twin: Any, client: httpx.Client) -> None:
        self.twin = twin
        self.client = client
        self.account = twin.account_id
        self.api = f"{twin.server.api_base_url}/accounts/{self.account}"
        self._store: str | None = None

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()["result"]

    def store(self) -> str:
        """The account's Secrets Store (one per account), created on first use."""
        if self._store is None:
            result = self._ok(self.client.post(f"{self.api}/secrets_store/stores", json={"name": "runbook"},
                                               headers=self.twin.api_headers))
            self._store = str(result["id"])
        return self._store

    def gateway(self, *, store: bool = True, **fields: Any) -> str:
        gateway_id = "gw-" + secrets.token_hex(4)
        body: dict[str, Any] = {
            "id": gateway_id, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
            "rate_limiting_interval": 0, "rate_limiting_limit": 0, "authentication": True,
        }
        if store:
            body["store_id"] = self.store()
        body.update(fields)
        self._ok(self.client.post(f"{self.api}/ai-gateway/gateways", json=body, headers=self.twin.api_headers))
        return gateway_id

    def byok(self, gateway_id: str, provider: str, key: str, alias: str = "default", default: bool = True) -> None:
        self._ok(self.client.post(
            f"{self.api}/ai-gateway/gateways/{gateway_id}/provider_configs",
            json={"provider_slug": provider, "alias": alias, "default_config": default, "secret": key},
            headers=self.twin.api_headers,
        ))

    def base(self, gateway_id: str) -> str:
        return f"{self.twin.server.gateway_base_url}/{self.account}/{gateway_id}"

    def log(self, gateway_id: str, log_id: str) -> dict[str, Any]:
        result = self._ok(self.client.get(f"{self.api}/ai-gateway/gateways/{gateway_id}/logs/{log_id}",
                                          headers=self.twin.api_headers))
        assert isinstance(result, dict)
        return result

    def log_count(self, gateway_id: str) -> int:
        response = self.client.get(f"{self.api}/ai-gateway/gateways/{gateway_id}/logs", params={"per_page": 5},
                                   headers=self.twin.api_headers)
        assert response.status_code == 200, response.text
        return int(response.json()["result_info"]["total_count"])


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # Every answer of an operation in Cloudflare's OpenAPI is checked against its schema (tests/openapi_schema.py).
    with httpx.Client(timeout=30, event_hooks={"response": [schema_hook(declared_only=True)]}) as c:
        yield c


@pytest.fixture
def gw(twin: Any, client: httpx.Client) -> Gateways:
    # Each test starts from the seed alone: gateways per account and stores per account are limited.
    twin.reset()
    return Gateways(twin, client)


def _chat(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [PROMPT], **extra}


def _aig(twin: Any, **headers: str) -> dict[str, str]:
    return {**twin.aig_headers, **headers}


# --- authentication ----------------------------------------------------------------------------

UNAUTHORIZED = {"success": False, "error": [{"code": 2009, "message": "Unauthorized"}], "name": "AiGatewayError",
                "httpCode": 401}


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "", "Basic abc"])
def test_missing_or_wrong_gateway_token_is_401_2009_and_not_logged(twin: Any, gw: Gateways, client: httpx.Client,
                                                                    header: str | None) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    headers = {} if header is None else {"cf-aig-authorization": header}
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert "cf-aig-log-id" not in response.headers
    assert gw.log_count(gateway_id) == 0


def test_a_token_without_run_permission_or_of_another_account_is_refused(twin: Any, gw: Gateways,
                                                                          client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    admin = f"{twin.server.url}/__twin__/tokens"
    reader = client.post(admin, json={"account_id": twin.account_id, "permissions": ["ai_gateway:read"]},
                         headers=twin.server.admin_headers).json()
    other = client.post(admin, json={"account_id": "f" * 32, "permissions": ["ai_gateway:run"]},
                        headers=twin.server.admin_headers).json()
    for token in (reader["value"], other["value"]):
        response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(),
                               headers={"cf-aig-authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"][0]["code"] == 2009


def test_run_is_its_own_permission(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    # AI Gateway Read, Write and Run are separate groups: the seeded API token (Read + Write, Secrets Store
    # Write, as .dev.vars.example says) is refused by the data plane; a token that also holds Run is served.
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    refused = client.post(url, json=_chat(), headers={"cf-aig-authorization": f"Bearer {twin.seed.api_token}"})
    assert (refused.status_code, refused.json()["error"][0]["code"]) == (401, 2009)
    admin = f"{twin.server.url}/__twin__/tokens"
    both = client.post(admin, json={"account_id": twin.account_id,
                                    "permissions": ["ai_gateway:write", "ai_gateway:run"]},
                       headers=twin.server.admin_headers).json()
    served = client.post(url, json=_chat(), headers={"cf-aig-authorization": f"Bearer {both['value']}"})
    assert served.status_code == 200, served.text


def test_unknown_gateway_is_refused_with_2001(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    response = client.post(gw.base("no-such-gateway") + "/openai/chat/completions", json=_chat(),
                           headers=_aig(twin))
    assert response.status_code == 400
    assert response.json()["error"][0]["code"] == 2001
    assert response.json()["name"] == "AiGatewayError"


def test_unknown_provider_path_is_no_route(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    response = client.post(gw.base(gateway_id) + "/not-a-provider/x", json={}, headers=_aig(twin))
    assert response.status_code == 400
    assert response.json()["error"][0]["code"] == 7003


# --- key resolution ----------------------------------------------------------------------------


def test_stored_byok_key_serves_each_provider_natively(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    for provider, key in twin.seed.provider_keys.items():
        gw.byok(gateway_id, provider, key)
    base = gw.base(gateway_id)
    openai = client.post(base + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert openai.status_code == 200, openai.text
    assert openai.json()["object"] == "chat.completion"
    anthropic = client.post(base + "/anthropic/v1/messages",
                            json={"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [PROMPT]},
                            headers=_aig(twin, **{"anthropic-version": "2023-06-01"}))
    assert anthropic.status_code == 200, anthropic.text
    assert anthropic.json()["type"] == "message"
    gemini = client.post(base + "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
                         json={"contents": [{"role": "user", "parts": [{"text": PROMPT["content"]}]}]},
                         headers=_aig(twin))
    assert gemini.status_code == 200, gemini.text
    assert gemini.json()["usageMetadata"]["promptTokenCount"] > 0
    for response in (openai, anthropic, gemini):
        assert response.headers["cf-aig-step"] == "0"
        assert response.headers["cf-aig-log-id"] == response.headers["cf-aig-request-id"]
    assert gw.log_count(gateway_id) == 3


def test_a_key_on_the_request_wins_over_the_stored_key(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    wrong = "wrong-" + secrets.token_hex(8)
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(),
                           headers=_aig(twin, Authorization=f"Bearer {wrong}"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert wrong not in response.text
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert log["success"] is False and log["status_code"] == 401


def test_an_empty_provider_header_counts_as_absent(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "anthropic", twin.seed.provider_keys["anthropic"])
    response = client.post(gw.base(gateway_id) + "/anthropic/v1/messages",
                           json={"model": "claude-3-5-haiku-latest", "max_tokens": 16, "messages": [PROMPT]},
                           headers=_aig(twin, **{"x-api-key": "", "anthropic-version": "2023-06-01"}))
    assert response.status_code == 200, response.text


def test_the_gateway_token_is_not_a_provider_key(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()  # no provider config: nothing to substitute
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You didn't provide an API key")


def test_no_key_at_all_gets_each_providers_own_refusal(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    base = gw.base(gateway_id)
    anthropic = client.post(base + "/anthropic/v1/messages",
                            json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [PROMPT]},
                            headers=_aig(twin, **{"anthropic-version": "2023-06-01"}))
    assert anthropic.status_code == 401
    assert anthropic.json()["error"]["type"] == "authentication_error"
    gemini = client.post(base + "/google-ai-studio/v1/models/gemini-2.5-flash:generateContent",
                         json={"contents": [{"parts": [{"text": "hi"}]}]}, headers=_aig(twin))
    assert gemini.status_code == 403
    assert gemini.json()["error"]["status"] == "PERMISSION_DENIED"


def test_byok_alias_header_picks_the_named_key(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    backup = "backup-" + secrets.token_hex(12)
    client.post(f"{twin.server.url}/__twin__/providers/openai/keys", json={"key": backup},
                headers=twin.server.admin_headers)
    gw.byok(gateway_id, "openai", "revoked-" + secrets.token_hex(8))  # default: not a valid key
    gw.byok(gateway_id, "openai", backup, alias="backup", default=False)
    url = gw.base(gateway_id) + "/openai/chat/completions"
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 401
    chosen = client.post(url, json=_chat(), headers=_aig(twin, **{"cf-aig-byok-alias": "backup"}))
    assert chosen.status_code == 200, chosen.text


def test_without_an_alias_header_only_the_default_alias_serves(twin: Any, gw: Gateways,
                                                               client: httpx.Client) -> None:
    # "AI Gateway uses the key with the default alias by default" (BYOK doc): a config marked
    # default_config under another alias is not a fallback.
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"], alias="prod", default=True)
    url = gw.base(gateway_id) + "/openai/chat/completions"
    no_key = client.post(url, json=_chat(), headers=_aig(twin))
    assert no_key.status_code == 401  # the provider's own answer to a request without a key
    assert no_key.json()["error"]["message"].startswith("You didn't provide an API key")
    named = client.post(url, json=_chat(), headers=_aig(twin, **{"cf-aig-byok-alias": "prod"}))
    assert named.status_code == 200, named.text
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"], alias="default", default=False)
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 200


def test_unknown_byok_alias_is_2040_naming_the_configured_aliases(twin: Any, gw: Gateways,
                                                                   client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "google-ai-studio", twin.seed.provider_keys["google-ai-studio"], alias="prod")
    response = client.post(gw.base(gateway_id) + "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
                           json={"contents": [{"parts": [{"text": "hi"}]}]},
                           headers=_aig(twin, **{"cf-aig-byok-alias": "x"}))
    assert response.status_code == 400
    body = response.json()
    assert body["error"][0] == {"code": 2040, "message": "Provider 'google-ai-studio' has no BYOK credential named "
                                "'x'. Configured aliases: 'prod'"}
    assert body["name"] == "AiGatewayError" and body["httpCode"] == 400
    assert gw.log(gateway_id, response.headers["cf-aig-log-id"])["status_code"] == 400


def test_compat_endpoint_ignores_the_alias_header_and_uses_the_default(twin: Any, gw: Gateways,
                                                                        client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "anthropic", twin.seed.provider_keys["anthropic"])
    response = client.post(gw.base(gateway_id) + "/compat/chat/completions",
                           json=_chat("anthropic/claude-3-sonnet"), headers=_aig(twin, **{"cf-aig-byok-alias": "zz"}))
    assert response.status_code == 200, response.text


def test_revoked_provider_key_fails_until_it_is_added_again(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    key = "rotating-" + secrets.token_hex(12)
    admin = f"{twin.server.url}/__twin__/providers/openai/keys"
    assert client.post(admin, json={"key": key}, headers=twin.server.admin_headers).status_code == 201
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", key)
    url = gw.base(gateway_id) + "/openai/chat/completions"
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 200
    revoked = client.request("DELETE", admin, json={"key": key}, headers=twin.server.admin_headers)
    assert revoked.json()["revoked"] is True
    assert key not in revoked.text
    refused = client.post(url, json=_chat(), headers=_aig(twin))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    client.post(admin, json={"key": key}, headers=twin.server.admin_headers)
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 200


# --- compat ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["google/gemini-2.5-flash", "gemini-2.5-flash", "workers-ai/@cf/x"])
def test_compat_refuses_a_model_without_an_emulated_provider_slug(twin: Any, gw: Gateways, client: httpx.Client,
                                                                   model: str) -> None:
    gateway_id = gw.gateway()
    response = client.post(gw.base(gateway_id) + "/compat/chat/completions", json=_chat(model), headers=_aig(twin))
    assert response.status_code == 400
    assert response.json()["error"][0]["code"] == 2005


@pytest.mark.parametrize("model", ["google-ai-studio/gemini-2.5-flash", "anthropic/claude-3-sonnet", "openai/gpt-4o"])
def test_compat_translates_each_provider_to_openai_format(twin: Any, gw: Gateways, client: httpx.Client,
                                                           model: str) -> None:
    gateway_id = gw.gateway()
    for provider, key in twin.seed.provider_keys.items():
        gw.byok(gateway_id, provider, key)
    response = client.post(gw.base(gateway_id) + "/compat/chat/completions",
                           json=_chat(model, max_tokens=3), headers=_aig(twin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert len(body["choices"][0]["message"]["content"].split(" ")) == 3
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert (log["provider"], log["model"]) == (model.split("/")[0], model.split("/", 1)[1])
    assert log["tokens_out"] == 3 and log["tokens_in"] == body["usage"]["prompt_tokens"]
    assert log["cost"] > 0


# --- cache -------------------------------------------------------------------------------------


def test_cache_miss_then_hit_without_calling_the_provider(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway(cache_ttl=300)
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    first = client.post(url, json=_chat(), headers=_aig(twin))
    assert first.status_code == 200
    assert first.headers["cf-aig-cache-status"] == "MISS"
    # Every upstream call fails from now on: a 200 can only come from the cache.
    twin.context.faults.set_spec("openai.5xx=1")
    second = client.post(url, json=_chat(), headers=_aig(twin))
    assert second.status_code == 200
    assert second.headers["cf-aig-cache-status"] == "HIT"
    assert second.json() == first.json()  # same id: the stored answer, not a new one
    hit_log = gw.log(gateway_id, second.headers["cf-aig-log-id"])
    assert hit_log["cached"] is True and hit_log["cost"] == 0
    assert gw.log(gateway_id, first.headers["cf-aig-log-id"])["cached"] is False
    skipped = client.post(url, json=_chat(), headers=_aig(twin, **{"cf-aig-skip-cache": "true"}))
    assert skipped.status_code >= 500
    other = client.post(url, json=_chat(temperature=0.5), headers=_aig(twin))
    assert other.headers["cf-aig-cache-status"] == "MISS" and other.status_code >= 500


def test_per_request_cache_ttl_and_custom_key(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()  # caching off at the gateway
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    plain = client.post(url, json=_chat(), headers=_aig(twin))
    assert "cf-aig-cache-status" not in plain.headers
    ttl = _aig(twin, **{"cf-aig-cache-ttl": "120"})
    assert client.post(url, json=_chat(), headers=ttl).headers["cf-aig-cache-status"] == "MISS"
    assert client.post(url, json=_chat(), headers=ttl).headers["cf-aig-cache-status"] == "HIT"
    keyed = _aig(twin, **{"cf-aig-cache-key": "k-" + secrets.token_hex(4)})
    assert client.post(url, json=_chat(), headers=keyed).headers["cf-aig-cache-status"] == "MISS"
    # The custom key alone decides: a different body under the same key is a hit.
    assert client.post(url, json=_chat(temperature=1), headers=keyed).headers["cf-aig-cache-status"] == "HIT"


def test_streaming_answers_are_not_cached(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway(cache_ttl=300)
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    for _ in range(2):
        response = client.post(url, json=_chat(stream=True), headers=_aig(twin))
        assert response.status_code == 200
        assert "cf-aig-cache-status" not in response.headers
        assert response.text.rstrip().endswith("data: [DONE]")


# --- rate limiting -----------------------------------------------------------------------------


@pytest.mark.parametrize("technique", ["fixed", "sliding"])
def test_rate_limit_past_the_limit_is_429_2003(twin: Any, gw: Gateways, client: httpx.Client, technique: str) -> None:
    # A one-hour window: the whole test runs inside one window (fixed windows start at multiples of it,
    # so the first three may straddle a boundary only at the top of an hour; sliding never resets).
    gateway_id = gw.gateway(rate_limiting_limit=3, rate_limiting_interval=3600, rate_limiting_technique=technique)
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    statuses = [client.post(url, json=_chat(), headers=_aig(twin)).status_code for _ in range(5)]
    if technique == "fixed" and statuses.count(200) > 3:
        pytest.skip("the fixed window rolled over mid-test (top of the hour)")
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.post(url, json=_chat(), headers=_aig(twin))
    assert limited.json() == {"success": False, "error": [{"code": 2003, "message": "Rate limited"}],
                              "name": "AiGatewayError", "httpCode": 429}


# --- logs --------------------------------------------------------------------------------------


def test_log_row_holds_what_the_request_did(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    metadata = {"run": "r1", "n": 3, "ok": True, "nested": {"x": 1}, "a": "1", "b": "2", "c": "3"}
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat("gpt-4o"),
                           headers=_aig(twin, **{"cf-aig-metadata": json.dumps(metadata),
                                                 "cf-aig-event-id": "evt-1"}))
    body = response.json()
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert log["provider"] == "openai" and log["model"] == "gpt-4o" and log["path"] == "chat/completions"
    assert log["success"] is True and log["cached"] is False and log["status_code"] == 200
    assert log["tokens_in"] == body["usage"]["prompt_tokens"]
    assert log["tokens_out"] == body["usage"]["completion_tokens"]
    expected_cost = (log["tokens_in"] * 2.50 + log["tokens_out"] * 10.00) / 1_000_000
    assert log["cost"] == pytest.approx(expected_cost)
    assert json.loads(log["metadata"]) == {"run": "r1", "n": 3, "ok": True, "a": "1", "b": "2"}
    assert log["step"] == 0
    assert log["response_content_type"].startswith("application/json")
    stored = client.get(f"{gw.api}/ai-gateway/gateways/{gateway_id}/logs/{log['id']}/response",
                        headers=twin.api_headers)
    assert stored.status_code == 200
    assert body["id"] in stored.text


def test_custom_cost_header_prices_the_log(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "anthropic", twin.seed.provider_keys["anthropic"])
    response = client.post(gw.base(gateway_id) + "/anthropic/v1/messages",
                           json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [PROMPT]},
                           headers=_aig(twin, **{"anthropic-version": "2023-06-01", "cf-aig-custom-cost":
                                                 '{"per_token_in": 0.001, "per_token_out": 0.01}'}))
    usage = response.json()["usage"]
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert log["custom_cost"] is True
    assert log["cost"] == pytest.approx(usage["input_tokens"] * 0.001 + usage["output_tokens"] * 0.01)


def test_collect_log_headers_override_the_gateway(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    quiet = gw.gateway(collect_logs=False)
    gw.byok(quiet, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(quiet) + "/openai/chat/completions"
    assert "cf-aig-log-id" not in client.post(url, json=_chat(), headers=_aig(twin)).headers
    forced = client.post(url, json=_chat(), headers=_aig(twin, **{"cf-aig-collect-log": "true"}))
    assert gw.log(quiet, forced.headers["cf-aig-log-id"])["success"] is True
    assert gw.log_count(quiet) == 1
    loud = gw.gateway()
    gw.byok(loud, "openai", twin.seed.provider_keys["openai"])
    off = client.post(gw.base(loud) + "/openai/chat/completions", json=_chat(),
                      headers=_aig(twin, **{"cf-aig-collect-log": "false"}))
    assert off.status_code == 200 and "cf-aig-log-id" not in off.headers
    assert gw.log_count(loud) == 0


def test_payload_is_not_kept_when_asked(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(),
                           headers=_aig(twin, **{"cf-aig-collect-log-payload": "false"}))
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert log["tokens_out"] > 0
    assert not log.get("request_head") and not log.get("response_head")


def test_the_stored_key_never_reaches_a_log(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    key = twin.seed.provider_keys["openai"]
    gw.byok(gateway_id, "openai", key)
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    for part in ("request", "response"):
        stored = client.get(f"{gw.api}/ai-gateway/gateways/{gateway_id}/logs/{response.headers['cf-aig-log-id']}/"
                            f"{part}", headers=twin.api_headers)
        assert key not in stored.text
    assert key not in json.dumps(gw.log(gateway_id, response.headers["cf-aig-log-id"]))


# --- retries, timeouts, faults -----------------------------------------------------------------


def _seed_failing_first_only() -> int:
    """A fault seed under which, at openai.5xx=0.5, the first draw fails and the second passes."""
    for seed in range(1000):
        rng = random.Random(seed)
        first = rng.random()
        rng.choice((500, 502, 503))
        second = rng.random()
        if first < 0.5 <= second:
            return seed
    raise AssertionError("no seed found")


@pytest.mark.parametrize(("attempts", "expected"), [("1", "5xx"), ("2", 200)])
def test_retries_on_provider_5xx(twin: Any, gw: Gateways, client: httpx.Client, attempts: str,
                                 expected: Any) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    twin.context.faults.set_spec(f"seed={_seed_failing_first_only()},openai.5xx=0.5")
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(),
                           headers=_aig(twin, **{"cf-aig-max-attempts": attempts, "cf-aig-retry-delay": "0"}))
    if expected == 200:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code in (500, 502, 503)
        assert response.json()["error"]["type"] == "server_error"  # OpenAI's own body, passed through
        log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
        assert log["success"] is False and log["status_code"] == response.status_code


def test_gateway_retry_settings_apply_without_headers(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway(retry_max_attempts=2, retry_delay=0, retry_backoff="constant")
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    twin.context.faults.set_spec(f"seed={_seed_failing_first_only()},openai.5xx=0.5")
    response = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert response.status_code == 200, response.text


def test_request_timeout_gives_408_and_is_logged(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "anthropic", twin.seed.provider_keys["anthropic"])
    twin.context.options.provider_latency_ms = {"anthropic": 2000.0}
    response = client.post(gw.base(gateway_id) + "/anthropic/v1/messages",
                           json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [PROMPT]},
                           headers=_aig(twin, **{"anthropic-version": "2023-06-01", "cf-aig-request-timeout": "50"}))
    assert response.status_code == 408
    assert response.json()["name"] == "AiGatewayError"
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert log["success"] is False and log["status_code"] == 408


def test_injected_provider_429_passes_through_with_retry_after(twin: Any, gw: Gateways,
                                                               client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "google-ai-studio", twin.seed.provider_keys["google-ai-studio"])
    twin.context.faults.set_spec("google-ai-studio.429=1,google-ai-studio.retry_after=7")
    response = client.post(gw.base(gateway_id) + "/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
                           json={"contents": [{"parts": [{"text": "hi"}]}]}, headers=_aig(twin))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


# --- a burst -----------------------------------------------------------------------------------


def test_a_burst_of_1000_concurrent_requests_is_all_answered_and_logged(twin: Any, gw: Gateways) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "google-ai-studio", twin.seed.provider_keys["google-ai-studio"])
    url = gw.base(gateway_id) + "/compat/chat/completions"

    async def burst() -> list[tuple[int, str | None]]:
        semaphore = asyncio.Semaphore(50)
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as aclient:
            async def one(i: int) -> tuple[int, str | None]:
                async with semaphore:
                    response = await aclient.post(url, headers=twin.aig_headers, json={
                        "model": "google-ai-studio/gemini-2.5-flash",
                        "messages": [{"role": "user", "content": f"burst request {i}"}],
                    })
                    return response.status_code, response.headers.get("cf-aig-log-id")

            return await asyncio.gather(*(one(i) for i in range(1000)))

    results = asyncio.run(burst())
    assert [status for status, _ in results] == [200] * 1000
    log_ids = {log_id for _, log_id in results}
    assert len(log_ids) == 1000 and None not in log_ids
    assert gw.log_count(gateway_id) == 1000


# --- default gateway, universal endpoint -------------------------------------------------------


def test_default_gateway_is_created_by_the_first_authenticated_request(twin: Any, gw: Gateways,
                                                                        client: httpx.Client) -> None:
    url = gw.base("default") + "/openai/chat/completions"
    key = {"Authorization": f"Bearer {twin.seed.provider_keys['openai']}"}
    assert client.post(url, json=_chat(), headers=key).json()["error"][0]["code"] == 2001  # no token: not created
    response = client.post(url, json=_chat(), headers=_aig(twin, **key))
    assert response.status_code == 200, response.text
    created = client.get(f"{gw.api}/ai-gateway/gateways/default", headers=twin.api_headers).json()["result"]
    assert (created["authentication"], created["collect_logs"], created["cache_ttl"]) == (True, True, 0)
    assert gw.log_count("default") == 1


def _step(provider: str, endpoint: str, query: dict[str, Any], headers: dict[str, str] | None = None,
          **config: int) -> dict[str, Any]:
    step: dict[str, Any] = {"provider": provider, "endpoint": endpoint, "headers": headers or {}, "query": query}
    if config:
        step["config"] = config
    return step


def test_universal_endpoint_falls_back_on_timeout(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "anthropic", twin.seed.provider_keys["anthropic"])
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    twin.context.options.provider_latency_ms = {"anthropic": 2000.0}
    steps = [
        _step("anthropic", "v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [PROMPT]},
              {"anthropic-version": "2023-06-01"}, requestTimeout=50),
        _step("openai", "chat/completions", _chat()),
    ]
    response = client.post(gw.base(gateway_id), json=steps, headers=_aig(twin))
    assert response.status_code == 200, response.text
    assert response.headers["cf-aig-step"] == "1"
    assert response.json()["object"] == "chat.completion"
    log = gw.log(gateway_id, response.headers["cf-aig-log-id"])
    assert (log["provider"], log["step"], log["success"]) == ("openai", 1, True)


def test_universal_endpoint_primary_answers_and_last_failure_is_returned(twin: Any, gw: Gateways,
                                                                          client: httpx.Client) -> None:
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    good = _step("openai", "chat/completions", _chat())
    first = client.post(gw.base(gateway_id), json=[good, good], headers=_aig(twin))
    assert first.status_code == 200 and first.headers["cf-aig-step"] == "0"
    bad_key = {"Authorization": "Bearer wrong-" + secrets.token_hex(4)}
    failing = [_step("openai", "chat/completions", _chat(), bad_key),
               _step("openai", "chat/completions", _chat("gpt-0"))]
    last = client.post(gw.base(gateway_id), json=failing, headers=_aig(twin))
    assert last.status_code == 404 and last.headers["cf-aig-step"] == "1"
    assert last.json()["error"]["code"] == "model_not_found"
    stored = client.get(f"{gw.api}/ai-gateway/gateways/{gateway_id}/logs/{last.headers['cf-aig-log-id']}/request",
                        headers=twin.api_headers)
    assert stored.status_code == 200 and "gpt-0" in stored.text
    assert bad_key["Authorization"] not in stored.text  # the step's provider key is not logged
    assert client.post(gw.base(gateway_id), json={"nope": 1}, headers=_aig(twin)).status_code == 400
    assert client.post(gw.base(gateway_id), json=[good], headers={}).status_code == 401


def test_a_byok_secret_without_the_ai_gateway_scope_is_unavailable(twin: Any, gw: Gateways,
                                                                    client: httpx.Client) -> None:
    # Secrets Store hands a secret only to the services its scopes name: a BYOK secret re-scoped away
    # from ai_gateway is not one the gateway can read (2042), and no key reaches the provider.
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    store = gw.store()
    listed = client.get(f"{gw.api}/secrets_store/stores/{store}/secrets", params={"search": f"{gateway_id}_openai"},
                        headers=twin.api_headers).json()["result"]
    assert [s["name"] for s in listed] == [f"{gateway_id}_openai_default"]
    secret_url = f"{gw.api}/secrets_store/stores/{store}/secrets/{listed[0]['id']}"
    url = gw.base(gateway_id) + "/openai/chat/completions"
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 200

    rescoped = client.patch(secret_url, json={"scopes": ["workers"]}, headers=twin.api_headers)
    assert rescoped.status_code == 200, rescoped.text
    refused = client.post(url, json=_chat(), headers=_aig(twin))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"][0]["code"] == 2042

    client.patch(secret_url, json={"scopes": ["workers", "ai_gateway"]}, headers=twin.api_headers)
    assert client.post(url, json=_chat(), headers=_aig(twin)).status_code == 200
