"""The official ``anthropic`` SDK against the twin's gateway (``base_url=<gateway>/anthropic``), and a
Gemini ``generateContent`` call over httpx, on a BYOK gateway set up with the ``cloudflare`` SDK.

anthropic 2.x sends its key as ``Authorization: Bearer``; like any provider key on the request it
wins over the stored key, so a dummy key is refused by Anthropic and dropping the header lets the
stored key serve.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from byok_gateway import ByokGateway, create_byok_gateway


class AnthropicGateway(ByokGateway):
    def client(self, *, api_key: str = "unused", token: str | None = None) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=api_key, base_url=f"{self.base}/anthropic",
                                   default_headers=self.gateway_headers(token), max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def byok(twin: Any) -> Iterator[AnthropicGateway]:
    yield AnthropicGateway(twin, create_byok_gateway(twin, ("anthropic", "google-ai-studio")))


NO_AUTH = {"Authorization": anthropic.Omit()}
MESSAGES: list[Any] = [{"role": "user", "content": "Name one benefit of an AI gateway."}]


def test_the_sdks_bearer_key_wins_over_the_stored_key(byok: AnthropicGateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        byok.client().messages.create(model="claude-sonnet-4-5", max_tokens=32, messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                            "message": "invalid x-api-key"},
                                 "request_id": caught.value.response.json()["request_id"]}


def test_stored_key_serves_when_the_header_is_dropped(byok: AnthropicGateway) -> None:
    raw = byok.client().messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=32,
                                                          messages=MESSAGES, extra_headers=NO_AUTH)
    message = raw.parse()
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["cf-aig-log-id"]


def test_a_real_key_on_the_request_works(byok: AnthropicGateway) -> None:
    client = byok.client(api_key=byok.twin.seed.provider_keys["anthropic"])
    message = client.messages.create(model="claude-3-5-haiku-latest", max_tokens=3, messages=MESSAGES)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3


def test_streaming_events_and_final_usage(byok: AnthropicGateway) -> None:
    with byok.client().messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES,
                                       extra_headers=NO_AUTH) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(block.text for block in final.content if block.type == "text")
    assert final.usage.output_tokens == len(text.split(" "))
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_wrong_gateway_token_is_2009(byok: AnthropicGateway, token: str | None) -> None:
    headers: dict[str, str] = {} if token is None else {"cf-aig-authorization": f"Bearer {token}"}
    client = anthropic.Anthropic(api_key="unused", base_url=f"{byok.base}/anthropic", default_headers=headers,
                                 max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES, extra_headers=NO_AUTH)
    assert caught.value.response.json()["error"] == [{"code": 2009, "message": "Unauthorized"}]


def test_unknown_model_is_anthropics_404(byok: AnthropicGateway) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        byok.client().messages.create(model="claude-0", max_tokens=8, messages=MESSAGES, extra_headers=NO_AUTH)
    assert caught.value.response.json()["error"]["type"] == "not_found_error"


def test_gemini_generate_content_over_httpx(byok: AnthropicGateway) -> None:
    twin = byok.twin
    url = f"{byok.base}/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "Name one benefit of an AI gateway."}]}],
            "generationConfig": {"maxOutputTokens": 16}}
    stored = httpx.post(url, json=body, headers=twin.aig_headers, timeout=30)
    assert stored.status_code == 200, stored.text
    answer = stored.json()
    assert answer["candidates"][0]["content"]["role"] == "model"
    assert answer["usageMetadata"]["candidatesTokenCount"] <= 16
    wrong = httpx.post(url, json=body, headers={**twin.aig_headers, "x-goog-api-key": "wrong-" + secrets.token_hex(6)},
                       timeout=30)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    alias = httpx.post(url, json=body, headers={**twin.aig_headers, "cf-aig-byok-alias": "nope"}, timeout=30)
    assert alias.status_code == 400 and alias.json()["error"][0]["code"] == 2040
