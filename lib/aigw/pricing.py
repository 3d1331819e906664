"""The providers' public list prices, USD per 1M tokens (input, output), for the models the runbook uses.

The runbook prices its probes with it before sending them (the ``probe_budget_usd`` cap of notebook 03).
The twin computes each log's ``cost`` from its own copy (``cftwin.providers.pricing``), kept apart on
purpose so that the twin checks the runbook; ``tests/twin/test_independence.py`` compares the two.

ASSUMPTION: list prices of early 2026, rounded; a model matches its longest listed prefix
(``gpt-4o-2024-08-06`` is ``gpt-4o``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["LIST_PRICES", "list_price", "listed_model"]

# Independent of cftwin.providers.pricing on purpose: the twin checks the runbook, not copies it (docs/ARCHITECTURE.md).
LIST_PRICES: Final[Mapping[str, Mapping[str, tuple[float, float]]]] = {
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
_BY_LENGTH: Final = {p: sorted(models, key=len, reverse=True) for p, models in LIST_PRICES.items()}


def listed_model(provider: str, model: str) -> str | None:
    """The listed name ``model`` is (exactly, or as a ``-suffixed`` variant); None if unlisted."""
    listed = LIST_PRICES.get(provider, {})
    if model in listed:
        return model
    return next((name for name in _BY_LENGTH.get(provider, ()) if model.startswith(name + "-")), None)


def list_price(provider: str, model: str) -> tuple[float, float] | None:
    """USD per 1M tokens (input, output) of ``model``; None if unlisted."""
    name = listed_model(provider, model)
    return None if name is None else LIST_PRICES[provider][name]
