"""Which models each emulated provider serves, and what a token costs (USD per 1M tokens).

Prices are ``aigw.pricing.LIST_PRICES``, the providers' public list prices (the twin's ``cost`` is an
estimate, as Cloudflare's is); the models listed there are the models the twin serves. A dated or
suffixed variant (``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-latest``) is the same model as its
longest listed prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aigw.pricing import LIST_PRICES, listed_model

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

MODELS: Final[dict[str, dict[str, ModelInfo]]] = {
    provider: {name: ModelInfo(provider, name, Price(i, o)) for name, (i, o) in models.items()}
    for provider, models in LIST_PRICES.items()
}
_CACHE: dict[tuple[str, str], ModelInfo | None] = {}


def find_model(provider: str, model: str) -> ModelInfo | None:
    """The listed model ``model`` is (exactly, or as a ``-suffixed`` variant); None if unknown."""
    key = (provider, model)
    if key in _CACHE:
        return _CACHE[key]
    name = listed_model(provider, model)
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
