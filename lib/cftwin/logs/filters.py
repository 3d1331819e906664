"""The logs API's query language: ``filters``, ``search`` and the deprecated single-field parameters,
validated and turned into one SQL condition over ``logs``. How a query string encodes ``filters`` (three
ways) is read in ``cftwin.logs.encodings``.

Every failure is 400 / 7001 with the offending ``path`` (``["query", "filters", "1", "operator"]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cftwin.envelope import CloudflareAPIError, validation_error
from cftwin.logs.ids import format_timestamp, parse_timestamp

__all__ = [
    "FILTER_KEYS",
    "MAX_FILTERS",
    "MAX_VALUES",
    "OPERATORS",
    "LogFilter",
    "build_condition",
    "invalid",
    "legacy_filters",
    "make_filter",
    "parse_filter_items",
]

#: ``key`` -> what kind of value it compares. (From the SDK's ``Filter`` type and the 2026 spec.)
FILTER_KEYS: Final[dict[str, str]] = {
    "id": "id",
    "created_at": "time",
    "request_content_type": "string",
    "response_content_type": "string",
    "request_type": "string",
    "success": "bool",
    "cached": "bool",
    "provider": "string",
    "model": "string",
    "model_type": "string",
    "cost": "number",
    "tokens": "number",
    "tokens_in": "number",
    "tokens_out": "number",
    "duration": "number",
    "feedback": "number",
    "event_id": "string",
    "metadata.key": "meta",
    "metadata.value": "meta",
    "authentication": "bool",
    "wholesale": "bool",
    "compatibilityMode": "bool",
    "dlp_action": "string",
    "user_agent": "string",
}
OPERATORS: Final = ("eq", "neq", "contains", "lt", "gt")
# ASSUMPTION: Cloudflare does not say which operator applies to which key. The twin allows order
# comparisons on numbers, times and ids (ULIDs sort by time), substring matches on text, and only
# (in)equality on booleans; anything else is 7001 rather than a silently empty result.
_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "id": frozenset({"eq", "neq", "contains", "lt", "gt"}),
    "string": frozenset({"eq", "neq", "contains"}),
    "meta": frozenset({"eq", "neq", "contains"}),
    "number": frozenset({"eq", "neq", "lt", "gt"}),
    "time": frozenset({"eq", "neq", "lt", "gt"}),
    "bool": frozenset({"eq", "neq"}),
}
# ASSUMPTION: Cloudflare's limits on filters are not documented; these keep every query cheap and
# within SQLite's bound-parameter limit.
MAX_FILTERS: Final = 50
MAX_VALUES: Final = 100

_COLUMN: Final[dict[str, str]] = {
    "tokens": "(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0))",
    "compatibilityMode": "compatibility_mode",
}
_NUMBER: Final = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_META_VALUE_TEXT: Final = (
    "CASE type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(value AS TEXT) END"
)
_SEARCH_COLUMNS: Final = ("id", "provider", "model", "model_type", "path", "metadata", "event_id")

Value = str | float | int | None


@dataclass(frozen=True)
class LogFilter:
    """One validated filter. ``values`` are typed for the key (numbers, 0/1 for booleans, stored-form
    timestamps, text); ``None`` is JSON null. ``gte``/``lte`` only come from the deprecated parameters."""

    key: str
    operator: str
    values: tuple[Value, ...]


def invalid(message: str, path: Sequence[str]) -> CloudflareAPIError:
    """400 / 7001 with ``result: {}``, the failure shape the logs operations declare."""
    error = validation_error(message, path)
    error.result = {}
    return error


# --- typing one filter --------------------------------------------------------------------------


def _number(raw: object) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if isinstance(raw, str) and len(raw) <= 64 and _NUMBER.match(raw.strip()):
        value = float(raw)
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    return None


def _text(raw: object) -> str | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return str(int(raw)) if raw.is_integer() and abs(raw) < 2**53 else repr(raw)
    return None


def _typed(kind: str, raw: object) -> Value:
    """``raw`` as the key's kind needs it; raises ``ValueError`` (with a reason) when it cannot be."""
    if kind == "number":
        number = _number(raw)
        if number is None:
            raise ValueError("must be a number")
        return number
    if kind == "bool":
        if raw is True or raw == "true":
            return 1
        if raw is False or raw == "false":
            return 0
        raise ValueError("must be true or false")
    if kind == "time":
        if not isinstance(raw, str):
            raise ValueError("must be an RFC 3339 date-time")
        try:
            return format_timestamp(parse_timestamp(raw))
        except (ValueError, OverflowError):
            raise ValueError("must be an RFC 3339 date-time") from None
    text = _text(raw)
    if text is None:
        raise ValueError("must be a string, number or boolean")
    if "\x00" in text:
        raise ValueError("must not contain NUL")
    return text


