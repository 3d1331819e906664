"""Notebook 04's tables from a logs frame (``aigw.logs_frame``), and criterion 5's check of this run's logs.

Every table is a vectorised ``groupby`` (no ``apply``, no lambdas) so a million rows stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import pandas as pd

__all__ = [
    "PERCENTILES",
    "LogsReport",
    "LogsSummary",
    "RunLogsCheck",
    "analyse",
    "cache_hit_rate",
    "error_rates",
    "latency_percentiles",
    "pick_frequency",
    "requests_over_time",
    "status_codes",
    "summarise",
    "usage_by_model",
    "verify_run_logs",
]

PERCENTILES: Final = (0.5, 0.95, 0.99)
_GROUP: Final = ["provider", "model"]
#: Candidate bin widths for requests-over-time, smallest first; the first that gives at most ~60 bins wins.
_FREQUENCIES: Final = (
    ("1s", timedelta(seconds=1)),
    ("10s", timedelta(seconds=10)),
    ("1min", timedelta(minutes=1)),
    ("5min", timedelta(minutes=5)),
    ("15min", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("6h", timedelta(hours=6)),
    ("1D", timedelta(days=1)),
    ("7D", timedelta(days=7)),
)


# --- tables -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsSummary:
    """Totals of a frame: what criterion 5 and the 100,000-log check compare against the twin's truth."""

    requests: int
    #: None where the source does not carry tokens (the Logpush export: ``aigw.logs_logpush``).
    tokens_in: int | None
    tokens_out: int | None
    cost: float
    errors: int
    cached: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    providers: tuple[str, ...]
    models: tuple[str, ...]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost, 6),
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "cached": self.cached,
            "cache_hit_rate": round(self.cache_hit_rate, 4),
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
            "providers": list(self.providers),
            "models": list(self.models),
        }


def summarise(frame: pd.DataFrame) -> LogsSummary:
    count = len(frame)
    return LogsSummary(
        requests=count,
        tokens_in=int(frame["tokens_in"].sum()),
        tokens_out=int(frame["tokens_out"].sum()),
        cost=float(frame["cost"].sum()),
        errors=int(count - frame["success"].sum()),
        cached=int(frame["cached"].sum()),
        first=frame["created_at"].min() if count else None,
        last=frame["created_at"].max() if count else None,
        providers=tuple(str(p) for p in frame["provider"].dropna().unique()),
        models=tuple(str(m) for m in frame["model"].dropna().unique()),
    )


def pick_frequency(first: pd.Timestamp, last: pd.Timestamp, *, max_bins: int = 60) -> str:
    """The smallest bin width that draws the span in at most ``max_bins`` bins."""
    span = (last - first).to_pytimedelta()
    for alias, width in _FREQUENCIES:
        if span / width <= max_bins:
            return alias
    return _FREQUENCIES[-1][0]


