"""The official ``openai`` SDK against the twin's gateway, exactly as a user points it at Cloudflare.

The BYOK gateway is set up with the official ``cloudflare`` SDK (store, gateway with ``store_id``,
provider configs). openai 3.x always sends ``Authorization: Bearer <api_key>``: on a BYOK gateway
that header is a provider key on the request, so it wins over the stored key and OpenAI refuses
the dummy, as on Cloudflare. Dropping the header per request lets the stored key serve.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from byok_gateway import ByokGateway, create_byok_gateway

DUMMY_KEY = "unused"  # what users pass when the gateway holds the real key


class OpenAIGateway(ByokGateway):
    def client(self, path: str, *, api_key: str = DUMMY_KEY, token: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(api_key=api_key, base_url=f"{self.base}/{path}",
                             default_headers=self.gateway_headers(token), max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def byok(twin: Any) -> Iterator[OpenAIGateway]:
    yield OpenAIGateway(twin, create_byok_gateway(twin, twin.seed.provider_keys))


NO_AUTH = {"Authorization": openai.Omit()}
MESSAGES: list[Any] = [{"role": "user", "content": "Name one benefit of an AI gateway."}]


def test_the_sdks_dummy_key_wins_over_the_stored_key_and_openai_refuses_it(byok: OpenAIGateway) -> None:
    client = byok.client("openai")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_dropping_the_authorization_header_lets_the_stored_key_serve(byok: OpenAIGateway) -> None:
    client = byok.client("openai")
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=NO_AUTH)
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_a_real_key_on_the_request_also_works(byok: OpenAIGateway) -> None:
    client = byok.client("openai", api_key=byok.twin.seed.provider_keys["openai"])
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["cf-aig-step"] == "0"
    assert raw.headers["cf-aig-log-id"]
    assert raw.parse().model == "gpt-4o"


@pytest.mark.parametrize("model", ["google-ai-studio/gemini-2.5-flash", "anthropic/claude-3-sonnet",
                                   "openai/gpt-4o"])
def test_compat_endpoint_serves_every_provider(byok: OpenAIGateway, model: str) -> None:
    client = byok.client("compat")
    completion = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=4, extra_headers=NO_AUTH)
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_compat_refuses_the_google_spelling(byok: OpenAIGateway) -> None:
    client = byok.client("compat")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="google/gemini-2.5-flash", messages=MESSAGES, extra_headers=NO_AUTH)
    # The SDK keeps the body's "error" member as .body: here Cloudflare's list of items.
    assert caught.value.body == caught.value.response.json()["error"]
    assert caught.value.response.json()["error"][0]["code"] == 2005
    assert caught.value.response.json()["name"] == "AiGatewayError"


@pytest.mark.parametrize("path", ["openai", "compat"])
def test_streaming_with_usage(byok: OpenAIGateway, path: str) -> None:
    client = byok.client(path)
    model = "gpt-4o-mini" if path == "openai" else "anthropic/claude-sonnet-4-5"
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}, extra_headers=NO_AUTH)
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text and finish == "stop"
    assert usage is not None and usage.completion_tokens == len(text.split(" "))


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_wrong_gateway_token_is_2009(byok: OpenAIGateway, token: str | None) -> None:
    headers: dict[str, str] = {} if token is None else {"cf-aig-authorization": f"Bearer {token}"}
    client = openai.OpenAI(api_key=DUMMY_KEY, base_url=f"{byok.base}/compat", default_headers=headers, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES, extra_headers=NO_AUTH)
    assert caught.value.response.json() == {"success": False, "error": [{"code": 2009, "message": "Unauthorized"}],
                                            "name": "AiGatewayError", "httpCode": 401}


def test_unknown_model_is_openais_404(byok: OpenAIGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        byok.client("openai").chat.completions.create(model="gpt-0", messages=MESSAGES, extra_headers=NO_AUTH)
    assert caught.value.code == "model_not_found"


def test_the_provider_served_directly(byok: OpenAIGateway) -> None:
    twin = byok.twin
    client = openai.OpenAI(api_key=twin.seed.provider_keys["openai"],
                           base_url=f"{twin.server.provider_base_url}/openai/v1", max_retries=0)
    direct = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    via_gateway = byok.client("openai").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                extra_headers=NO_AUTH)
    assert direct.choices[0].message.content == via_gateway.choices[0].message.content
    assert "gpt-4o" in {m.id for m in client.models.list()}
