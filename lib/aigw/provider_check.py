"""Does the provider accept a key? One free, read-only call to its model list, sent directly.

OpenAI and Anthropic answer ``GET /v1/models``, Google AI Studio ``GET /v1beta/models``: listing models
costs nothing and changes nothing, and a wrong key gets the provider's own 401 / 400 / 403. Notebook 02
calls it for each key before criterion 2 calls the key active.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import httpx

from aigw._http import verified_tls
from aigw.config import Secret, Settings
from aigw.gateway import ANTHROPIC_VERSION, DIRECT_HOSTS, classify

__all__ = ["MODEL_LIST_PATHS", "KeyAnswer", "check_provider_key"]

#: Each provider's model list, relative to its host (or to ``{AIGW_PROVIDER_BASE_URL}/{slug}``).
MODEL_LIST_PATHS: Final = {
    "openai": "v1/models",
    "anthropic": "v1/models",
    "google-ai-studio": "v1beta/models",
}
_TIMEOUT_S: Final = 15.0
#: A provider's 429/5xx or a dropped connection is asked again, as the prober does: 3 attempts in all.
_ATTEMPTS: Final = 3
_BACKOFF_S: Final = (0.5, 1.5)
_RETRYABLE: Final = frozenset({429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class KeyAnswer:
    """What the provider said to the key: ``accepted`` True/False, or None when it could not be asked."""

    provider: str
    accepted: bool | None
    status: int | None
    detail: str


def _headers(provider: str, key: Secret) -> dict[str, str]:
    if provider == "openai":
        return {"Authorization": f"Bearer {key.reveal()}"}
    if provider == "anthropic":
        return {"x-api-key": key.reveal(), "anthropic-version": ANTHROPIC_VERSION}
    return {"x-goog-api-key": key.reveal()}


def model_list_url(settings: Settings, provider: str) -> str:
    base = f"{settings.provider_base_url.rstrip('/')}/{provider}" if settings.provider_base_url else (
        DIRECT_HOSTS[provider])
    return f"{base}/{MODEL_LIST_PATHS[provider]}"


def check_provider_key(settings: Settings, provider: str, key: Secret, *,
                       transport: httpx.BaseTransport | None = None) -> KeyAnswer:
    """Ask ``provider`` to list its models with ``key``. The answer's detail never holds the key: only the
    status and the provider's error type (a message may quote part of the key, so it is not kept)."""
    url = model_list_url(settings, provider)
    response: httpx.Response | None = None
    failed: httpx.HTTPError | None = None
    with httpx.Client(timeout=_TIMEOUT_S, transport=transport, verify=verified_tls()) as http:
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(_BACKOFF_S[min(attempt - 1, len(_BACKOFF_S) - 1)])
            try:
                response, failed = http.get(url, headers=_headers(provider, key)), None
            except httpx.HTTPError as exc:
                response, failed = None, exc
                continue
            if response.status_code not in _RETRYABLE:
                break
    if response is None:
        why = type(failed).__name__ if failed is not None else "no answer"
        return KeyAnswer(provider, None, None, f"could not ask {provider} ({why}, {_ATTEMPTS} attempts); check the "
                                               "network and run the check again")
    if response.status_code == 200:
        return KeyAnswer(provider, True, 200, f"{provider} accepts the key (GET /{MODEL_LIST_PATHS[provider]}: 200)")
    _outcome, _code, kind, _excerpt = classify(response.status_code, response.content)
    said = f"{response.status_code} {kind}" if kind else str(response.status_code)
    if response.status_code in (400, 401, 403):
        # Google answers a wrong key with 400 API_KEY_INVALID, OpenAI and Anthropic with 401.
        return KeyAnswer(provider, False, response.status_code,
                         f"{provider} refused the key (GET /{MODEL_LIST_PATHS[provider]}: {said}); "
                         "enter a valid key and store it again")
    return KeyAnswer(provider, None, response.status_code,
                     f"{provider} did not say (GET /{MODEL_LIST_PATHS[provider]}: {said} after {_ATTEMPTS} attempts); "
                     "run the check again later")
