"""Notebook 04 over the Logpush export (``source="logpush"``): the window's ``ai_gateway_events`` read from the
bucket one object at a time into DuckDB (``aigw.logpush_analysis.ExportStore``, bounded memory), and 04's
tables answered by the named SQL (``NAMED_QUERIES``) in the shapes ``aigw.logs_tables`` gives the API route,
so the notebook's cells, plots and checks are the same for both sources.

What differs by nature from the API route (the export does not carry it, or carries it otherwise):

* tokens in / out: ``Metrics`` holds cost and duration only, so ``summary.tokens_*`` are None and the usage
  table's token columns are NaN (the plot draws no token bars);
* errors: the API's ``success = false``; here ``StatusCode >= 400`` (as ``aigw.logpush_analysis`` assumes);
* times: ``Timestamp`` has the job's precision (seconds with 07's ``rfc3339``), so ``first`` / ``last`` and an
  event on the window's edge may differ by less than a second; requests over time are binned from the epoch
  (the API route's bins start at the first day's midnight: the same bins for every width up to a day);
* the log id, ``cf-aig-metadata`` (encrypted, so no run id or probe name) and the payloads are not read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aigw.errors import ConfigError
from aigw.logpush import BucketSettings
from aigw.logpush_analysis import ExportStore, read_event_batches
from aigw.logs_frame import Window, build_frame, empty_frame
from aigw.logs_tables import LogsReport, LogsSummary, pick_frequency

__all__ = ["EXPORT_FOLDER", "LogpushWindow", "export_report", "read_logpush_window"]

#: Where notebook 04 writes the window's events from the export: Parquet, one folder a day.
EXPORT_FOLDER: Final = "04_logs_by_day"
_GROUP: Final = ["provider", "model"]


def _pairs_index(table: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([table["provider"].astype("str"), table["model"].astype("str")], names=_GROUP)


def _by_pair(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    ordered = table.sort_values(_GROUP, kind="stable")
    out = ordered[columns].copy()
    out.index = _pairs_index(ordered)
    return out


def _summary(store: ExportStore) -> LogsSummary:
    totals = store.query("totals").iloc[0]
    requests = int(totals["requests"])
    pairs = store.query("providers_models")
    return LogsSummary(
        requests=requests, tokens_in=None, tokens_out=None, cost=float(totals["cost"]), errors=int(totals["errors"]),
        cached=int(totals["cached"]),
        first=pd.Timestamp(totals["first"]) if requests else None,
        last=pd.Timestamp(totals["last"]) if requests else None,
        providers=tuple(dict.fromkeys(str(p) for p in pairs["provider"])),
        models=tuple(dict.fromkeys(str(m) for m in pairs["model"])),
    )


def _over_time(store: ExportStore, summary: LogsSummary, freq: str | None) -> pd.DataFrame:
    if summary.first is None or summary.last is None:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="created_at"))
    width = pd.Timedelta(freq or pick_frequency(summary.first, summary.last))
    counts = store.query("requests_over_time", {"bin_s": width / timedelta(seconds=1)})
    table = counts.pivot_table(index="bin", columns="provider", values="requests", fill_value=0, aggfunc="sum")
    table.index = pd.DatetimeIndex(table.index, name="created_at").tz_convert("UTC")
    table.columns = pd.Index([str(c) for c in table.columns], name="provider")
    return table.astype("int64")


def _usage(rows: pd.DataFrame) -> pd.DataFrame:
    table = _by_pair(rows, ["requests", "cost"]).rename(columns={"cost": "cost_usd"})
    table.insert(1, "tokens_in", np.nan)
    table.insert(2, "tokens_out", np.nan)
    table = table.astype({"requests": "int64", "cost_usd": "float64", "tokens_in": "float64", "tokens_out": "float64"})
    total = pd.DataFrame([[int(table["requests"].sum()), np.nan, np.nan, float(table["cost_usd"].sum())]],
                         columns=table.columns, index=pd.MultiIndex.from_tuples([("total", "")], names=_GROUP))
    return total if table.empty else pd.concat([table, total])


def _errors(rows: pd.DataFrame) -> pd.DataFrame:
    table = _by_pair(rows, ["requests", "errors"]).astype("int64")
    table["error_rate"] = (table["errors"] / table["requests"]).astype("float64")
    return table


def _latency(store: ExportStore) -> pd.DataFrame:
    table = _by_pair(store.query("latency_percentiles"), ["requests", "p50", "p95", "p99"])
    table = table.rename(columns={"p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms"})
    return table.astype({"requests": "int64", "p50_ms": "float64", "p95_ms": "float64", "p99_ms": "float64"})


def _status(store: ExportStore) -> pd.DataFrame:
    rows = store.query("status_codes")
    if rows.empty:
        return pd.DataFrame(index=pd.Index([], name="provider"))
    codes = rows["status_code"].astype("Int64").astype("str").where(rows["status_code"].notna(), "<NA>")
    table = rows.assign(status=codes).pivot_table(index="provider", columns="status", values="requests",
                                                  fill_value=0, aggfunc="sum")
    table = table.reindex(columns=sorted(table.columns))
    table.index = pd.Index([str(i) for i in table.index], name="provider")
    table.columns = pd.Index(list(table.columns), name="status")
    return table.astype("int64")


def _cache(store: ExportStore) -> pd.DataFrame:
    table = _by_pair(store.query("cache_hit_rate"), ["requests", "hits"]).astype("int64")
    table["hit_rate"] = (table["hits"] / table["requests"]).astype("float64")
    return table


def export_report(store: ExportStore, *, freq: str | None = None) -> LogsReport:
    """Notebook 04's tables from the store's ``events``, shaped as ``aigw.logs_tables.analyse``'s."""
    summary = _summary(store)
    usage = store.query("usage_by_model")  # one scan for two tables
    return LogsReport(summary=summary, over_time=_over_time(store, summary, freq), latency=_latency(store),
                      usage=_usage(usage), errors=_errors(usage), status=_status(store), cache=_cache(store),
                      notes=["tokens are not in the Logpush export (Metrics holds cost and duration)"])


