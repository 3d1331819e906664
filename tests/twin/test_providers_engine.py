"""Units of the emulated providers: deterministic answers, token counts, prices, key storage."""

from __future__ import annotations

import pytest
from cftwin.db import Database
from cftwin.providers import models, pricing
from cftwin.providers.engine import bearer_value, complete, estimate_tokens
from hypothesis import given
from hypothesis import strategies as st


@given(text=st.text(max_size=400), limit=st.none() | st.integers(min_value=1, max_value=64))
def test_answers_are_deterministic_bounded_and_counted(text: str, limit: int | None) -> None:
    first = complete("openai", "gpt-4o", text, limit)
    assert first == complete("openai", "gpt-4o", text, limit)
    assert first.tokens_in == max(1, (len(text) + 3) // 4)
    assert first.tokens_out == len(first.words) == len(first.text.split(" "))
    assert "".join(first.deltas()) == first.text
    if limit is not None:
        assert first.tokens_out <= limit
    uncapped = complete("openai", "gpt-4o", text, None)
    assert (first.finish == "length") == (first.tokens_out < uncapped.tokens_out)


def test_answers_depend_on_provider_and_model() -> None:
    texts = {complete(p, m, "same prompt", None).text for p, m in
             [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-3-sonnet")]}
    assert len(texts) == 3


def test_estimate_tokens() -> None:
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(("header", "value"), [(None, None), ("", None), ("Bearer ", None), ("Bearer", None),
                                                ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("abc", "abc")])
def test_bearer_value(header: str | None, value: str | None) -> None:
    assert bearer_value(header) == value


def test_model_lookup_takes_the_longest_listed_prefix() -> None:
    mini = pricing.find_model("openai", "gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.name == "gpt-4o-mini"
    dated = pricing.find_model("anthropic", "claude-3-sonnet-20240229")
    assert dated is not None and dated.name == "claude-3-sonnet"
    assert pricing.find_model("openai", "gpt-4oo") is None
    assert pricing.find_model("google-ai-studio", "gpt-4o") is None


def test_cost_follows_the_price_table() -> None:
    assert pricing.cost_usd("openai", "gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert pricing.cost_usd("google-ai-studio", "gemini-2.5-flash", 1000, 2000) == pytest.approx(
        (1000 * 0.30 + 2000 * 2.50) / 1_000_000)
    assert pricing.cost_usd("anthropic", "claude-sonnet-4-5", None, None) == 0


def test_provider_keys_are_stored_as_digests_and_revocable() -> None:
    db = Database(":memory:")
    key = "k-" + "x" * 20
    models.add_provider_key(db, "anthropic", key)
    assert models.is_provider_key_valid(db, "anthropic", key)
    assert not models.is_provider_key_valid(db, "openai", key)
    stored = [tuple(row) for row in db.query("SELECT * FROM provider_keys")]
    assert key not in repr(stored)
    assert models.revoke_provider_key(db, "anthropic", key) is True
    assert models.revoke_provider_key(db, "anthropic", key) is False
    assert not models.is_provider_key_valid(db, "anthropic", key)
    models.add_provider_key(db, "anthropic", key)
    assert models.count_provider_keys(db, "anthropic") == 1
    with pytest.raises(ValueError, match="unknown provider"):
        models.add_provider_key(db, "mistral", key)
    assert not models.is_provider_key_valid(db, "anthropic", "")
