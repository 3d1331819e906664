"""The providers the prober speaks to, one frozen record each: where a request goes, how the key travels,
what the body looks like. What differs between providers is here, as data, instead of ``if provider ==``
branches through the prober.

Sources: OpenAI ``POST /v1/chat/completions`` (``Authorization: Bearer``); Anthropic ``POST /v1/messages``
(``x-api-key``, ``anthropic-version``); Google AI Studio ``POST /v1beta/models/{model}:generateContent``
(``x-goog-api-key``). Through the gateway, ``.../openai`` replaces ``https://api.openai.com/v1``, while the
other two keep their whole path (cloudflare-docs ``ai-gateway/usage/providers/*.mdx``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import quote

from aigw.config import PROVIDERS, Secret
from aigw.errors import ConfigError

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MODELS",
    "DIRECT_HOSTS",
    "PROVIDER_SPECS",
    "REST_AUTHORS",
    "ProviderSpec",
    "provider_spec",
    "rest_model",
]

ANTHROPIC_VERSION: Final = "2023-06-01"


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: its slug, host, paths (``{model}`` is the URL-quoted model), key header and body shape.

    * gateway_path / direct_path - after ``{gateway}/{slug}/`` and after the provider's own host.
    * key_header, key_prefix - the header that carries the provider's key, and what precedes the key in it.
    * headers - what every request to the provider also sends (Anthropic's API version).
    * body - ``messages`` (OpenAI and Anthropic chat) or ``contents`` (Google's ``generateContent``).
    * rest_author - the REST API names a model's author, the gateway its provider slug
      (``google/gemini-2.5-flash`` on ``/ai/v1/chat/completions`` is ``google-ai-studio/gemini-2.5-flash`` on
      ``compat``; cloudflare-docs ``ai-gateway/usage/rest-api.mdx``).
    * default_model - a cheap model, for the lock checks when the caller names none.
    """

    slug: str
    direct_host: str
    gateway_path: str
    direct_path: str
    key_header: str
    key_prefix: str
    body: Literal["messages", "contents"]
    rest_author: str
    default_model: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def path(self, model: str, *, direct: bool) -> str:
        template = self.direct_path if direct else self.gateway_path
        return template.format(model=quote(model, safe=""))

    def key_headers(self, key: Secret) -> dict[str, str]:
        return {self.key_header: f"{self.key_prefix}{key.reveal()}"}

    def native_body(self, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
        if self.body == "contents":
            return {
                "contents": [{"role": "user", "parts": [{"text": prompt}]}],
                "generationConfig": {"maxOutputTokens": max_tokens},
            }
        return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}


_SPECS: Final = (
    ProviderSpec(
        slug="openai", direct_host="https://api.openai.com",
        gateway_path="chat/completions", direct_path="v1/chat/completions",
        key_header="Authorization", key_prefix="Bearer ", body="messages",
        rest_author="openai", default_model="gpt-4o-mini",
    ),
    ProviderSpec(
        slug="anthropic", direct_host="https://api.anthropic.com",
        gateway_path="v1/messages", direct_path="v1/messages",
        key_header="x-api-key", key_prefix="", body="messages",
        rest_author="anthropic", default_model="claude-3-5-haiku-latest",
        headers=MappingProxyType({"anthropic-version": ANTHROPIC_VERSION}),
    ),
    ProviderSpec(
        slug="google-ai-studio", direct_host="https://generativelanguage.googleapis.com",
        gateway_path="v1beta/models/{model}:generateContent", direct_path="v1beta/models/{model}:generateContent",
        key_header="x-goog-api-key", key_prefix="", body="contents",
        rest_author="google", default_model="gemini-2.0-flash",
    ),
)
#: Every provider the runbook knows, by slug (the same slugs as ``aigw.config.PROVIDERS``).
PROVIDER_SPECS: Final[Mapping[str, ProviderSpec]] = MappingProxyType({s.slug: s for s in _SPECS})

#: The real providers, when no ``provider_base_url`` is configured.
DIRECT_HOSTS: Final[Mapping[str, str]] = MappingProxyType({s.slug: s.direct_host for s in _SPECS})
#: A cheap model per provider, for the lock checks when the caller names none.
DEFAULT_MODELS: Final[Mapping[str, str]] = MappingProxyType({s.slug: s.default_model for s in _SPECS})
#: The REST API's author per gateway provider slug: the one place the runbook maps between them.
REST_AUTHORS: Final[Mapping[str, str]] = MappingProxyType({s.slug: s.rest_author for s in _SPECS})


def provider_spec(provider: str) -> ProviderSpec:
    """The record of ``provider`` (a gateway slug); an unknown slug is one line with the known ones."""
    spec = PROVIDER_SPECS.get(provider)
    if spec is None:
        raise ConfigError(f"unknown provider {provider!r}", hint=f"Use one of {', '.join(PROVIDERS)}")
    return spec


def rest_model(provider: str, model: str) -> str:
    """The REST API's ``author/model`` for a gateway provider slug and model."""
    author = REST_AUTHORS.get(provider)
    if author is None:
        raise ConfigError(f"no REST API author is known for provider {provider!r}",
                          hint=f"Use one of {', '.join(REST_AUTHORS)}")
    return f"{author}/{model}"
