"""The logs API's ``filters`` query, in the two encodings Cloudflare's callers use, and its timestamps."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from aigw.errors import ValidationError
from aigw.text import one_line

__all__ = ["FilterEncoding", "encode_filters", "filter_value", "iso"]

FilterEncoding = Literal["json", "dots"]


def filter_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def encode_filters(
    filters: Sequence[Mapping[str, Any]] | None, encoding: FilterEncoding = "json"
) -> list[tuple[str, str]]:
    """Query items for Cloudflare's ``filters`` (``[{key, operator, value: [...]}, ...]``).

    ``"json"``: one ``filters=<JSON array>`` (what real callers of the logs API send; unambiguous with
    several filters). ``"dots"``: the official SDKs' form, ``filters.key=..&filters.operator=..&filters.value=..``.
    """
    if not filters:
        return []
    normalised: list[dict[str, Any]] = []
    for item in filters:
        if not isinstance(item, Mapping) or not {"key", "operator", "value"} <= set(item):
            raise ValidationError(
                f"a logs filter must be an object with key, operator and value, got {one_line(repr(item), 80)}",
                status=0,
                hint='Write filters like {"key": "model", "operator": "eq", "value": ["gpt-4o-mini"]}',
            )
        value = item["value"]
        values = list(value) if isinstance(value, list | tuple) else [value]
        normalised.append({"key": str(item["key"]), "operator": str(item["operator"]), "value": values})
    if encoding == "json":
        # ASSUMPTION: Cloudflare parses filters=<JSON array> (third-party Workers send it); the twin accepts
        # both this and the SDKs' dotted form.
        return [("filters", json.dumps(normalised, separators=(",", ":")))]
    items: list[tuple[str, str]] = []
    for entry in normalised:
        items.append(("filters.key", entry["key"]))
        items.append(("filters.operator", entry["operator"]))
        items.extend(("filters.value", filter_value(v)) for v in entry["value"])
    return items


def iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

