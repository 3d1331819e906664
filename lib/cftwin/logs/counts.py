"""The per-gateway row count (``log_counts``): kept exact by every write, with a version that every write changes.

``log_management`` is enforced from the count without a ``COUNT(*)``, a page of the logs API answers
``total_count`` without scanning the table, and costly query results are cached against the version.
"""

from __future__ import annotations

from typing import Any

from cftwin.db import Database

__all__ = ["add_count", "count_logs", "stored_and_version"]


def stored_and_version(db: Database, account_id: str, gateway_id: str) -> tuple[int, int]:
    """``(logs stored, version)`` of the gateway; ``(0, 0)`` before its first log."""
    row = db.query_one(
        "SELECT stored, version FROM log_counts WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id)
    )
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def add_count(db: Database, conn: Any, account_id: str, gateway_id: str, delta: int) -> None:
    """Within the writer's transaction ``conn``: ``delta`` more logs stored, and a new version."""
    conn.execute(
        "INSERT INTO log_counts (account_id, gateway_id, stored, version) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (account_id, gateway_id) DO UPDATE SET stored = stored + excluded.stored, "
        "version = excluded.version",
        (account_id, gateway_id, delta, db.next_version()),
    )


def count_logs(db: Database, account_id: str, gateway_id: str) -> int:
    """How many logs the gateway holds (from the maintained count, not a scan)."""
    return stored_and_version(db, account_id, gateway_id)[0]
