"""The logs API's ``filters`` as a query string carries them, in every encoding clients send.

Three encodings are read (Cloudflare does not say which it parses; a client may send any):

* JSON: ``filters=[{"key":"provider","operator":"eq","value":["openai"]}]`` (URL-encoded), as
  Workers and curl users send it; several ``filters=`` parameters add up.
* dotted, repeated: ``filters.key=provider&filters.operator=eq&filters.value=openai``, what the
  official SDKs send (Python: ``nested_format="dots", array_format="repeat"``). The TypeScript SDK
  keeps each filter's fields together; the Python SDK (through httpx) groups them by name, so that
  ``filters.key=a&filters.key=b&filters.operator=..&filters.operator=..&filters.value=..`` arrives.
* indexed: ``filters[0][key]=provider&filters[0][operator]=eq&filters[0][value][]=openai``.

Each filter is then validated by ``cftwin.logs.filters.make_filter``; every failure is 400 / 7001 with the
offending ``path`` (``["query", "filters", "1", "operator"]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cftwin import jsonbody
from cftwin.logs.filters import MAX_FILTERS, LogFilter, invalid, make_filter, parse_filter_items

__all__ = ["parse_query_filters"]

_INDEXED: Final = re.compile(
    r"^filters\[([0-9]{1,4})\](?:\[(key|operator|value)\]|\.(key|operator|value))(\[[0-9]{0,4}\])?$"
)
_DOTTED: Final = ("filters.key", "filters.operator", "filters.value")


def _is_grouped(names: Sequence[str]) -> bool:
    """True when each name's occurrences are contiguous (how httpx lays out the Python SDK's query)."""
    seen: set[str] = set()
    previous = None
    for name in names:
        if name != previous:
            if name in seen:
                return False
            seen.add(name)
            previous = name
    return True


def _made(items: Sequence[Mapping[str, Any]], base: Sequence[str]) -> list[LogFilter]:
    """Filters from their gathered fields (``value`` always a list); 7001 at the first one missing a field."""
    result = []
    for index, item in enumerate(items):
        path = [*base, str(index)]
        for field in ("key", "operator"):
            if field not in item:
                raise invalid(f"filter {field} is required", [*path, field])
        result.append(make_filter(item["key"], item["operator"], item["value"], path))
    return result


def _from_dotted(pairs: Sequence[tuple[str, str]]) -> list[LogFilter]:
    base = ["query", "filters"]
    names = [name for name, _ in pairs]
    keys = [v for n, v in pairs if n == "filters.key"]
    operators = [v for n, v in pairs if n == "filters.operator"]
    values = [v for n, v in pairs if n == "filters.value"]
    count = max(len(keys), 1)
    if count > MAX_FILTERS:
        raise invalid(f"at most {MAX_FILTERS} filters", base)
    fields: list[dict[str, Any]] = []
    if count == 1:
        fields.append({"value": values})
        if len(keys) == 1:
            fields[0]["key"] = keys[0]
        if len(operators) > 1:
            raise invalid("one filter has one operator", [*base, "0", "operator"])
        if operators:
            fields[0]["operator"] = operators[0]
    elif _is_grouped(names):
        # ASSUMPTION: grouped by name, the i-th key goes with the i-th operator; the values can be
        # assigned only when each filter has exactly one (otherwise the JSON form is needed).
        if len(operators) != count:
            raise invalid(f"{count} filter keys but {len(operators)} operators", [*base, "operator"])
        if len(values) != count:
            raise invalid(
                f"{count} filters and {len(values)} values cannot be paired; give each filter one value, "
                "or send filters as a JSON array",
                [*base, "value"],
            )
        fields = [{"key": k, "operator": o, "value": [v]} for k, o, v in zip(keys, operators, values, strict=True)]
    else:
        # Interleaved (the TypeScript SDK's order): a field the current filter already has starts the next.
        for name, raw in pairs:
            field = name.partition(".")[2]
            if not fields or (field != "value" and field in fields[-1]):
                fields.append({"value": []})
            if field == "value":
                fields[-1]["value"].append(raw)
            else:
                fields[-1][field] = raw
    return _made(fields, base)


def _from_indexed(pairs: Sequence[tuple[str, str]]) -> list[LogFilter]:
    base = ["query", "filters"]
    by_index: dict[int, dict[str, Any]] = {}
    for name, raw in pairs:
        match = _INDEXED.match(name)
        assert match is not None
        index = int(match.group(1))
        field = match.group(2) or match.group(3)
        item = by_index.setdefault(index, {"value": []})
        if field == "value":
            item["value"].append(raw)
        elif field in item:
            raise invalid(f"filter {field} is given twice", [*base, str(index), field])
        else:
            item[field] = raw
    if len(by_index) > MAX_FILTERS:
        raise invalid(f"at most {MAX_FILTERS} filters", base)
    if sorted(by_index) != list(range(len(by_index))):
        raise invalid("filter indexes must run 0, 1, 2, ...", base)
    return _made([by_index[index] for index in range(len(by_index))], base)


def parse_query_filters(pairs: Sequence[tuple[str, str]]) -> list[LogFilter]:
    """The filters of a query string (its ``(name, value)`` pairs, in order), in whichever encoding."""
    json_values = [value for name, value in pairs if name == "filters"]
    dotted = [(name, value) for name, value in pairs if name in _DOTTED]
    indexed = [(name, value) for name, value in pairs if name.startswith("filters[")]
    strays = [
        name
        for name, _ in pairs
        if name.startswith("filters") and name != "filters" and name not in _DOTTED and not _INDEXED.match(name)
    ]
    if strays:
        raise invalid(f"unknown filters parameter {strays[0][:80]!r}", ["query", "filters"])
    if sum(1 for group in (json_values, dotted, indexed) if group) > 1:
        raise invalid("filters are given in more than one encoding; use one", ["query", "filters"])
    if dotted:
        return _from_dotted(dotted)
    if indexed:
        return _from_indexed(indexed)
    items: list[Any] = []
    for raw in json_values:
        if not raw.strip():
            continue
        try:
            parsed = jsonbody.loads(raw)
        except ValueError:
            raise invalid("filters is not valid JSON (expected an array of {key, operator, value})",
                          ["query", "filters"]) from None
        items.extend(parsed if isinstance(parsed, list) else [parsed])
    return parse_filter_items(items)
