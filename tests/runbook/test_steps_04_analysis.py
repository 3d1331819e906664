"""Notebook 04's analysis on synthetic logs with known totals: every table is checked cell by cell."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aigw import logs_frame, logs_tables
from aigw.errors import ConfigError

RUN = "run-20260112-0900"


def _meta(run_id: str, check: str) -> str:
    return json.dumps({"aigw_run_id": run_id, "aigw_check": check})


def _logs() -> dict[str, list[Any]]:
    """Eight logs, in API field names, deliberately out of time order, with nulls where the API allows them."""
    return {
        "id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"],
        "created_at": [
            "2026-01-12T09:00:30Z",
            "2026-01-12T09:00:00Z",
            "2026-01-12T09:01:10.250Z",
            "2026-01-12T09:02:00+00:00",
            "2026-01-12T09:02:30Z",
            "2026-01-12T09:03:00Z",
            "2026-01-12T09:03:59Z",
            "2026-01-12T09:00:10Z",
        ],
        "provider": ["openai", "openai", "anthropic", "anthropic", "google-ai-studio", "openai", "openai", "anthropic"],
        "model": ["gpt-4o", "gpt-4o", "claude-3-sonnet", "claude-3-sonnet", "gemini-2.5-flash", "gpt-4", "gpt-4o",
                  "claude-3-sonnet"],
        "path": ["chat/completions"] * 2 + ["v1/messages"] * 2 + ["v1beta/models/gemini-2.5-flash:generateContent"]
        + ["chat/completions"] * 2 + ["v1/messages"],
        "duration": [100, 300, 200, 400, 50, 1000, 500, 600],
        "success": [True, True, True, False, True, False, True, True],
        "cached": [False, True, False, False, False, False, True, False],
        "tokens_in": [10, 10, 20, None, 5, 7, 10, 30],
        "tokens_out": [64, 64, 32, None, 8, 0, 64, 16],
        "cost": [0.001, 0.0, 0.002, None, 0.0005, 0.0, 0.0, 0.003],
        "status_code": [200, 200, 200, 429, 200, 500, 200, 200],
        "metadata": [_meta(RUN, "unified"), _meta(RUN, "cache"), _meta(RUN, "provider"), "{}",
                     _meta("other-run", "unified"), None, _meta(RUN, "cache"), "not json"],
    }


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return logs_frame.build_frame(_logs())


def test_frame_has_narrow_dtypes_and_is_sorted_by_time(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(logs_frame.COLUMNS)
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    for name in ("provider", "model", "path", "metadata", "run_id", "check"):
        assert isinstance(frame[name].dtype, pd.CategoricalDtype), name
    assert frame["duration_ms"].dtype == np.int32
    assert frame["success"].dtype == np.bool_ and frame["cached"].dtype == np.bool_
    assert str(frame["tokens_in"].dtype) == "Int32"
    assert str(frame["status_code"].dtype) == "Int16"
    assert frame["cost"].dtype == np.float64
    assert frame["created_at"].is_monotonic_increasing
    assert list(frame["id"]) == ["L2", "L8", "L1", "L3", "L4", "L5", "L6", "L7"]
    assert frame.loc[frame["id"] == "L3", "created_at"].iloc[0] == pd.Timestamp("2026-01-12T09:01:10.250Z")


def test_metadata_gives_run_id_and_check(frame: pd.DataFrame) -> None:
    by_id = frame.set_index("id")
    assert by_id.loc["L1", "run_id"] == RUN and by_id.loc["L1", "check"] == "unified"
    assert by_id.loc["L5", "run_id"] == "other-run"
    for no_tag in ("L4", "L6", "L8"):
        assert pd.isna(by_id.loc[no_tag, "run_id"]) and pd.isna(by_id.loc[no_tag, "check"])


def test_list_of_log_objects_builds_the_same_frame(frame: pd.DataFrame) -> None:
    columns = _logs()
    records = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    pd.testing.assert_frame_equal(logs_frame.build_frame(records), frame)


def test_summary_totals(frame: pd.DataFrame) -> None:
    summary = logs_tables.summarise(frame)
    assert summary.requests == 8
    assert summary.tokens_in == 92
    assert summary.tokens_out == 248
    assert summary.cost == pytest.approx(0.0065, abs=1e-12)
    assert summary.errors == 2
    assert summary.cached == 2
    assert summary.first == pd.Timestamp("2026-01-12T09:00:00Z")
    assert summary.last == pd.Timestamp("2026-01-12T09:03:59Z")
    assert summary.as_dict()["error_rate"] == 0.25


def test_usage_by_model(frame: pd.DataFrame) -> None:
    expected = pd.DataFrame(
        {
            "requests": [3, 1, 1, 3, 8],
            "tokens_in": [50, 5, 7, 30, 92],
            "tokens_out": [48, 8, 0, 192, 248],
            "cost_usd": [0.005, 0.0005, 0.0, 0.001, 0.0065],
        },
        index=pd.MultiIndex.from_tuples(
            [("anthropic", "claude-3-sonnet"), ("google-ai-studio", "gemini-2.5-flash"), ("openai", "gpt-4"),
             ("openai", "gpt-4o"), ("total", "")],
            names=["provider", "model"],
        ),
    )
    pd.testing.assert_frame_equal(logs_tables.usage_by_model(frame), expected, check_exact=False, atol=1e-12)


def test_latency_percentiles_interpolate_linearly(frame: pd.DataFrame) -> None:
    table = logs_tables.latency_percentiles(frame)
    gpt4o = table.loc[("openai", "gpt-4o")]
    # durations 100, 300, 500: p50 = 300, p95 = 300 + 0.9 * 200, p99 = 300 + 0.98 * 200
    assert gpt4o["requests"] == 3
    assert gpt4o["p50_ms"] == pytest.approx(300.0)
    assert gpt4o["p95_ms"] == pytest.approx(480.0)
    assert gpt4o["p99_ms"] == pytest.approx(496.0)
    claude = table.loc[("anthropic", "claude-3-sonnet")]
    assert claude["p50_ms"] == pytest.approx(400.0)
    assert claude["p95_ms"] == pytest.approx(580.0)
    by_provider = logs_tables.latency_percentiles(frame, by=("provider",))
    assert by_provider.loc["openai", "requests"] == 4
    assert by_provider.loc["openai", "p50_ms"] == pytest.approx(400.0)


def test_error_rates_and_status_codes(frame: pd.DataFrame) -> None:
    errors = logs_tables.error_rates(frame)
    assert errors.loc[("anthropic", "claude-3-sonnet")].tolist() == [3, 1, pytest.approx(1 / 3)]
    assert errors.loc[("openai", "gpt-4")].tolist() == [1, 1, 1.0]
    assert errors.loc[("openai", "gpt-4o")].tolist() == [3, 0, 0.0]
    status = logs_tables.status_codes(frame)
    expected = pd.DataFrame(
        {"200": [2, 1, 3], "429": [1, 0, 0], "500": [0, 0, 1]},
        index=pd.Index(["anthropic", "google-ai-studio", "openai"], name="provider"),
    )
    expected.columns.name = "status"
    pd.testing.assert_frame_equal(status, expected, check_column_type=False)


def test_cache_hit_rate(frame: pd.DataFrame) -> None:
    cache = logs_tables.cache_hit_rate(frame)
    assert cache.loc[("openai", "gpt-4o")].tolist() == [3, 2, pytest.approx(2 / 3)]
    assert cache.loc[("anthropic", "claude-3-sonnet")].tolist() == [3, 0, 0.0]
    assert int(cache["hits"].sum()) == 2


def test_requests_over_time_by_provider(frame: pd.DataFrame) -> None:
    table = logs_tables.requests_over_time(frame, "1min")
    expected = pd.DataFrame(
        {"anthropic": [1, 1, 1, 0], "google-ai-studio": [0, 0, 1, 0], "openai": [2, 0, 0, 2]},
        index=pd.DatetimeIndex(
            ["2026-01-12T09:00Z", "2026-01-12T09:01Z", "2026-01-12T09:02Z", "2026-01-12T09:03Z"], name="created_at"
        ).as_unit("ns"),
    )
    expected.columns.name = "provider"
    pd.testing.assert_frame_equal(table, expected, check_freq=False)
    assert int(table.to_numpy().sum()) == len(frame)
    # a 4-minute span fits in 60 bins of 10 s, not of 1 s
    assert logs_tables.pick_frequency(frame["created_at"].min(), frame["created_at"].max()) == "10s"


def test_empty_window_gives_empty_tables_not_errors() -> None:
    empty = logs_frame.build_frame({})
    assert list(empty.columns) == list(logs_frame.COLUMNS)
    report = logs_tables.analyse(empty)
    assert report.empty
    assert report.summary.requests == 0 and report.summary.first is None
    assert report.latency.empty and report.errors.empty and report.cache.empty and report.over_time.empty
    assert report.usage.loc[("total", "")].tolist() == [0, 0, 0, 0.0]
    check = logs_tables.verify_run_logs(empty, RUN)
    assert not check.passed and "no log carries" in check.detail


def test_verify_run_logs(frame: pd.DataFrame) -> None:
    ok = logs_tables.verify_run_logs(frame, RUN, expected_log_ids=["L1", "L3"])
    assert ok.passed, ok.detail
    assert ok.found == 4
    assert "claude-3-sonnet, gpt-4o" in ok.detail
    missing = logs_tables.verify_run_logs(frame, RUN, expected_log_ids=["L1", "L5", "L99"])
    assert not missing.passed
    assert missing.missing_ids == ("L5", "L99")


def test_parquet_export_round_trips(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = logs_frame.export_parquet(frame, tmp_path / "run" / "logs.parquet")
    assert path.is_file() and not path.with_name("logs.parquet.partial").exists()
    back = pd.read_parquet(path)
    assert len(back) == len(frame)
    assert str(back["created_at"].dtype).startswith("datetime64[") and str(back["created_at"].dt.tz) == "UTC"
    assert isinstance(back["provider"].dtype, pd.CategoricalDtype)
    assert int(back["tokens_in"].sum()) == 92


def test_window_from_parameters() -> None:
    now = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
    assert logs_frame.resolve_window(last_hours=2, now=now) == logs_frame.Window(now - timedelta(hours=2), now)
    window = logs_frame.resolve_window("2026-01-12T09:00:00Z", "2026-01-12T10:00:00", now=now)
    assert window.since == datetime(2026, 1, 12, 9, tzinfo=UTC)
    assert window.until == datetime(2026, 1, 12, 10, tzinfo=UTC)
    assert logs_frame.window_filters(window) == [
        {"key": "created_at", "operator": "gt", "value": ["2026-01-12T09:00:00Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-01-12T10:00:00Z"]},
    ]
    assert logs_frame.run_filter(RUN) == [{"key": "metadata.value", "operator": "eq", "value": [RUN]}]
    with pytest.raises(ConfigError, match="not an ISO 8601"):
        logs_frame.resolve_window("yesterday")
    with pytest.raises(ConfigError, match="window is empty"):
        logs_frame.resolve_window("2026-01-12T10:00:00Z", "2026-01-12T09:00:00Z")
