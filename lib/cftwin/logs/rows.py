"""One gateway log as it is handed over (``LogRow``), the fields each read shows, and the stored record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from cftwin import jsonbody
from cftwin.logs.ids import format_timestamp, new_log_id, parse_timestamp

__all__ = [
    "BOOL_FIELDS",
    "COLUMNS",
    "DETAIL_FIELDS",
    "HEAD_LIMIT",
    "LIST_FIELDS",
    "ORDER_COLUMNS",
    "ROW_FIELDS",
    "LogRow",
    "created_at_of",
    "encode_metadata",
    "order_clause",
    "to_record",
]

#: What a log keeps of a payload in ``request_head`` / ``response_head``.
# ASSUMPTION: Cloudflare does not document the head's length; the twin keeps the first 4,096 characters.
HEAD_LIMIT: Final = 4096


@dataclass
class LogRow:
    """One gateway log, as the data plane (or the seeder) hands it over.

    ``id`` and ``created_at`` are made at insert time when left ``None``. ``metadata`` is the
    ``cf-aig-metadata`` object (a mapping, or its JSON text); it is stored and returned as JSON text.
    Heads and sizes default from the bodies.
    """

    provider: str
    model: str
    path: str
    duration: int = 0
    success: bool = True
    cached: bool = False
    status_code: int | None = 200
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = 0.0
    custom_cost: bool = False
    model_type: str | None = None
    metadata: Mapping[str, str | int | float | bool] | str | None = None
    event_id: str | None = None
    step: int | None = 0
    request_content_type: str | None = None
    response_content_type: str | None = None
    request_type: str | None = None
    request_body: str | bytes | None = None
    response_body: str | bytes | None = None
    request_head: str | None = None
    request_head_complete: bool | None = None
    request_size: int | None = None
    response_head: str | None = None
    response_head_complete: bool | None = None
    response_size: int | None = None
    feedback: float | None = None
    score: float | None = None
    user_agent: str | None = None
    authentication: bool | None = None
    wholesale: bool | None = None
    compatibility_mode: bool | None = None
    dlp_action: str | None = None
    id: str | None = None
    created_at: datetime | str | None = None


ROW_FIELDS: Final = tuple(f.name for f in fields(LogRow))
COLUMNS: Final = ("account_id", "gateway_id", *ROW_FIELDS)

#: The fields of a list item (as the SDK's ``LogListResponse``): no payloads.
# aigw.cloudflare keeps its own list of these: the twin and the runbook share no constant.
LIST_FIELDS: Final = (
    "id",
    "created_at",
    "provider",
    "model",
    "model_type",
    "path",
    "duration",
    "success",
    "cached",
    "status_code",
    "tokens_in",
    "tokens_out",
    "cost",
    "custom_cost",
    "metadata",
    "request_content_type",
    "response_content_type",
    "request_type",
    "step",
)
#: The fields of ``GET .../logs/{id}`` (``LogGetResponse``).
DETAIL_FIELDS: Final = (
    *LIST_FIELDS,
    "request_head",
    "request_head_complete",
    "request_size",
    "response_head",
    "response_head_complete",
    "response_size",
)
BOOL_FIELDS: Final = frozenset({"success", "cached", "custom_cost", "request_head_complete", "response_head_complete"})

#: ``order_by`` name -> column.
ORDER_COLUMNS: Final[Mapping[str, str]] = {
    "created_at": "created_at",
    "provider": "provider",
    "model": "model",
    "model_type": "model_type",
    "success": "success",
    "cached": "cached",
    "cost": "cost",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
    "duration": "duration",
    "feedback": "feedback",
}


def _decoded(body: str | bytes) -> tuple[str, int | None]:
    """The body as stored (text), and its size in UTF-8 bytes when known without encoding it again."""
    if isinstance(body, str):
        return body, None
    try:
        # Valid UTF-8 decodes and encodes back to the same bytes: their length is the size.
        return body.decode("utf-8"), len(body)
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace"), None


def encode_metadata(metadata: Mapping[str, Any] | str | None) -> str | None:
    if metadata is None:
        return None
    if isinstance(metadata, str):
        try:
            parsed = jsonbody.loads(metadata)
        except ValueError:
            raise ValueError("metadata must be a JSON object") from None
        metadata = parsed
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata must be a JSON object")
    return json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def created_at_of(row: LogRow) -> datetime:
    created = row.created_at
    if created is None:
        return datetime.now(UTC)
    if isinstance(created, str):
        return parse_timestamp(created)
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


_AT: Final = {name: i for i, name in enumerate(COLUMNS)}
#: Per payload: the positions of its body, head, head_complete and size in a record.
_PAYLOADS: Final = tuple(
    (_AT[f"{prefix}_body"], _AT[f"{prefix}_head"], _AT[f"{prefix}_head_complete"], _AT[f"{prefix}_size"])
    for prefix in ("request", "response")
)
_CREATED_AT: Final = _AT["created_at"]
_METADATA: Final = _AT["metadata"]


def to_record(account_id: str, gateway_id: str, row: LogRow) -> tuple[Any, ...]:
    created_dt = created_at_of(row)
    if row.id is None:
        # Written back, so that the caller knows the ids of the rows it handed over.
        row.id = new_log_id(created_dt)
    # By column position (one list, no dict per row): the data plane makes one of these per request.
    values: list[Any] = [account_id, gateway_id, *map(row.__dict__.__getitem__, ROW_FIELDS)]
    values[_CREATED_AT] = format_timestamp(created_dt)
    if values[_METADATA] is not None:
        values[_METADATA] = encode_metadata(values[_METADATA])
    for body_at, head, complete, size in _PAYLOADS:
        body = values[body_at]
        if body is None:
            continue
        text, length = _decoded(body)
        values[body_at] = text
        if values[head] is None:
            values[head] = text[:HEAD_LIMIT]
            if values[complete] is None:
                values[complete] = len(text) <= HEAD_LIMIT
        if values[size] is None:
            values[size] = len(text.encode("utf-8")) if length is None else length
    return tuple(values)


def order_clause(order_by: str, descending: bool) -> str:
    column = ORDER_COLUMNS.get(order_by)
    if column is None:
        raise ValueError(f"cannot order logs by {order_by!r}")
    direction = "DESC" if descending else "ASC"
    if column == "created_at":
        return f"created_at {direction}, id {direction}"
    return f"{column} {direction}, created_at {direction}, id {direction}"