def make_filter(key: object, operator: object, values: object, path: Sequence[str]) -> LogFilter:
    """Validate one filter's fields; 7001 at ``path`` + the field when one is wrong."""
    if not isinstance(key, str) or key not in FILTER_KEYS:
        raise invalid(f"filter key must be one of {', '.join(FILTER_KEYS)}", [*path, "key"])
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise invalid(f"filter operator must be one of {', '.join(OPERATORS)}", [*path, "operator"])
    kind = FILTER_KEYS[key]
    if operator not in _ALLOWED[kind]:
        allowed = ", ".join(op for op in OPERATORS if op in _ALLOWED[kind])
        raise invalid(f"operator {operator!r} does not apply to {key!r} (use {allowed})", [*path, "operator"])
    if not isinstance(values, list):
        raise invalid("filter value must be an array", [*path, "value"])
    # ASSUMPTION: an empty value array matches nothing useful, so it is refused (as is more than
    # one value for lt/gt, where "any of" would be ambiguous).
    if not values:
        raise invalid("filter value must hold at least one item", [*path, "value"])
    if len(values) > MAX_VALUES:
        raise invalid(f"filter value holds at most {MAX_VALUES} items", [*path, "value"])
    if operator in {"lt", "gt"} and len(values) != 1:
        raise invalid(f"operator {operator!r} takes exactly one value", [*path, "value"])
    typed: list[Value] = []
    for index, raw in enumerate(values):
        if raw is None:
            if operator not in {"eq", "neq"}:
                raise invalid(f"null does not apply to operator {operator!r}", [*path, "value", str(index)])
            typed.append(None)
            continue
        if isinstance(raw, (dict, list)):
            raise invalid("filter values are strings, numbers, booleans or null", [*path, "value", str(index)])
        try:
            typed.append(_typed(kind, raw))
        except ValueError as exc:
            raise invalid(f"value for {key!r} {exc}", [*path, "value", str(index)]) from None
    return LogFilter(key, operator, tuple(typed))


def parse_filter_items(items: object, base: Sequence[str] = ("query", "filters")) -> list[LogFilter]:
    """Filters given as a JSON array of ``{key, operator, value}`` objects."""
    if not isinstance(items, list):
        raise invalid("filters must be an array of {key, operator, value}", base)
    if len(items) > MAX_FILTERS:
        raise invalid(f"at most {MAX_FILTERS} filters", base)
    result = []
    for index, item in enumerate(items):
        path = [*base, str(index)]
        if not isinstance(item, dict):
            raise invalid("each filter is an object {key, operator, value}", path)
        for field in ("key", "operator", "value"):
            if field not in item:
                raise invalid(f"filter {field} is required", [*path, field])
        result.append(make_filter(item["key"], item["operator"], item["value"], path))
    return result


# --- the deprecated single-field parameters -----------------------------------------------------

# name -> (filter key, operator). Bounds are inclusive (ASSUMPTION: "min"/"max" and start/end dates).
_LEGACY: Final[dict[str, tuple[str, str]]] = {
    "start_date": ("created_at", "gte"),
    "end_date": ("created_at", "lte"),
    "min_cost": ("cost", "gte"),
    "max_cost": ("cost", "lte"),
    "min_tokens_in": ("tokens_in", "gte"),
    "max_tokens_in": ("tokens_in", "lte"),
    "min_tokens_out": ("tokens_out", "gte"),
    "max_tokens_out": ("tokens_out", "lte"),
    "min_total_tokens": ("tokens", "gte"),
    "max_total_tokens": ("tokens", "lte"),
    "min_duration": ("duration", "gte"),
    "max_duration": ("duration", "lte"),
    "feedback": ("feedback", "eq"),
    "success": ("success", "eq"),
    "cached": ("cached", "eq"),
    "model": ("model", "eq"),
    "model_type": ("model_type", "eq"),
    "provider": ("provider", "eq"),
    "request_content_type": ("request_content_type", "eq"),
    "response_content_type": ("response_content_type", "eq"),
}


