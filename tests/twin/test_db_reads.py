"""cftwin.db keeps the rows it read until the next write: a read never shows a state older than the last write."""

from __future__ import annotations

from pathlib import Path

import pytest
from cftwin.db import Database

SCHEMA = [("t", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)")]


def _value(db: Database) -> int | None:
    row = db.query_one("SELECT v FROM t WHERE k = ?", ("a",))
    return None if row is None else int(row["v"])


@pytest.mark.parametrize("path", [":memory:", "file"])
def test_every_kind_of_write_is_seen_by_the_next_read(path: str, tmp_path: Path) -> None:
    db = Database(str(tmp_path / "state.sqlite3") if path == "file" else path, SCHEMA)
    try:
        assert _value(db) is None  # a missing row is kept too, and must not outlive the insert
        db.execute("INSERT INTO t VALUES ('a', 1)")
        assert _value(db) == 1
        db.executemany("UPDATE t SET v = ? WHERE k = 'a'", [(2,)])
        assert _value(db) == 2
        with db.transaction() as conn:
            conn.execute("UPDATE t SET v = 3 WHERE k = 'a'")
            assert _value(db) == 3  # inside the unit, its own write
        assert _value(db) == 3
        with pytest.raises(RuntimeError), db.transaction() as conn:
            conn.execute("UPDATE t SET v = 4 WHERE k = 'a'")
            assert _value(db) == 4
            raise RuntimeError("rolled back")
        assert _value(db) == 3  # the rolled-back write is not remembered either
        db.reset()
        assert _value(db) is None
    finally:
        db.close()


def test_a_file_state_is_read_afresh_each_time(tmp_path: Path) -> None:
    # Another connection (another process) may write a file: nothing read from one is kept.
    path = str(tmp_path / "state.sqlite3")
    db, other = Database(path, SCHEMA), Database(path, SCHEMA)
    try:
        db.execute("INSERT INTO t VALUES ('a', 1)")
        assert _value(db) == 1
        other.execute("UPDATE t SET v = 5 WHERE k = 'a'")
        assert _value(db) == 5
    finally:
        db.close()
        other.close()


def test_a_unit_that_names_its_tables_forgets_only_their_reads() -> None:
    db = Database(":memory:", [*SCHEMA, ("u", "CREATE TABLE IF NOT EXISTS u (k TEXT PRIMARY KEY, v INTEGER)")])
    try:
        db.execute("INSERT INTO t VALUES ('a', 1)")
        db.execute("INSERT INTO u VALUES ('a', 10)")
        made: list[int] = []

        def u_value() -> int | None:
            return db.query_one_as("SELECT v FROM u WHERE k = ?", ("a",), lambda row: made.append(1) or int(row["v"]))

        assert _value(db) == 1 and u_value() == 10
        with db.transaction(touches=("u",)) as conn:
            conn.execute("UPDATE u SET v = 11 WHERE k = 'a'")
        assert u_value() == 11  # the touched table's read is forgotten: the write is seen
        assert u_value() == 11 and len(made) == 2  # and what was made of the new row is kept
        db.execute("UPDATE t SET v = 2 WHERE k = 'a'")  # a write that names no table forgets every read
        assert _value(db) == 2 and u_value() == 11 and len(made) == 3
        with db.transaction(touches=("u",)) as conn:
            conn.execute("UPDATE u SET v = 12 WHERE k = 'a'")
        assert _value(db) == 2 and u_value() == 12
    finally:
        db.close()
