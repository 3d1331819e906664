"""Notebook 04's logic: the gateway's logs of a window, as a typed DataFrame, and the tables an operator reads.

Criterion 5 of the contract: the logs API returns this run's probe requests, with timestamps and models.

The frame is built column by column with narrow dtypes (categoricals for the few distinct strings,
``int32``/``float64`` numbers, ``bool`` flags, ``datetime64[ns, UTC]`` times) so a million rows stay small,
and every table is a vectorised ``groupby`` (no ``apply``, no lambdas) so it stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from aigw.errors import ConfigError
from aigw.log_systems import fetch_gateway_logs

if TYPE_CHECKING:
    from aigw.session import Session

__all__ = [
    "COLUMNS",
    "PERCENTILES",
    "LogsReport",
    "LogsSummary",
    "Window",
    "analyse",
    "build_frame",
    "cache_hit_rate",
    "empty_frame",
    "error_rates",
    "export_parquet",
    "latency_percentiles",
    "metadata_filter",
    "pick_frequency",
    "requests_over_time",
    "resolve_window",
    "run_filter",
    "status_codes",
    "summarise",
    "usage_by_model",
    "verify_run_logs",
    "window_filters",
]

#: The frame's columns and dtypes. API field ``duration`` (ms) becomes ``duration_ms``; ``run_id`` and ``check``
#: come from the ``cf-aig-metadata`` the runbook's probes carry (``aigw_run_id``, ``aigw_check``).
COLUMNS: Final[Mapping[str, str]] = {
    "id": "str",
    "created_at": "datetime64[ns, UTC]",
    "provider": "category",
    "model": "category",
    "model_type": "category",
    "path": "category",
    "request_type": "category",
    "status_code": "Int16",
    "success": "bool",
    "cached": "bool",
    "duration_ms": "int32",
    "tokens_in": "Int32",
    "tokens_out": "Int32",
    "cost": "float64",
    "custom_cost": "bool",
    "step": "Int8",
    "metadata": "category",
    "run_id": "category",
    "check": "category",
}
_API_NAMES: Final[Mapping[str, str]] = {"duration": "duration_ms"}
_CATEGORICAL: Final = tuple(name for name, dtype in COLUMNS.items() if dtype == "category")
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


# --- the window and its filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The time window of logs to read: ``since`` <= created_at < ``until`` (both UTC)."""

    since: datetime
    until: datetime

    def __str__(self) -> str:
        return f"{self.since.isoformat(timespec='seconds')} .. {self.until.isoformat(timespec='seconds')}"


