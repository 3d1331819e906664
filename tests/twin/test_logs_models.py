"""``cftwin.logs.models`` on a real SQLite database: ids, timestamps, inserts, the log cap."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cftwin.db import Database
from cftwin.gateways.models import create_gateway
from cftwin.logs.models import (
    LogRow,
    count_logs,
    delete_gateway_logs,
    format_timestamp,
    get_log,
    insert_log,
    insert_logs,
    list_logs,
    new_log_id,
    parse_timestamp,
    ulid_at,
    update_log,
)

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _gateway(db: Database, gateway_id: str, cap: int | None = None, strategy: str | None = None) -> None:
    create_gateway(db, "acct", {"id": gateway_id, "log_management": cap, "log_management_strategy": strategy})


def _rows(n: int, start_minute: int = 0) -> list[LogRow]:
    return [
        LogRow("openai", "gpt-4o-mini", "chat/completions", created_at=T0 + timedelta(minutes=start_minute + i))
        for i in range(n)
    ]


def test_ulids_are_crockford_time_ordered_and_monotonic() -> None:
    assert ulid_at(0, 0) == "0" * 26
    assert ulid_at(2**48 - 1, 2**80 - 1) == "7" + "Z" * 25
    assert ulid_at(1_469_918_176_385, 0)[:10] == "01ARYZ6S41"  # the ULID spec's example timestamp
    ids = [new_log_id() for _ in range(5_000)]
    assert all(ULID.match(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    earlier = new_log_id(T0)
    assert earlier < ids[0] and earlier[:10] == ulid_at(int(T0.timestamp() * 1000), 0)[:10]


def test_timestamps_are_fixed_width_utc() -> None:
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 1, 2, 3, 0, tzinfo=plus_two)) == "2026-01-02T01:00:00.000000Z"
    assert format_timestamp(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"
    assert parse_timestamp("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2026-01-02") == datetime(2026, 1, 2, tzinfo=UTC)
    for bad in ("", "yesterday", "2026-13-01", "x" * 100):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_insert_log_returns_its_id_and_keeps_heads_and_sizes() -> None:
    db = Database()
    _gateway(db, "gw")
    body = "é" * 5000
    row = LogRow("anthropic", "claude-3-5-haiku", "v1/messages", request_body=body, metadata='{"a": 1}')
    log_id = insert_log(db, "acct", "gw", row)
    assert row.id == log_id and ULID.match(log_id)
    detail = get_log(db, "acct", "gw", log_id)
    assert detail is not None
    assert detail["request_head"] == "é" * 4096 and detail["request_head_complete"] is False
    assert detail["request_size"] == 10_000 and detail["metadata"] == '{"a":1}'
    assert "response_head" not in detail and "response_size" not in detail  # no value: left out (schema)
    with pytest.raises(ValueError):
        insert_log(db, "acct", "gw", LogRow("openai", "m", "p", metadata="[1, 2]"))
    assert count_logs(db, "acct", "gw") == 1


def test_stop_inserting_keeps_the_first_rows_up_to_the_cap() -> None:
    db = Database()
    _gateway(db, "gw", cap=5, strategy="STOP_INSERTING")
    assert insert_logs(db, "acct", "gw", _rows(3)) == 3
    assert insert_logs(db, "acct", "gw", _rows(4, start_minute=10)) == 2
    assert insert_log(db, "acct", "gw", LogRow("openai", "m", "p"))  # an id, though the row is dropped
    items, info = list_logs(db, "acct", "gw", per_page=50)
    assert info["total_count"] == count_logs(db, "acct", "gw") == 5
    assert [i["created_at"][11:16] for i in items] == ["00:00", "00:01", "00:02", "00:10", "00:11"]


def test_delete_oldest_makes_room_and_keeps_the_newest_of_a_large_batch() -> None:
    db = Database()
    _gateway(db, "gw", cap=4, strategy="DELETE_OLDEST")
    insert_logs(db, "acct", "gw", _rows(4))
    assert insert_logs(db, "acct", "gw", _rows(2, start_minute=10)) == 2
    items, _ = list_logs(db, "acct", "gw", per_page=50)
    assert [i["created_at"][11:16] for i in items] == ["00:02", "00:03", "00:10", "00:11"]
    assert insert_logs(db, "acct", "gw", _rows(6, start_minute=20)) == 4
    items, info = list_logs(db, "acct", "gw", per_page=50)
    assert [i["created_at"][11:16] for i in items] == ["00:22", "00:23", "00:24", "00:25"]
    assert info["total_count"] == 4


def test_a_gateway_without_a_cap_and_the_counts_of_others() -> None:
    db = Database()
    _gateway(db, "gw")
    _gateway(db, "other", cap=10_000, strategy="DELETE_OLDEST")
    insert_logs(db, "acct", "gw", _rows(30))
    insert_logs(db, "acct", "other", _rows(2))
    assert (count_logs(db, "acct", "gw"), count_logs(db, "acct", "other")) == (30, 2)
    assert delete_gateway_logs(db, "acct", "gw") == 30
    assert count_logs(db, "acct", "gw") == 0 and list_logs(db, "acct", "gw")[0] == []
    assert count_logs(db, "acct", "other") == 2
    db.reset()
    assert count_logs(db, "acct", "other") == 0


def test_update_log() -> None:
    db = Database()
    _gateway(db, "gw")
    log_id = insert_log(db, "acct", "gw", LogRow("openai", "m", "p"))
    assert update_log(db, "acct", "gw", log_id, {"feedback": 1, "metadata": {"k": "v"}})
    assert update_log(db, "acct", "other", log_id, {"feedback": 1}) is False
    with pytest.raises(ValueError):
        update_log(db, "acct", "gw", log_id, {"cost": 0})
    items, _ = list_logs(db, "acct", "gw", "feedback = ?", (1,))
    assert [i["metadata"] for i in items] == ['{"k":"v"}']