def requests_over_time(frame: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Requests per time bin (rows, UTC) and provider (columns)."""
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="created_at"))
    freq = freq or pick_frequency(frame["created_at"].min(), frame["created_at"].max())
    counts = frame.groupby([pd.Grouper(key="created_at", freq=freq), "provider"], observed=True).size()
    table = counts.unstack("provider", fill_value=0)
    table.columns = pd.Index([str(c) for c in table.columns], name="provider")
    return table.astype("int64")


def latency_percentiles(frame: pd.DataFrame, by: Sequence[str] = ("provider", "model")) -> pd.DataFrame:
    """Requests and p50 / p95 / p99 of ``duration_ms`` per group (linear interpolation)."""
    keys = list(by)
    grouped = frame.groupby(keys, observed=True)["duration_ms"]
    table = grouped.quantile(list(PERCENTILES)).unstack().reindex(columns=list(PERCENTILES))
    table.columns = pd.Index([f"p{round(q * 100)}_ms" for q in PERCENTILES])
    table.insert(0, "requests", grouped.size())
    return table.astype({"requests": "int64"})


def usage_by_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Requests, tokens in / out and cost (USD) per provider and model, with a ``total`` row."""
    grouped = frame.groupby(_GROUP, observed=True)
    table = grouped.agg(
        requests=("success", "size"),
        tokens_in=("tokens_in", "sum"),
        tokens_out=("tokens_out", "sum"),
        cost_usd=("cost", "sum"),
    )
    table = table.astype({"requests": "int64", "tokens_in": "int64", "tokens_out": "int64", "cost_usd": "float64"})
    total = pd.DataFrame(
        [[int(table["requests"].sum()), int(table["tokens_in"].sum()), int(table["tokens_out"].sum()),
          float(table["cost_usd"].sum())]],
        columns=table.columns,
        index=pd.MultiIndex.from_tuples([("total", "")], names=_GROUP),
    )
    if table.empty:
        return total
    flat = table.copy()
    flat.index = pd.MultiIndex.from_tuples([(str(p), str(m)) for p, m in table.index], names=_GROUP)
    return pd.concat([flat, total])


def error_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Requests, errors (``success`` false) and error rate per provider and model."""
    grouped = frame.groupby(_GROUP, observed=True)["success"]
    requests = grouped.size()
    successes = grouped.sum()
    table = pd.DataFrame({"requests": requests.astype("int64"), "errors": (requests - successes).astype("int64")})
    table["error_rate"] = (table["errors"] / table["requests"]).astype("float64")
    return table


def status_codes(frame: pd.DataFrame) -> pd.DataFrame:
    """Requests per provider (rows) and HTTP status code (columns); a missing code is shown as ``<NA>``."""
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="provider"))
    codes = frame["status_code"].astype("str").where(frame["status_code"].notna(), "<NA>")
    counts = frame.assign(status=codes).groupby(["provider", "status"], observed=True).size()
    table = counts.unstack("status", fill_value=0)
    table.index = pd.Index([str(i) for i in table.index], name="provider")
    return table.astype("int64")


def cache_hit_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Requests, cache hits and hit rate per provider and model."""
    grouped = frame.groupby(_GROUP, observed=True)["cached"]
    table = pd.DataFrame({"requests": grouped.size().astype("int64"), "hits": grouped.sum().astype("int64")})
    table["hit_rate"] = (table["hits"] / table["requests"]).astype("float64")
    return table


@dataclass
class LogsReport:
    """Every table notebook 04 shows, built once from a frame."""

    summary: LogsSummary
    over_time: pd.DataFrame
    latency: pd.DataFrame
    usage: pd.DataFrame
    errors: pd.DataFrame
    status: pd.DataFrame
    cache: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.summary.requests == 0

    def _repr_markdown_(self) -> str:
        s = self.summary
        if self.empty:
            return "**No logs to analyse** in this window: every table below is empty."
        rows = [
            ("requests", f"{s.requests:,}"),
            ("first / last", f"{s.first} / {s.last}"),
            ("tokens in / out", "not in this source" if s.tokens_in is None or s.tokens_out is None
             else f"{s.tokens_in:,} / {s.tokens_out:,}"),
            ("cost (USD, Cloudflare's estimate)", f"{s.cost:.6f}"),
            ("errors", f"{s.errors:,} ({s.error_rate:.1%})"),
            ("cache hits", f"{s.cached:,} ({s.cache_hit_rate:.1%})"),
            ("providers", ", ".join(s.providers)),
            ("models", ", ".join(s.models)),
        ]
        lines = ["**Summary**", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
        return "\n".join(lines)


def analyse(frame: pd.DataFrame, *, freq: str | None = None) -> LogsReport:
    """All of notebook 04's tables from one frame."""
    return LogsReport(
        summary=summarise(frame),
        over_time=requests_over_time(frame, freq),
        latency=latency_percentiles(frame),
        usage=usage_by_model(frame),
        errors=error_rates(frame),
        status=status_codes(frame),
        cache=cache_hit_rate(frame),
    )

# --- criterion 5 --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLogsCheck:
    """Whether the logs hold this run's probes, with timestamps and models."""

    passed: bool
    detail: str
    found: int
    expected_ids: int
    missing_ids: tuple[str, ...]


def verify_run_logs(frame: pd.DataFrame, run_id: str, expected_log_ids: Iterable[str] = ()) -> RunLogsCheck:
    """Criterion 5: rows tagged with ``run_id`` exist, each with a timestamp and a model, and every log id
    that notebook 03's probes were given (``cf-aig-log-id``) is among them."""
    mine = frame[frame["run_id"] == run_id] if len(frame) else frame
    expected = sorted(set(expected_log_ids))
    present = set(mine["id"].astype("str")) if len(mine) else set()
    missing = tuple(i for i in expected if i not in present)
    no_time = int(mine["created_at"].isna().sum())
    no_model = int(mine["model"].isna().sum())
    problems: list[str] = []
    if mine.empty:
        problems.append(f"no log carries aigw_run_id={run_id!r}")
    if no_time:
        problems.append(f"{no_time} logs without created_at")
    if no_model:
        problems.append(f"{no_model} logs without a model")
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} probe log ids not found")
    models = sorted({str(m) for m in mine["model"].dropna().unique()})
    if problems:
        detail = "; ".join(problems)
    else:
        detail = f"{len(mine)} logs of run {run_id}, models {', '.join(models)}"
        if expected:
            detail += f"; all {len(expected)} probe log ids found"
    return RunLogsCheck(not problems, detail, len(mine), len(expected), missing)
