"""Group commit for gateway logs: the rows of requests that finish in the same event-loop turn are
written in one transaction, and each request waits until its row is committed.

So a log is visible through the logs API by the time its response is sent (nothing is lost or
late), while a burst of concurrent requests pays for one SQLite transaction per batch instead of one
per request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from cftwin.db import Database
from cftwin.logs.models import LogRow, insert_logs

__all__ = ["LogWriter"]

_Pending = tuple[Database, str, str, LogRow, "asyncio.Future[None]"]


class LogWriter:
    """One per app (event loop); ``await write(...)`` returns once the row is stored."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._scheduled = False

    async def write(self, db: Database, account_id: str, gateway_id: str, row: LogRow) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((db, account_id, gateway_id, row, future))
        if not self._scheduled:
            self._scheduled = True
            # Runs on the loop's next turn, after every request that is ready now has queued its row.
            loop.call_soon(self._flush)
        await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        groups: dict[tuple[int, str, str], list[_Pending]] = defaultdict(list)
        for item in batch:
            groups[(id(item[0]), item[1], item[2])].append(item)
        for items in groups.values():
            db, account_id, gateway_id = items[0][0], items[0][1], items[0][2]
            try:
                insert_logs(db, account_id, gateway_id, [item[3] for item in items])
            except Exception as exc:  # the requests of this batch fail; other batches are unaffected
                for item in items:
                    if not item[4].done():
                        item[4].set_exception(exc)
                continue
            for item in items:
                if not item[4].done():
                    item[4].set_result(None)
