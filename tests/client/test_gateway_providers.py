"""The provider table (aigw.gateway.providers): one record per provider, what each request looks like."""

from __future__ import annotations

import pytest
from aigw.config import PROVIDERS, Secret
from aigw.errors import ConfigError
from aigw.gateway import PROVIDER_SPECS, GatewayProber, provider_spec


def test_the_table_names_the_providers_of_the_settings() -> None:
    assert set(PROVIDER_SPECS) == set(PROVIDERS)


@pytest.mark.parametrize(
    ("provider", "gateway_path", "direct_url", "key_header", "extra"),
    [
        ("openai", "openai/chat/completions", "https://api.openai.com/v1/chat/completions",
         ("Authorization", "Bearer sk-test"), {}),
        ("anthropic", "anthropic/v1/messages", "https://api.anthropic.com/v1/messages",
         ("x-api-key", "sk-test"), {"anthropic-version": "2023-06-01"}),
        ("google-ai-studio", "google-ai-studio/v1beta/models/gemini%2Fx:generateContent",
         "https://generativelanguage.googleapis.com/v1beta/models/gemini%2Fx:generateContent",
         ("x-goog-api-key", "sk-test"), {}),
    ],
)
def test_each_provider_request_as_built(provider: str, gateway_path: str, direct_url: str,
                                        key_header: tuple[str, str], extra: dict[str, str]) -> None:
    model = "gemini/x" if provider == "google-ai-studio" else "m"
    prober = GatewayProber(account_id="a" * 32, gateway_id="g", gateway_token=Secret("t", "token"),
                           provider_keys={provider: Secret("sk-test", "key")})
    try:
        through = prober._provider_call("provider", provider, model, "hi", 8)
        direct = prober._direct_call("direct", provider, model, "hi", 8)
    finally:
        prober.close()
    assert through.url == f"https://gateway.ai.cloudflare.com/v1/{'a' * 32}/g/{gateway_path}"
    assert direct.url == direct_url
    assert direct.headers[key_header[0]] == key_header[1] and key_header[0] not in through.headers
    for name, value in extra.items():
        assert through.headers[name] == value and direct.headers[name] == value
    if provider == "google-ai-studio":
        assert through.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                                "generationConfig": {"maxOutputTokens": 8}}
    else:
        assert through.body == {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def test_an_unknown_provider_is_one_line_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'google'") as caught:
        provider_spec("google")
    assert "google-ai-studio" in str(caught.value.hint)
