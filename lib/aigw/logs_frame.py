"""The gateway's logs as a typed pandas frame, the time window they are read in, and the Cloudflare ``filters``
that select them.

The frame is built column by column with narrow dtypes (categoricals for the few distinct strings,
``int32``/``float64`` numbers, ``bool`` flags, ``datetime64[ns, UTC]`` times) so a million rows stay small.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aigw.errors import ConfigError

__all__ = [
    "COLUMNS",
    "FILTER_KEYS",
    "FILTER_OPERATORS",
    "Window",
    "build_frame",
    "empty_frame",
    "export_parquet",
    "metadata_filter",
    "resolve_window",
    "run_filter",
    "selection_filters",
    "validate_filters",
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

def export_parquet(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write the frame to ``path`` (Parquet, categoricals kept) atomically; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    frame.to_parquet(partial, index=False, engine="pyarrow")
    partial.replace(target)
    return target



# --- filters the notebook is given -----------------------------------------------------------------------

FILTER_KEYS: Final = frozenset({
    "id", "created_at", "request_content_type", "response_content_type", "request_type", "success", "cached",
    "provider", "model", "model_type", "cost", "tokens", "tokens_in", "tokens_out", "duration", "feedback",
    "event_id", "metadata.key", "metadata.value", "authentication", "wholesale", "compatibilityMode",
    "dlp_action", "user_agent",
})
FILTER_OPERATORS: Final = frozenset({"eq", "neq", "contains", "lt", "gt"})

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
