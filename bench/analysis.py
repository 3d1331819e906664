"""Row ``analysis``: notebook 04's analysis of 1,000,000 log rows (the frame already built).

Each side runs in a fresh process (``python -m bench.analysis ours|pandas ROWS``) on the same rows:
columns of Python values as the client's ``fetch_logs`` returns them (the same seed each time).

* ours: ``logs_frame.build_frame`` (categoricals, narrow ints), then ``logs_tables.analyse``.
* reference: ``pd.DataFrame(columns)`` with default dtypes (``created_at`` parsed to datetimes, as any
  time table needs), then the same seven tables written plainly in pandas.

Peak memory = the frame's deep size + the most resident memory the analysis added on top (sampled
from /proc every millisecond; freed memory is trimmed back to the OS before it starts).
"""

from __future__ import annotations

import ctypes
import gc
import json
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from bench.common import PYTHON, Row, child_env

PROVIDERS = {
    "openai": ["gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "o4-mini"],
    "anthropic": ["claude-3-5-haiku", "claude-sonnet-4", "claude-opus-4"],
    "google-ai-studio": ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite"],
}


def make_columns(rows: int, seed: int = 11) -> dict[str, list[Any]]:
    """Log columns as the API returns them (strings, ints, floats, bools, None), 30 days of traffic."""
    rng = np.random.default_rng(seed)
    pairs = [(p, m) for p, models in PROVIDERS.items() for m in models]
    which = rng.integers(0, len(pairs), rows)
    provider = np.array([p for p, _ in pairs], dtype=object)[which]
    model = np.array([m for _, m in pairs], dtype=object)[which]
    path = np.where(provider == "anthropic", "v1/messages",
                    np.where(provider == "openai", "chat/completions", "v1beta/models:generateContent"))
    start = np.datetime64("2026-01-01T00:00:00", "ms")
    created = np.sort(start + rng.integers(0, 30 * 86_400_000, rows).astype("timedelta64[ms]"))
    ok = rng.random(rows) > 0.03
    status = np.where(ok, 200, rng.choice([400, 429, 500, 503], rows))
    tokens_in = rng.integers(5, 4000, rows)
    tokens_out = rng.integers(1, 1500, rows)
    runs = [json.dumps({"aigw_run_id": f"run-{i}", "aigw_check": c}) for i in range(20)
            for c in ("unified", "provider", "overhead")]
    meta_pick = rng.integers(-len(runs), len(runs), rows)  # about half the rows carry no metadata
    return {
        "id": [f"01J{i:023d}" for i in range(rows)],
        "created_at": np.datetime_as_string(created, unit="ms", timezone="UTC").tolist(),
        "provider": provider.tolist(),
        "model": model.tolist(),
        "model_type": ["chat"] * rows,
        "path": path.tolist(),
        "request_type": ["universal"] * rows,
        "request_content_type": ["application/json"] * rows,
        "response_content_type": ["application/json"] * rows,
        "status_code": status.tolist(),
        "success": ok.tolist(),
        "cached": (rng.random(rows) < 0.1).tolist(),
        "duration": rng.gamma(2.0, 150.0, rows).round().astype(int).tolist(),
        "tokens_in": tokens_in.tolist(),
        "tokens_out": tokens_out.tolist(),
        "cost": (tokens_in * 1.5e-7 + tokens_out * 6e-7).tolist(),
        "custom_cost": [False] * rows,
        "step": [0] * rows,
        "metadata": [runs[k] if k >= 0 else None for k in meta_pick.tolist()],
    }


def plain_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame


def plain_analysis(frame: pd.DataFrame) -> dict[str, Any]:
    """The seven tables of ``logs_tables.analyse``, written plainly on default dtypes."""
    group = ["provider", "model"]
    grouped = frame.groupby(group)
    return {
        "summary": {"requests": len(frame), "tokens_in": frame["tokens_in"].sum(),
                    "tokens_out": frame["tokens_out"].sum(), "cost": frame["cost"].sum(),
                    "errors": (~frame["success"]).sum(), "cached": frame["cached"].sum(),
                    "first": frame["created_at"].min(), "last": frame["created_at"].max(),
                    "providers": frame["provider"].unique(), "models": frame["model"].unique()},
        "over_time": frame.groupby([pd.Grouper(key="created_at", freq="1D"), "provider"]).size().unstack(
            fill_value=0),
        "latency": grouped["duration"].quantile([0.5, 0.95, 0.99]).unstack(),
        "usage": grouped.agg(requests=("success", "size"), tokens_in=("tokens_in", "sum"),
                             tokens_out=("tokens_out", "sum"), cost_usd=("cost", "sum")),
        "errors": grouped["success"].agg(["size", "sum"]),
        "status": frame.groupby(["provider", "status_code"]).size().unstack(fill_value=0),
        "cache": grouped["cached"].agg(["size", "sum"]),
    }


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class PeakSampler:
    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def child(side: str, rows: int) -> dict[str, Any]:
    columns = make_columns(rows)
    if side == "ours":
        from aigw.logs_frame import build_frame
        from aigw.logs_tables import analyse

        frame = build_frame(columns)

        def analysis() -> Any:
            return analyse(frame, freq="1D")
    else:
        frame = plain_frame(columns)

        def analysis() -> Any:
            return plain_analysis(frame)
    del columns
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    before = _rss()
    with PeakSampler() as sampler:
        started = time.perf_counter()
        analysis()
        took = time.perf_counter() - started
    added = max(0, sampler.peak - before)
    return {"side": side, "rows": len(frame), "frame_bytes": frame_bytes, "analysis_added_bytes": added,
            "peak_bytes": frame_bytes + added, "analysis_s": took,
            "dtypes": {k: str(v) for k, v in frame.dtypes.items()}}


def _measure(side: str, rows: int) -> dict[str, Any]:
    done = subprocess.run([PYTHON, "-m", "bench.analysis", side, str(rows)], env=child_env(),
                          capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> Row:
    rows = 100_000 if quick else 1_000_000
    ours = _measure("ours", rows)
    reference = _measure("pandas", rows)
    ratio = reference["peak_bytes"] / ours["peak_bytes"]
    mib = 1024 * 1024
    notes = [f"ours: frame {ours['frame_bytes'] / mib:.0f} MiB + analysis {ours['analysis_added_bytes'] / mib:.0f} "
             f"MiB, {ours['analysis_s']:.2f} s; default dtypes: frame {reference['frame_bytes'] / mib:.0f} MiB + "
             f"analysis {reference['analysis_added_bytes'] / mib:.0f} MiB, {reference['analysis_s']:.2f} s"]
    return Row(
        "analysis", f"notebook 04's analysis of {rows:,} log rows (frame built), each side in its own process",
        f"peak {ours['peak_bytes'] / mib:.0f} MiB, {ours['analysis_s']:.2f} s",
        f"default dtypes: peak {reference['peak_bytes'] / mib:.0f} MiB, {reference['analysis_s']:.2f} s",
        ratio, ">= 2x less memory, < 3 s", ratio >= 2.0 and ours["analysis_s"] < 3.0, notes,
        {"ours": ours, "reference": reference},
    )


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2])), default=str))