def _parse_time(value: str | datetime, name: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"parameter {name}={value!r} is not an ISO 8601 time", hint="Use e.g. 2026-01-12T09:00:00Z"
            ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve_window(
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    last_hours: float | None = 24.0,
    *,
    now: datetime | None = None,
) -> Window:
    """The window from the notebook's parameters: ``since``/``until`` when given, else the last ``last_hours``.

    A naive time is taken as UTC. ``until`` defaults to now; ``since`` to ``until - last_hours``.
    """
    end = _parse_time(until, "until") if until else (now or datetime.now(UTC)).astimezone(UTC)
    if since:
        start = _parse_time(since, "since")
    else:
        if last_hours is None or last_hours <= 0:
            raise ConfigError(
                "neither since nor a positive last_hours is set",
                hint="Set since='2026-01-12T09:00:00Z' or last_hours=24",
            )
        start = end - timedelta(hours=float(last_hours))
    if start >= end:
        raise ConfigError(f"the window is empty: since {start.isoformat()} is not before until {end.isoformat()}",
                          hint="Swap since and until, or widen the window")
    return Window(start, end)


def _filter(key: str, operator: str, values: Sequence[str | float | bool | None]) -> dict[str, Any]:
    return {"key": key, "operator": operator, "value": list(values)}


def window_filters(window: Window) -> list[dict[str, Any]]:
    """Cloudflare ``filters`` for the window (``created_at`` gt since, lt until)."""
    return [
        _filter("created_at", "gt", [window.since.isoformat().replace("+00:00", "Z")]),
        _filter("created_at", "lt", [window.until.isoformat().replace("+00:00", "Z")]),
    ]


def metadata_filter(value: str) -> dict[str, Any]:
    """A Cloudflare filter for logs whose ``cf-aig-metadata`` holds ``value`` (e.g. this run's id)."""
    return _filter("metadata.value", "eq", [value])


def run_filter(run_id: str) -> list[dict[str, Any]]:
    """Cloudflare ``filters`` for the requests the runbook's probes of run ``run_id`` made."""
    return [metadata_filter(run_id)]


# --- the frame ----------------------------------------------------------------------------------------------


def empty_frame() -> pd.DataFrame:
    """A frame with every column and dtype and no rows (an empty window)."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in COLUMNS.items()})


def _metadata_fields(metadata: pd.Categorical) -> tuple[pd.Categorical, pd.Categorical]:
    """``aigw_run_id`` and ``aigw_check`` of each row, parsing each distinct metadata string once."""
    run_ids: list[str | None] = []
    checks: list[str | None] = []
    for text in metadata.categories:
        try:
            parsed = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            parsed = None
        parsed = parsed if isinstance(parsed, dict) else {}
        run = parsed.get("aigw_run_id")
        check = parsed.get("aigw_check")
        run_ids.append(None if run is None else str(run))
        checks.append(None if check is None else str(check))
    codes = metadata.codes

    def remap(values: list[str | None]) -> pd.Categorical:
        if not values:
            nothing = np.full(len(codes), -1, dtype=np.int8)
            return pd.Categorical.from_codes(nothing, categories=pd.Index([], dtype="str"))
        labels = pd.Categorical(values)
        # A missing metadata (code -1) maps to a missing label; the extra slot at the end stands for it.
        lookup = np.append(labels.codes, -1)
        return pd.Categorical.from_codes(lookup[codes], categories=labels.categories)

    return remap(run_ids), remap(checks)


def _column(name: str, values: Sequence[Any] | None, rows: int) -> Any:
    dtype = COLUMNS[name]
    if values is None:
        if dtype == "bool":
            return np.zeros(rows, dtype=bool)
        return pd.Series([None] * rows, dtype=dtype if dtype != "int32" else "Int32")
    if dtype == "datetime64[ns, UTC]":
        return pd.to_datetime(pd.Series(values, dtype="str"), utc=True, format="ISO8601").astype(dtype)
    if dtype == "category":
        return pd.Categorical(values)
    if dtype == "bool":
        return pd.Series(values, dtype="boolean").fillna(False).astype(bool)
    if dtype == "int32":
        return pd.Series(values, dtype="Float64").fillna(0).round().astype("int32")
    return pd.Series(values).astype(dtype)


def build_frame(data: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The logs as a typed frame, sorted by ``created_at``.

    ``data`` is what the client's ``fetch_logs`` returns (a dict of columns named as the API's log fields),
    or a list of log objects. Missing fields become missing values; unknown fields are dropped.
    """
    columns: Mapping[str, Sequence[Any]]
    if isinstance(data, Mapping):
        columns = data
    else:
        records = list(data)
        names = {key for record in records for key in record}
        columns = {key: [record.get(key) for record in records] for key in names}
    renamed = {_API_NAMES.get(key, key): values for key, values in columns.items()}
    rows = len(next(iter(renamed.values()), []))
    if rows == 0:
        return empty_frame()
    built: dict[str, Any] = {}
    for name in COLUMNS:
        if name in {"run_id", "check"}:
            continue
        values = renamed.get(name)
        if values is not None and len(values) != rows:
            raise ValueError(f"log column {name!r} has {len(values)} values, expected {rows}")
        built[name] = _column(name, values, rows)
    built["run_id"], built["check"] = _metadata_fields(pd.Categorical(built["metadata"]))
    frame = pd.DataFrame(built)
    frame = frame.sort_values("created_at", kind="stable", ignore_index=True)
    return frame


# --- tables -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsSummary:
    """Totals of a frame: what criterion 5 and the 100,000-log check compare against the twin's truth."""

    requests: int
    tokens_in: int
    tokens_out: int
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
            ("tokens in / out", f"{s.tokens_in:,} / {s.tokens_out:,}"),
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


def export_parquet(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write the frame to ``path`` (Parquet, categoricals kept) atomically; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    frame.to_parquet(partial, index=False, engine="pyarrow")
    partial.replace(target)
    return target


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


# --- notebook 04's steps ------------------------------------------------------------------------------------

FILTER_KEYS: Final = frozenset({
    "id", "created_at", "request_content_type", "response_content_type", "request_type", "success", "cached",
    "provider", "model", "model_type", "cost", "tokens", "tokens_in", "tokens_out", "duration", "feedback",
    "event_id", "metadata.key", "metadata.value", "authentication", "wholesale", "compatibilityMode",
    "dlp_action", "user_agent",
})
FILTER_OPERATORS: Final = frozenset({"eq", "neq", "contains", "lt", "gt"})
EXPORT_FILE: Final = "04_logs.parquet"


def validate_filters(filters: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Cloudflare ``filters`` items ``{key, operator, value: [...]}``, checked before they are sent."""
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(filters or []):
        if not isinstance(item, Mapping):
            raise ConfigError(f"filters[{index}] is not an object", hint='Use {"key": ..., "operator": ..., '
                              '"value": [...]}')
        key, operator, value = item.get("key"), item.get("operator"), item.get("value")
        if key not in FILTER_KEYS:
            raise ConfigError(f"filters[{index}].key {key!r} is not a logs filter key",
                              hint=f"Use one of {', '.join(sorted(FILTER_KEYS))}")
        if operator not in FILTER_OPERATORS:
            raise ConfigError(f"filters[{index}].operator {operator!r} is not an operator",
                              hint="Use eq, neq, contains, lt or gt")
        values = list(value) if isinstance(value, list | tuple) else [value]
        if not values or not all(v is None or isinstance(v, str | int | float | bool) for v in values):
            raise ConfigError(f"filters[{index}].value must be a list of strings, numbers, booleans or null",
                              hint='e.g. "value": ["gpt-4o"]')
        checked.append(_filter(str(key), str(operator), values))
    return checked


def selection_filters(
    providers: Iterable[str] = (), models: Iterable[str] = (), filters: Iterable[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Provider / model shortcuts plus any Cloudflare ``filters`` (every one must hold)."""
    chosen = validate_filters(filters)
    provider_list = [p for p in providers if p]
    model_list = [m for m in models if m]
    # ASSUMPTION: several values in one ``eq`` filter match any of them (the value is an array for that).
    if provider_list:
        chosen.append(_filter("provider", "eq", provider_list))
    if model_list:
        chosen.append(_filter("model", "eq", model_list))
    return chosen


class _TextProgress:
    """Plain-text progress for a run without a person watching (papermill): a line per ~10%."""

    def __init__(self) -> None:
        self.next_share = 0.1
        self.done = False

    def __call__(self, rows: int, total: int | None) -> None:
        if not total or self.done:
            return
        share = rows / total
        if share >= self.next_share or rows >= total:
            print(f"logs: {rows:,} of {total:,} read", flush=True)
            while self.next_share <= share:
                self.next_share += 0.1
            self.done = rows >= total


class _BarProgress:
    """A tqdm bar (a widget in JupyterLab)."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=None, unit="log", desc="logs")

    def __call__(self, rows: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = rows
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@dataclass
class LogsFetch:
    """The logs of a window as a typed frame, and how they were read."""

    frame: pd.DataFrame
    window: Window
    filters: list[dict[str, Any]]
    total_count: int | None
    pages: int
    seconds: float
    checks: list[Any] = field(default_factory=list)
    #: Which log system answered (``aigw.log_systems``), in words.
    log_system: str = ""

    @property
    def empty(self) -> bool:
        return bool(self.frame.empty)

    def _repr_markdown_(self) -> str:
        shown = "; ".join(f"{f['key']} {f['operator']} {f['value']}" for f in self.filters) or "none"
        system = f"**Log system:** {self.log_system}\n\n" if self.log_system else ""
        if self.empty:
            return system + (f"**No logs in this window** ({self.window}; filters: {shown}). Nothing to analyse: widen "
                    "the window (`last_hours`, `since`, `until`), drop a filter, or send traffic first "
                    "(notebook 03).")
        memory = self.frame.memory_usage(deep=True).sum() / 2**20
        reported = self.total_count if self.total_count is not None else "?"
        return system + (f"**{len(self.frame):,} logs** (the API reported {reported}) in {self.pages} pages, read in "
                f"{self.seconds:.1f} s; window {self.window}; filters: {shown}; frame {memory:.1f} MiB in memory.")


def fetch_window(
    session: Session,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    last_hours: float | None = 24.0,
    providers: Iterable[str] = (),
    models: Iterable[str] = (),
    filters: Iterable[Mapping[str, Any]] | None = None,
    per_page: int = 50,
    concurrency: int = 4,
) -> LogsFetch:
    """Every log of the window that matches, read ``per_page`` at a time with ``concurrency`` pages in
    flight (the client keeps inside the API's request budget), with a progress bar, into a typed frame."""
    import time

    window = resolve_window(since, until, last_hours)
    chosen = selection_filters(providers, models, filters)
    interactive = bool(getattr(session, "interactive", False))
    progress: Any = _BarProgress() if interactive else _TextProgress()
    started = time.perf_counter()
    try:
        read = fetch_gateway_logs(
            session.client, session.settings.gateway_id, filters=chosen, since=window.since, until=window.until,
            per_page=per_page, concurrency=concurrency, progress=progress,
        )
    finally:
        if isinstance(progress, _BarProgress):
            progress.close()
    columns = read.columns
    frame = build_frame(columns)
    return LogsFetch(frame, window, chosen, getattr(columns, "total_count", None), getattr(columns, "pages", 0),
                     time.perf_counter() - started, log_system=read.description)




def analyse_logs(fetched: LogsFetch) -> LogsReport:
    """Every table of notebook 04 from the fetched frame (an empty window gives empty tables)."""
    return analyse(fetched.frame)


@dataclass(frozen=True)
class LogsExport:
    path: Path
    rows: int
    bytes: int
    checks: list[Any] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        return f"Wrote **{self.rows:,}** logs to `{self.path}` ({self.bytes / 2**20:.2f} MiB, Parquet)."


def export_logs(session: Session, fetched: LogsFetch, name: str = EXPORT_FILE) -> LogsExport:
    """The frame as Parquet in the run folder (dtypes kept: categoricals, UTC times)."""
    path = export_parquet(fetched.frame, Path(session.run_dir) / name)
    return LogsExport(path, len(fetched.frame), path.stat().st_size)


@dataclass
class RunLogsVerification:
    """Criterion 5 as the logs API shows it."""

    frame: pd.DataFrame
    result: RunLogsCheck | None
    checks: list[Any] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        from aigw.steps import checks_table, markdown_table

        table = checks_table(self.checks)
        if self.frame.empty:
            return table
        sample = self.frame.head(10)
        rows = [(r.id, r.created_at, r.provider, r.model, r.status_code, r.check) for r in sample.itertuples()]
        more = f"\n\n_{len(self.frame) - 10} more_" if len(self.frame) > 10 else ""
        return (table + "\n\n" + markdown_table(["log id", "created_at", "provider", "model", "status", "probe"],
                                                rows) + more)


def check_run_logs(
    session: Session, fetched: LogsFetch | None = None, *, wait_s: float = 60.0
) -> RunLogsVerification:
    """Criterion 5: the logs API returns this run's probe requests (``metadata.value`` eq the run id), each
    with a timestamp and a model, and every ``cf-aig-log-id`` notebook 03 saw among them.

    Logs reach the API shortly after a request; while some probe's log is missing, the read is repeated
    (0.1 s later, doubling to every 2 s) for up to ``wait_s`` s. Without 03's probes in the run folder, it falls back to
    the contract's words: the window's logs come with timestamps and models.
    """
    import time

    from aigw.evidence import Check
    from aigw.steps.verify_endpoints import load_probe_log_ids

    name = "logs API returns this run's requests with timestamps and models"
    expected = load_probe_log_ids(Path(session.run_dir), session.run_id)
    deadline = time.monotonic() + max(wait_s, 0.0)
    pause = 0.1
    while True:
        read = fetch_gateway_logs(session.client, session.settings.gateway_id, filters=run_filter(session.run_id))
        frame = build_frame(read.columns)
        result = verify_run_logs(frame, session.run_id, expected or ())
        if result.passed or expected is None or time.monotonic() >= deadline:
            break
        # Logs reach the API seconds after the request (cloudflare/ai#255): read again soon, then less often
        # (0.1 s doubling up to every 2 s), so a log that is nearly there is not waited for 2 s.
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(2 * pause, 2.0)
    outcome = RunLogsVerification(frame, result)
    if expected is not None or result.found:
        outcome.checks.append(Check(5, name, "pass" if result.passed else "fail", result.detail))
        return outcome
    window = fetched.frame if fetched is not None else empty_frame()
    if window.empty:
        outcome.checks.append(Check(5, name, "skip", f"no logs of run {session.run_id} and none in the window: "
                                    "run notebook 03 first (it sends tagged probes), or widen the window"))
        return outcome
    timed = int(window["created_at"].notna().sum())
    modelled = int(window["model"].notna().sum())
    passed = timed == len(window) and modelled == len(window)
    outcome.frame = window
    outcome.checks.append(Check(5, name, "pass" if passed else "fail",
                                f"no probes of run {session.run_id} to match (run 03 for the stricter check); the "
                                f"window's {len(window):,} logs: {timed:,} with created_at, {modelled:,} with a model"))
    return outcome
