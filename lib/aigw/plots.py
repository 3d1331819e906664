"""Matplotlib figures for notebooks 03 and 04.

Each function returns a ``Figure`` built without pyplot, so a notebook shows it once (as an inline PNG,
by returning it as a cell's value) and no global figure state leaks between cells or into tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "PngFigure",
    "plot_cache_hit_rate",
    "plot_error_rates",
    "plot_latency",
    "plot_overhead",
    "plot_requests_over_time",
    "plot_usage",
]

_SIZE = (9.0, 3.6)


class PngFigure(Figure):
    """A figure that shows itself as an inline PNG in any kernel, with or without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=96)
        return buffer.getvalue()


def _figure(title: str) -> tuple[Figure, Any]:
    figure = PngFigure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _empty(axes: Any, message: str = "no logs in this window") -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="0.4")
    axes.set_xticks([])
    axes.set_yticks([])


def _labels(index: pd.Index) -> list[str]:
    if isinstance(index, pd.MultiIndex):
        return [" / ".join(str(part) for part in row if str(part)) for row in index]
    return [str(item) for item in index]


def plot_requests_over_time(over_time: pd.DataFrame) -> Figure:
    """Stacked requests per time bin, one colour per provider."""
    figure, axes = _figure("Requests over time by provider")
    if over_time.empty:
        _empty(axes)
        return figure
    bottom = None
    times = over_time.index.to_pydatetime()
    width = (times[1] - times[0]) * 0.9 if len(times) > 1 else 0.0005
    for provider in over_time.columns:
        values = over_time[provider].to_numpy()
        axes.bar(times, values, width=width, bottom=bottom, label=str(provider), align="edge")
        bottom = values if bottom is None else bottom + values
    axes.set_ylabel("requests")
    axes.set_xlabel("time (UTC)")
    locator = axes.xaxis.get_major_locator()
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.legend(loc="upper left", fontsize="small")
    return figure


def plot_latency(latency: pd.DataFrame) -> Figure:
    """p50 / p95 / p99 latency (ms) per provider and model, as grouped horizontal bars."""
    figure, axes = _figure("Latency per provider / model")
    if latency.empty:
        _empty(axes)
        return figure
    columns = [c for c in latency.columns if str(c).startswith("p")]
    labels = _labels(latency.index)
    height = 0.8 / max(len(columns), 1)
    for i, column in enumerate(columns):
        positions = [row + i * height for row in range(len(labels))]
        axes.barh(positions, latency[column].to_numpy(), height=height, label=str(column))
    axes.set_yticks([row + height * (len(columns) - 1) / 2 for row in range(len(labels))], labels)
    axes.set_xlabel("ms")
    axes.invert_yaxis()
    axes.legend(fontsize="small")
    return figure


def plot_usage(usage: pd.DataFrame) -> Figure:
    """Tokens in / out (bars) and cost (second axis) per provider and model; the total row is left out."""
    figure, axes = _figure("Tokens and cost per provider / model")
    rows = usage.drop(index="total", level=0, errors="ignore") if isinstance(usage.index, pd.MultiIndex) else usage
    if rows.empty:
        _empty(axes)
        return figure
    labels = _labels(rows.index)
    positions = list(range(len(labels)))
    axes.bar([p - 0.2 for p in positions], rows["tokens_in"].to_numpy(), width=0.4, label="tokens in")
    axes.bar([p + 0.2 for p in positions], rows["tokens_out"].to_numpy(), width=0.4, label="tokens out")
    axes.set_xticks(positions, labels, rotation=20, ha="right", fontsize="small")
    axes.set_ylabel("tokens")
    cost_axes = axes.twinx()
    cost_axes.plot(positions, rows["cost_usd"].to_numpy(), "o", color="black", label="cost (USD)")
    cost_axes.set_ylabel("USD")
    handles = axes.get_legend_handles_labels()
    cost_handles = cost_axes.get_legend_handles_labels()
    # Outside the axes: inside, the legend hides whichever bar or cost point is in its corner.
    figure.legend(handles[0] + cost_handles[0], handles[1] + cost_handles[1], fontsize="small",
                  loc="outside right upper")
    return figure


def _rate_bars(title: str, table: pd.DataFrame, column: str, xlabel: str, none: str) -> Figure:
    figure, axes = _figure(title)
    if table.empty:
        _empty(axes)
        return figure
    labels = _labels(table.index)
    rates = (table[column] * 100).to_numpy()
    axes.barh(range(len(labels)), rates)
    if not rates.any():  # an empty chart reads as "not drawn"; say that every rate is 0
        axes.text(50, (len(labels) - 1) / 2, none, ha="center", va="center", color="0.4")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlim(0, 100)
    axes.set_xlabel(xlabel)
    axes.invert_yaxis()
    return figure


def plot_error_rates(errors: pd.DataFrame) -> Figure:
    return _rate_bars("Error rate per provider / model", errors, "error_rate", "% of requests that failed",
                      "no errors: 0% for every model")


def plot_cache_hit_rate(cache: pd.DataFrame) -> Figure:
    return _rate_bars("Cache hit rate per provider / model", cache, "hit_rate", "% of requests served from cache",
                      "no cache hits: 0% for every model")


def plot_overhead(
    gateway_ms: Sequence[float],
    direct_ms: Sequence[float],
    *,
    budget_ms: tuple[float, float] | None = None,
    title: str = "Gateway overhead",
) -> Figure:
    """Each probe's latency through the gateway and straight to the provider, and the overhead per pair,
    with the contract's budget band."""
    figure = PngFigure(figsize=_SIZE, layout="constrained")
    left, right = figure.subplots(1, 2)
    left.set_title("Latency per probe")
    right.set_title(title)
    if not gateway_ms or not direct_ms:
        _empty(left, "no samples")
        _empty(right, "no samples")
        return figure
    left.plot(range(1, len(gateway_ms) + 1), list(gateway_ms), "o-", label="through gateway")
    left.plot(range(1, len(direct_ms) + 1), list(direct_ms), "s-", label="direct to provider")
    left.set_xlabel("probe")
    left.set_ylabel("ms")
    left.legend(fontsize="small")
    overhead = [g - d for g, d in zip(gateway_ms, direct_ms, strict=False)]
    right.boxplot(overhead, orientation="horizontal", widths=0.5)
    right.plot(overhead, [1.0] * len(overhead), "o", alpha=0.5)
    if budget_ms is not None:
        # The budget is a ceiling: less overhead than the contract expects (+50 ms) passes too, so the
        # band starts at 0 and the expected range is only marked.
        right.axvspan(min(0.0, *overhead), budget_ms[1], color="tab:green", alpha=0.12,
                      label=f"within budget (at most {budget_ms[1]:.0f} ms)")
        right.axvline(budget_ms[0], color="tab:green", linestyle=":",
                      label=f"contract expects +{budget_ms[0]:.0f} to {budget_ms[1]:.0f} ms")
        right.legend(fontsize="small")
    right.set_yticks([])
    right.set_xlabel("overhead (ms)")
    return figure
