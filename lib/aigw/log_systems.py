"""Where an account's gateway logs are: Legacy Logs, or Logs powered by Workers Observability.

Cloudflare gives accounts created before 2026-09-24 *Legacy Logs* (``…/ai-gateway/gateways/{g}/logs``) and
accounts created since *Logs powered by Workers Observability* (cloudflare-docs
``ai-gateway/observability/logging/legacy-logs.mdx``). Nothing in the API names an account's system, so it is
read from the answers, never asked of the operator: the Legacy Logs API first; when it holds none of the logs
asked for, the Workers Observability query. Both come back as the same columns (``LogColumns``, the Legacy Logs
field names), so notebook 04's frame, criterion 5 and 05's snapshot do not care which system answered.

The gateway's fields inside a Workers Observability event are not published: this module reads them from
the event's ``source`` under their Legacy Logs names, with ``$metadata.id`` as the log id (docs/TWIN.md lists
this as an ASSUMPTION shared with the twin, which was written from the same reading of the docs, not from
this module).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from aigw.cloudflare import CloudflareClient, LogColumns, append_columns
from aigw.errors import NotFoundError, PermissionDeniedError

__all__ = ["LogSystem", "LogsRead", "fetch_gateway_logs", "matches_filters", "rows_from_events"]

LogSystem = Literal["legacy", "observability", "none"]

#: Workers Logs keeps at most 7 days (paid); a read without ``since`` looks that far back.
_LOOKBACK: Final = timedelta(days=7)
_PAGE: Final = 1000


@dataclass
class LogsRead:
    """The logs that matched, and which system answered (``none``: neither holds any)."""

    columns: LogColumns
    system: LogSystem
    note: str = ""

    @property
    def description(self) -> str:
        names = {"legacy": "Legacy Logs (the account was created before 2026-09-24)",
                 "observability": "Logs powered by Workers Observability (the account was created on or after "
                                  "2026-09-24)",
                 "none": "no logs found in either log system"}
        return names[self.system] + (f"; {self.note}" if self.note else "")


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _one_matches(row: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    key, operator, values = str(item["key"]), str(item["operator"]), list(item.get("value") or [])
    if key == "metadata.value":
        metadata = row.get("metadata")
        parsed = json.loads(metadata) if isinstance(metadata, str) and metadata else metadata or {}
        found: list[Any] = list(parsed.values()) if isinstance(parsed, Mapping) else []
    else:
        found = [row.get(key)]
    texts = [_value_text(v) for v in found if v is not None]
    wanted = [_value_text(v) for v in values]
    if operator == "eq":
        return any(t in wanted for t in texts)
    if operator == "neq":
        return not any(t in wanted for t in texts)
    if operator == "contains":
        return any(w in t for t in texts for w in wanted)
    numbers = [v for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and values and all(isinstance(v, int | float) for v in values):
        bound = float(values[0])
        return any(n > bound if operator == "gt" else n < bound for n in numbers)
    return any(t > wanted[0] if operator == "gt" else t < wanted[0] for t in texts) if wanted else False


def matches_filters(row: Mapping[str, Any], filters: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a log row passes every Legacy Logs ``filters`` item ``{key, operator, value: [...]}``."""
    return all(_one_matches(row, item) for item in filters)


def rows_from_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Workers Observability events as Legacy Logs rows (metadata as JSON text, as Legacy Logs returns it)."""
    rows: list[dict[str, Any]] = []
    for event in events:
        source = event.get("source")
        meta = event.get("$metadata") or {}
        if not isinstance(source, Mapping):
            continue
        row = {k: v for k, v in source.items() if k != "log_id"}
        row["id"] = source.get("log_id") or meta.get("id")
        metadata = source.get("metadata")
        row["metadata"] = json.dumps(metadata, separators=(",", ":")) if isinstance(metadata, Mapping) else metadata
        rows.append(row)
    return rows


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _observability(
    client: CloudflareClient,
    gateway_id: str,
    filters: Sequence[Mapping[str, Any]],
    since: datetime,
    until: datetime,
    max_logs: int | None,
    progress: Callable[[int, int | None], None] | None,
) -> LogColumns:
    columns = LogColumns()
    seen: set[str] = set()
    offset: str | None = None
    body: dict[str, Any] = {
        "queryId": f"aigw-logs-{gateway_id}", "view": "events", "limit": _PAGE,
        "timeframe": {"from": _ms(since), "to": _ms(until)},
        "parameters": {"filters": [{"key": "$metadata.service", "operation": "eq", "type": "string",
                                    "value": gateway_id}]},
    }
    while True:
        page = dict(body, offset=offset) if offset else body
        result = client.query_telemetry(page)
        found = (result.get("events") or {}).get("events") or []
        if not found:
            break
        columns.pages += 1
        rows = [r for r in rows_from_events(found) if matches_filters(r, filters)]
        if max_logs is not None:
            rows = rows[: max(0, max_logs - columns.rows)]
        append_columns(columns, rows, seen=seen)
        if progress is not None:
            progress(columns.rows, None)
        last = found[-1].get("$metadata", {}).get("id")
        if len(found) < _PAGE or not isinstance(last, str) or (max_logs is not None and columns.rows >= max_logs):
            break
        offset = last
    columns.total_count = columns.rows
    return columns


def fetch_gateway_logs(
    client: CloudflareClient,
    gateway_id: str,
    *,
    filters: Sequence[Mapping[str, Any]] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_logs: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    **legacy: Any,
) -> LogsRead:
    """The gateway's logs that match ``filters`` (Legacy Logs form) in ``[since, until]``, from whichever
    system holds them. ``legacy`` goes to the Legacy Logs read (``per_page``, ``concurrency``, ...)."""
    chosen = list(filters or [])
    columns = client.fetch_logs(gateway_id, filters=chosen, since=since, until=until, max_logs=max_logs,
                                progress=progress, **legacy)
    if columns.rows:
        return LogsRead(columns, "legacy")
    end = until or datetime.now(UTC) + timedelta(minutes=1)
    start = since or end - _LOOKBACK
    try:
        found = _observability(client, gateway_id, chosen, start, end, max_logs, progress)
    except PermissionDeniedError as exc:
        return LogsRead(columns, "none", "the Workers Observability query was refused "
                        f"({exc}): if the account was created on or after 2026-09-24, give CLOUDFLARE_API_TOKEN "
                        "Workers Observability Read")
    except NotFoundError:
        return LogsRead(columns, "none")
    if found.rows:
        return LogsRead(found, "observability")
    return LogsRead(columns, "none")
