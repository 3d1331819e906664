"""The emulated providers served directly (``/__providers__/{slug}/...``), each in its own format."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cftwin.faults import FaultSpec

PROMPT = "Explain, in a sentence or two, what an AI gateway does."


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture
def providers(twin: Any) -> Iterator[str]:
    yield twin.server.provider_base_url
    if twin.context.faults is not None:
        twin.context.faults.set_spec(FaultSpec())


def _openai(twin: Any, client: httpx.Client, base: str, body: dict[str, Any], key: str | None = None,
            ) -> httpx.Response:
    key = twin.seed.provider_keys["openai"] if key is None else key
    return client.post(f"{base}/openai/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def _anthropic(twin: Any, client: httpx.Client, base: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    sent = {"x-api-key": twin.seed.provider_keys["anthropic"], "anthropic-version": "2023-06-01", **headers}
    return client.post(f"{base}/anthropic/v1/messages", json=body, headers={k: v for k, v in sent.items() if v})


def _gemini(client: httpx.Client, base: str, model: str, body: dict[str, Any], *, key: str | None,
            action: str = "generateContent", version: str = "v1beta", query: str = "") -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return client.post(f"{base}/google-ai-studio/{version}/models/{model}:{action}{query}", json=body,
                       headers=headers)


# --- OpenAI ------------------------------------------------------------------------------------


def test_openai_answer_is_deterministic_and_counts_tokens(twin: Any, client: httpx.Client, providers: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
    first, second = (_openai(twin, client, providers, body) for _ in range(2))
    assert first.status_code == 200, first.text
    a, b = first.json(), second.json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    assert a["id"] != b["id"]
    assert a["usage"]["prompt_tokens"] == (len(PROMPT) + 3) // 4
    words = a["choices"][0]["message"]["content"].split(" ")
    assert a["usage"]["completion_tokens"] == len(words)
    assert a["usage"]["total_tokens"] == a["usage"]["prompt_tokens"] + a["usage"]["completion_tokens"]
    assert a["choices"][0]["finish_reason"] == "stop"
    other = _openai(twin, client, providers, {**body, "messages": [{"role": "user", "content": PROMPT + "!"}]})
    assert other.json()["choices"][0]["message"]["content"] != a["choices"][0]["message"]["content"]


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_openai_output_never_exceeds_the_limit(twin: Any, client: httpx.Client, providers: str,
                                               limit_field: str) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}], limit_field: 2}
    answer = _openai(twin, client, providers, body).json()
    assert answer["usage"]["completion_tokens"] == 2
    assert answer["choices"][0]["finish_reason"] == "length"


def test_openai_refusals_use_openais_format_and_never_echo_the_key(twin: Any, client: httpx.Client,
                                                                    providers: str) -> None:
    wrong = "sk-wrong" + secrets.token_hex(10)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    refused = _openai(twin, client, providers, body, key=wrong)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert wrong not in refused.text and wrong[-4:] not in refused.text
    missing = client.post(f"{providers}/openai/v1/chat/completions", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    unknown = _openai(twin, client, providers, {**body, "model": "gpt-9"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    no_messages = _openai(twin, client, providers, {"model": "gpt-4o"})
    assert no_messages.status_code == 400 and no_messages.json()["error"]["param"] == "messages"
    bad_json = client.post(f"{providers}/openai/v1/chat/completions", content=b"{not json",
                           headers={"Authorization": f"Bearer {twin.seed.provider_keys['openai']}"})
    assert bad_json.status_code == 400


def test_openai_stream_with_usage(twin: Any, client: httpx.Client, providers: str) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 5}
    response = _openai(twin, client, providers, body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(text.split(" ")) == 5
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


def test_openai_models_list(twin: Any, client: httpx.Client, providers: str) -> None:
    listed = client.get(f"{providers}/openai/v1/models",
                        headers={"Authorization": f"Bearer {twin.seed.provider_keys['openai']}"})
    assert "gpt-4o" in {m["id"] for m in listed.json()["data"]}


# --- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_message_and_its_refusals(twin: Any, client: httpx.Client, providers: str) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]}
    answer = _anthropic(twin, client, providers, body)
    assert answer.status_code == 200, answer.text
    message = answer.json()
    assert message["type"] == "message" and message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == (len("Be brief.\n" + PROMPT) + 3) // 4
    assert _anthropic(twin, client, providers, body, **{"anthropic-version": ""}).status_code == 400
    wrong = _anthropic(twin, client, providers, body, **{"x-api-key": "wrong-" + secrets.token_hex(6)})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    bearer = client.post(f"{providers}/anthropic/v1/messages", json=body, headers={
        "Authorization": f"Bearer {twin.seed.provider_keys['anthropic']}", "anthropic-version": "2023-06-01"})
    assert bearer.status_code == 200
    no_limit = _anthropic(twin, client, providers, {k: v for k, v in body.items() if k != "max_tokens"})
    assert no_limit.status_code == 400 and no_limit.json()["error"]["type"] == "invalid_request_error"
    unknown = _anthropic(twin, client, providers, {**body, "model": "claude-0"})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    system_role = _anthropic(twin, client, providers, {**body, "messages": [{"role": "system", "content": "x"}]})
    assert system_role.status_code == 400


def test_anthropic_stream_events(twin: Any, client: httpx.Client, providers: str) -> None:
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 4, "stream": True,
            "messages": [{"role": "user", "content": PROMPT}]}
    response = _anthropic(twin, client, providers, body)
    blocks = [b for b in response.text.split("\n\n") if b]
    names = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_delta") == 4
    delta = json.loads(blocks[-2].split("\n")[1].removeprefix("data: "))
    assert delta["usage"]["output_tokens"] == 4 and delta["delta"]["stop_reason"] == "max_tokens"


# --- Google AI Studio --------------------------------------------------------------------------


def test_gemini_generate_content_with_header_or_query_key(twin: Any, client: httpx.Client, providers: str) -> None:
    key = twin.seed.provider_keys["google-ai-studio"]
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}], "generationConfig": {"maxOutputTokens": 3}}
    for response in (
        _gemini(client, providers, "gemini-2.5-flash", body, key=key),
        _gemini(client, providers, "gemini-2.5-flash", body, key=None, version="v1", query=f"?key={key}"),
    ):
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["candidates"][0]["finishReason"] == "MAX_TOKENS"
        assert answer["usageMetadata"]["candidatesTokenCount"] == 3
        assert answer["usageMetadata"]["promptTokenCount"] == (len(PROMPT) + 3) // 4


def test_gemini_refusals(twin: Any, client: httpx.Client, providers: str) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    wrong = "AIzaWrong" + secrets.token_hex(8)
    invalid = _gemini(client, providers, "gemini-2.5-flash", body, key=wrong)
    assert invalid.status_code == 400
    assert invalid.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert wrong not in invalid.text
    assert _gemini(client, providers, "gemini-2.5-flash", body, key=None).status_code == 403
    key = twin.seed.provider_keys["google-ai-studio"]
    unknown = _gemini(client, providers, "gemini-0", body, key=key)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    empty = _gemini(client, providers, "gemini-2.5-flash", {"contents": []}, key=key)
    assert empty.status_code == 400 and empty.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_stream_sse_and_json_array(twin: Any, client: httpx.Client, providers: str) -> None:
    key = twin.seed.provider_keys["google-ai-studio"]
    body = {"contents": [{"parts": [{"text": PROMPT}]}]}
    sse = _gemini(client, providers, "gemini-2.0-flash", body, key=key, action="streamGenerateContent",
                  query="?alt=sse")
    assert sse.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(e.removeprefix("data: ")) for e in sse.text.split("\r\n\r\n") if e]
    array = _gemini(client, providers, "gemini-2.0-flash", body, key=key, action="streamGenerateContent").json()
    for chunks in (events, array):
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == len(text.split(" "))


# --- keys and faults ---------------------------------------------------------------------------


def test_admin_added_key_is_valid_and_revocation_is_immediate(twin: Any, client: httpx.Client,
                                                               providers: str) -> None:
    key = "added-" + secrets.token_hex(10)
    admin = f"{twin.server.url}/__twin__/providers/openai/keys"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert _openai(twin, client, providers, body, key=key).status_code == 401
    added = client.post(admin, json={"key": key}, headers=twin.server.admin_headers)
    assert added.status_code == 201 and key not in added.text
    assert _openai(twin, client, providers, body, key=key).status_code == 200
    revoked = client.request("DELETE", admin, json={"key": key}, headers=twin.server.admin_headers)
    assert revoked.json()["revoked"] is True
    assert _openai(twin, client, providers, body, key=key).status_code == 401
    nope = f"{twin.server.url}/__twin__/providers/nope/keys"
    assert client.post(nope, json={"key": key}, headers=twin.server.admin_headers).status_code == 404
    assert client.post(admin, json={}, headers=twin.server.admin_headers).status_code == 400


@pytest.mark.parametrize(("provider", "field"), [("openai", "error"), ("anthropic", "error"),
                                                  ("google-ai-studio", "error")])
def test_injected_5xx_comes_in_the_providers_format(twin: Any, client: httpx.Client, providers: str,
                                                    provider: str, field: str) -> None:
    twin.context.faults.set_spec(f"{provider}.5xx=1")
    key = twin.seed.provider_keys[provider]
    if provider == "openai":
        response = _openai(twin, client, providers, {"model": "gpt-4o", "messages": []})
        assert response.json()["error"]["type"] == "server_error"
    elif provider == "anthropic":
        response = _anthropic(twin, client, providers, {"model": "claude-sonnet-4-5", "max_tokens": 1,
                                                        "messages": []})
        assert response.json()["type"] == "error"
    else:
        response = _gemini(client, providers, "gemini-2.5-flash", {}, key=key)
        assert response.json()["error"]["code"] == response.status_code
    assert response.status_code in (500, 502, 503)
    assert field in response.json()


def test_unknown_provider_is_404(client: httpx.Client, providers: str) -> None:
    assert client.post(f"{providers}/mistral/v1/chat/completions", json={}).status_code == 404
