"""Which models each emulated provider serves, and what a token costs (USD per 1M tokens).

Prices are the providers' public list prices (the twin's ``cost`` is an estimate, as Cloudflare's is);
the models listed here are the models the twin serves. The table is the twin's own, kept apart from the
runbook's on purpose: the twin checks the runbook, so the two never share a constant (a test compares
them, so a price changed on one side only is noticed).

ASSUMPTION: list prices of early 2026 from the providers' pricing pages, rounded. A dated or
suffixed variant (``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-latest``) is the same model as its
longest listed prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_PRICE", "MODELS", "ModelInfo", "Price", "cost_usd", "find_model", "model_names"]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1,000,000 tokens."""

    input_per_m: float
    output_per_m: float


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    name: str
    price: Price


#: Used for the cost of a request whose model the twin does not list (it fails, so it has no tokens).
DEFAULT_PRICE: Final = Price(1.0, 4.0)

_LIST_PRICES: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "openai": {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4": (30.00, 60.00),
        "gpt-4-turbo": (10.00, 30.00),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
        "o4-mini": (1.10, 4.40),
        "gpt-3.5-turbo": (0.50, 1.50),
    },
    "anthropic": {
        "claude-3-haiku": (0.25, 1.25),
        "claude-3-sonnet": (3.00, 15.00),
        "claude-3-opus": (15.00, 75.00),
        "claude-3-5-haiku": (0.80, 4.00),
        "claude-3-5-sonnet": (3.00, 15.00),
        "claude-3-7-sonnet": (3.00, 15.00),
        "claude-haiku-4-5": (1.00, 5.00),
        "claude-sonnet-4": (3.00, 15.00),
        "claude-sonnet-4-5": (3.00, 15.00),
        "claude-opus-4": (15.00, 75.00),
        "claude-opus-4-1": (15.00, 75.00),
    },
    "google-ai-studio": {
        "gemini-1.5-flash": (0.075, 0.30),
        "gemini-1.5-pro": (1.25, 5.00),
        "gemini-2.0-flash": (0.10, 0.40),
        "gemini-2.0-flash-lite": (0.075, 0.30),
        "gemini-2.5-flash": (0.30, 2.50),
        "gemini-2.5-flash-lite": (0.10, 0.40),
        "gemini-2.5-pro": (1.25, 10.00),
    },
}
# Longest names first, so that "gpt-4o-mini-2024-07-18" is gpt-4o-mini, not gpt-4o.
_BY_LENGTH: Final = {p: sorted(models, key=len, reverse=True) for p, models in _LIST_PRICES.items()}

MODELS: Final[dict[str, dict[str, ModelInfo]]] = {
    provider: {name: ModelInfo(provider, name, Price(i, o)) for name, (i, o) in models.items()}
    for provider, models in _LIST_PRICES.items()
}
_CACHE: dict[tuple[str, str], ModelInfo | None] = {}


def _listed_model(provider: str, model: str) -> str | None:
    listed = _LIST_PRICES.get(provider, {})
    if model in listed:
        return model
    return next((name for name in _BY_LENGTH.get(provider, ()) if model.startswith(name + "-")), None)


def find_model(provider: str, model: str) -> ModelInfo | None:
    """The listed model ``model`` is (exactly, or as a ``-suffixed`` variant); None if unknown."""
    key = (provider, model)
    if key in _CACHE:
        return _CACHE[key]
    name = _listed_model(provider, model)
    found = None if name is None else MODELS[provider][name]
    if len(_CACHE) < 4096:  # bounded: model names come from requests
        _CACHE[key] = found
    return found


def model_names(provider: str) -> list[str]:
    return sorted(MODELS.get(provider, {}))


def cost_usd(provider: str, model: str, tokens_in: int | None, tokens_out: int | None) -> float:
    """Estimated USD for one request (0 when it used no tokens)."""
    info = find_model(provider, model)
    price = info.price if info is not None else DEFAULT_PRICE
    cost = ((tokens_in or 0) * price.input_per_m + (tokens_out or 0) * price.output_per_m) / 1_000_000
    return round(cost, 10)