def legacy_filters(pairs: Sequence[tuple[str, str]]) -> list[LogFilter]:
    """The deprecated parameters (``start_date``, ``provider``, ``min_cost``, ...) as filters."""
    result = []
    for name, raw in pairs:
        spec = _LEGACY.get(name)
        if spec is None:
            continue
        key, operator = spec
        kind = FILTER_KEYS[key]
        try:
            value = _typed(kind, raw)
        except ValueError as exc:
            raise invalid(f"{name} {exc}", ["query", name]) from None
        if name == "feedback" and value not in (-1, 0, 1):
            raise invalid("feedback must be -1, 0 or 1", ["query", name])
        result.append(LogFilter(key, operator, (value,)))
    return result


# --- SQL ----------------------------------------------------------------------------------------


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _meta_exists(f: LogFilter, params: list[Any], paired: LogFilter | None = None) -> str:
    column = "key" if f.key == "metadata.key" else _META_VALUE_TEXT
    conditions = [_match(column, f, params)]
    if paired is not None:
        conditions.append(_match("key" if paired.key == "metadata.key" else _META_VALUE_TEXT, paired, params))
    return f"EXISTS (SELECT 1 FROM json_each(logs.metadata) WHERE {' AND '.join(conditions)})"


def _match(column: str, f: LogFilter, params: list[Any]) -> str:
    """``column`` matches any of the values (eq / contains), or is below / above the one value."""
    values = [v for v in f.values if v is not None]
    has_null = len(values) != len(f.values)
    if f.operator in {"eq", "neq"}:
        parts = []
        if values:
            parts.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        if has_null:
            parts.append(f"{column} IS NULL")
        return "(" + " OR ".join(parts) + ")"
    if f.operator == "contains":
        params.extend(_like(str(v)) for v in values)
        return "(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for _ in values) + ")"
    symbol = {"lt": "<", "gt": ">", "lte": "<=", "gte": ">="}[f.operator]
    params.append(values[0])
    return f"{column} {symbol} ?"


def _condition(f: LogFilter, params: list[Any]) -> str:
    if FILTER_KEYS[f.key] == "meta":
        if f.operator == "neq":
            return "NOT " + _meta_exists(LogFilter(f.key, "eq", f.values), params)
        return _meta_exists(f, params)
    column = _COLUMN.get(f.key, f.key)
    if f.operator == "neq":
        # A log without the field is "not equal" to every value.
        inner = _match(column, LogFilter(f.key, "eq", f.values), params)
        return f"({column} IS NULL OR NOT {inner})" if None not in f.values else f"(NOT {inner})"
    return _match(column, f, params)


def build_condition(filters: Sequence[LogFilter], search: str | None = None) -> tuple[str, list[Any]]:
    """One SQL condition over ``logs`` (all filters must hold), and its parameters."""
    params: list[Any] = []
    parts: list[str] = []
    # ASSUMPTION: a metadata.key filter and a metadata.value filter (both eq), in that order of
    # appearance, match the same metadata entry (key k has value v); unpaired ones match any entry.
    meta_keys = [f for f in filters if f.key == "metadata.key" and f.operator == "eq"]
    meta_values = [f for f in filters if f.key == "metadata.value" and f.operator == "eq"]
    pairs = dict(zip(map(id, meta_keys), meta_values, strict=False))
    paired_values = {id(v) for v in pairs.values()}
    for f in filters:
        if id(f) in paired_values:
            continue
        if id(f) in pairs:
            parts.append(_meta_exists(f, params, pairs[id(f)]))
        else:
            parts.append(_condition(f, params))
    if search:
        # ASSUMPTION: search is a case-insensitive substring match over id, provider, model,
        # model_type, path, metadata and event_id.
        pattern = _like(search)
        parts.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _SEARCH_COLUMNS) + ")")
        params.extend(pattern for _ in _SEARCH_COLUMNS)
    return " AND ".join(parts), params
