"""Notebook 04's logic: the gateway's logs of a window, as a typed DataFrame, and the tables an operator reads.

Criterion 5 of the contract: the logs API returns this run's probe requests, with timestamps and models.
The frame is ``aigw.logs_frame``'s, the tables ``aigw.logs_tables``'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from aigw.errors import ConfigError
from aigw.log_systems import fetch_gateway_logs
from aigw.logpush import load_bucket_settings
from aigw.logs_frame import (
    Window,
    build_frame,
    empty_frame,
    export_parquet,
    resolve_window,
    run_filter,
    selection_filters,
)
from aigw.logs_logpush import EXPORT_FOLDER, LogpushWindow, read_logpush_window
from aigw.logs_tables import LogsReport, RunLogsCheck, analyse, verify_run_logs
from aigw.steps.polling import PollSchedule

if TYPE_CHECKING:
    from aigw.session import Session

__all__ = [
    "EXPORT_FILE",
    "SOURCES",
    "LogsExport",
    "LogsFetch",
    "RunLogsVerification",
    "analyse_logs",
    "check_run_logs",
    "export_logs",
    "fetch_window",
]

EXPORT_FILE: Final = "04_logs.parquet"
#: Where notebook 04 reads the window from: the logs API, or notebook 07's Logpush export in the bucket.
SOURCES: Final = ("api", "logpush")
#: ``check_run_logs``: how often the logs are read again while a probe's log is missing (see there).
_RUN_LOGS_POLL: Final = PollSchedule(fast_s=0.25, fast_for_s=5.0, slow_s=0.5)


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
    source: str = "api",
) -> LogsFetch | LogpushWindow:
    """Every log of the window that matches, read ``per_page`` at a time with ``concurrency`` pages in
    flight (the client keeps inside the API's request budget), with a progress bar, into a typed frame.

    With ``source="logpush"`` the window's events come from notebook 07's Logpush export in the bucket instead
    (``aigw.logs_logpush``: streamed into DuckDB, never whole in memory); Cloudflare ``filters`` do not apply
    there (the export is not the logs API), ``providers`` and ``models`` do."""
    import time

    window = resolve_window(since, until, last_hours)
    if source not in SOURCES:
        raise ConfigError(f"parameter source={source!r} is not a log source", hint='Use source="api" or "logpush"')
    if source == "logpush":
        if list(filters or []):
            raise ConfigError("filters are the logs API's: they do not apply to source='logpush'",
                              hint='Drop filters (providers and models still apply), or use source="api"')
        return read_logpush_window(load_bucket_settings(session.settings), window, providers=list(providers),
                                   models=list(models))
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




def analyse_logs(fetched: LogsFetch | LogpushWindow) -> LogsReport:
    """Every table of notebook 04 from the fetched frame, or from the export's named SQL for
    ``source="logpush"`` (an empty window gives empty tables)."""
    if isinstance(fetched, LogpushWindow):
        return fetched.report()
    return analyse(fetched.frame)


@dataclass(frozen=True)
class LogsExport:
    path: Path
    rows: int
    bytes: int
    checks: list[Any] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        kind = "Parquet, a folder a day" if self.path.is_dir() else "Parquet"
        return f"Wrote **{self.rows:,}** logs to `{self.path}` ({self.bytes / 2**20:.2f} MiB, {kind})."


def export_logs(session: Session, fetched: LogsFetch | LogpushWindow, name: str = EXPORT_FILE) -> LogsExport:
    """The frame as Parquet in the run folder (dtypes kept: categoricals, UTC times); for ``source="logpush"``
    the window's events as Parquet partitioned by day (``04_logs_by_day/day=YYYY-MM-DD/``)."""
    if isinstance(fetched, LogpushWindow):
        folder = fetched.export(Path(session.run_dir) / EXPORT_FOLDER)
        size = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        return LogsExport(folder, fetched.rows, size)
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
    session: Session, fetched: LogsFetch | LogpushWindow | None = None, *, wait_s: float = 60.0
) -> RunLogsVerification:
    """Criterion 5: the logs API returns this run's probe requests (``metadata.value`` eq the run id), each
    with a timestamp and a model, and every ``cf-aig-log-id`` notebook 03 saw among them.

    Logs reach the API shortly after a request; while some probe's log is missing, the read is repeated
    (0.1 s later, then every 0.25 s for 5 s, then every 0.5 s) for up to ``wait_s`` s. Without 03's probes in the
    run folder, it falls back to the contract's words: the window's logs come with timestamps and models.
    """
    import time

    from aigw.evidence import Check
    from aigw.steps.verify_endpoints import load_probe_log_ids

    name = "logs API returns this run's requests with timestamps and models"
    expected = load_probe_log_ids(Path(session.run_dir), session.run_id)
    started = time.monotonic()
    deadline = started + max(wait_s, 0.0)
    pause = 0.1
    while True:
        read = fetch_gateway_logs(session.client, session.settings.gateway_id, filters=run_filter(session.run_id))
        frame = build_frame(read.columns)
        result = verify_run_logs(frame, session.run_id, expected or ())
        if result.passed or expected is None or time.monotonic() >= deadline:
            break
        # Logs reach the API seconds after the request (cloudflare/ai#255): read again soon, every 0.25 s for the
        # first seconds (03's last probe's log usually lands then: at every 0.5 s it was seen up to 0.5 s late on
        # the run's critical path), then every 0.5 s (every 2 s made that up to 1.6 s: docs/PERFORMANCE.md, round
        # 4). A 60 s wait costs at most 132 reads of the API's 1,200 per 5 minutes, and only while a log is missing.
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = _RUN_LOGS_POLL.pause(time.monotonic() - started)
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
