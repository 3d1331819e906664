"""aigw.plots: what a reviewer sees in the HTML of notebooks 03 and 04."""

from __future__ import annotations

import pandas as pd
import pytest
from aigw import plots


def _texts(figure: plots.Figure) -> list[str]:
    return [t.get_text() for axes in figure.axes for t in axes.texts]


def test_overhead_below_the_expected_range_is_drawn_inside_the_budget() -> None:
    figure = plots.plot_overhead([3.0, 4.0, 5.0], [2.0, 3.5, 4.0], budget_ms=(50.0, 200.0))
    right = figure.axes[1]
    band = right.patches[-1].get_extents().transformed(right.transData.inverted())
    assert band.x0 <= 0.0 and band.x1 == pytest.approx(200.0)  # the budget is a ceiling, from 0 (not a 50-200 ms band)
    labels = right.get_legend_handles_labels()[1]
    assert labels == ["within budget (at most 200 ms)", "contract expects +50 to 200 ms"]
    assert plots.PngFigure._repr_png_(figure).startswith(b"\x89PNG")  # type: ignore[arg-type]


def test_usage_legend_sits_outside_the_axes() -> None:
    index = pd.MultiIndex.from_tuples([("openai", "gpt-4o"), ("total", "")], names=["provider", "model"])
    usage = pd.DataFrame({"tokens_in": [10, 10], "tokens_out": [20, 20], "cost_usd": [0.001, 0.001]}, index=index)
    figure = plots.plot_usage(usage)
    assert len(figure.legends) == 1 and all(axes.get_legend() is None for axes in figure.axes)
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["tokens in", "tokens out", "cost (USD)"]


def test_all_zero_rates_say_so_and_a_nonzero_rate_does_not() -> None:
    index = pd.MultiIndex.from_tuples([("openai", "gpt-4o"), ("anthropic", "claude")], names=["provider", "model"])
    zero = pd.DataFrame({"requests": [2, 2], "errors": [0, 0], "error_rate": [0.0, 0.0]}, index=index)
    assert _texts(plots.plot_error_rates(zero)) == ["no errors: 0% for every model"]
    some = pd.DataFrame({"requests": [4, 2], "hits": [1, 0], "hit_rate": [0.25, 0.0]}, index=index)
    assert _texts(plots.plot_cache_hit_rate(some)) == []