@dataclass
class LogpushWindow:
    """The window's events from the Logpush export, held by DuckDB (not pandas), and how they were read."""

    store: ExportStore = field(repr=False)
    window: Window
    place: str
    rows: int
    seconds: float
    checks: list[Any] = field(default_factory=list)
    log_system: str = "the Logpush export (ai_gateway_events in the bucket), analysed with DuckDB"
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def frame(self) -> pd.DataFrame:
        """The events as a typed frame (``aigw.logs_frame.COLUMNS``; no id, tokens or metadata): read from DuckDB
        on first use only, since the analysis never needs it; criterion 5's fallback and a sample do."""
        if self._frame is None:
            if self.empty:
                self._frame = empty_frame()
            else:
                rows = self.store.query(
                    "SELECT ts AS created_at, provider, model, endpoint AS path, status_code, "
                    "coalesce(status_code < 400, false) AS success, cached, duration_ms AS duration, cost "
                    "FROM events ORDER BY ts")
                self._frame = build_frame({name: rows[name].tolist() for name in rows.columns})
        return self._frame

    def report(self, *, freq: str | None = None) -> LogsReport:
        return export_report(self.store, freq=freq)

    def export(self, folder: Path) -> Path:
        return self.store.write_parquet_by_day(folder)

    def close(self) -> None:
        self.store.close()

    def _repr_markdown_(self) -> str:
        system = f"**Log system:** {self.log_system}\n\n"
        if self.empty:
            return system + (f"**No exported events in this window** ({self.window}; bucket {self.place}). Widen the "
                             "window, check notebook 07's job delivers, or use `source = \"api\"`.")
        return system + (f"**{self.rows:,} events** from the Logpush export in {self.place}, read in "
                         f"{self.seconds:.1f} s; window {self.window}.")


def _days(window: Window) -> list[Any]:
    first, last = window.since.date(), window.until.date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def read_logpush_window(bucket: BucketSettings, window: Window, *, providers: list[str] | None = None,
                        models: list[str] | None = None, workers: int = 2, memory_limit: str = "512MB",
                        spill_to: Path | None = None) -> LogpushWindow:
    """The export's events of ``window`` (``since`` <= ts < ``until``; only ``providers`` / ``models`` when given),
    from the day folders the window covers, streamed into an ``ExportStore``."""
    from datetime import datetime

    for name, values in (("providers", providers), ("models", models)):
        if values and not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{name} must be a list of strings", hint=f'e.g. {name}=["openai"]')
    started = time.perf_counter()
    store = ExportStore(spill_to=spill_to, memory_limit=memory_limit)
    conditions = ["ts >= $since", "ts < $until"]
    params: dict[str, Any] = {"since": window.since, "until": window.until}
    if providers:
        conditions.append("list_contains($providers, provider)")
        params["providers"] = list(providers)
    if models:
        conditions.append("list_contains($models, model)")
        params["models"] = list(models)
    days = [datetime(d.year, d.month, d.day) for d in _days(window)]
    try:
        rows = store.load(read_event_batches(bucket, days, workers=workers), " AND ".join(conditions), params)
    except BaseException:
        store.close()
        raise
    return LogpushWindow(store, window, bucket.place(), rows, time.perf_counter() - started)
