"""Group commit for gateway logs: the rows of requests that finish in the same event-loop turn are
written in one transaction, and each request waits until its row is committed.

So a log is visible through the logs API by the time its response is sent (nothing is lost or
late), while a burst of concurrent requests pays for one SQLite transaction per batch instead of one
per request.

With a delay (``TwinOptions.log_delay_s``) the row is queued that many seconds after the answer instead,
stamped with the request's time: on Cloudflare a log reaches the logs API seconds after the request
(cloudflare/ai#255). ASSUMPTION: the whole entry appears at once after the delay (Cloudflare may show a
partial entry first; the twin shows none until it is complete). A twin stopped within the delay loses
the rows still waiting, as an in-memory twin loses everything when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime

from cftwin.db import Database
from cftwin.logs.models import LogRow, insert_logs

__all__ = ["LogWriter"]

_Pending = tuple[Database, str, str, LogRow, "asyncio.Future[None] | None"]

logger = logging.getLogger("cftwin")


class LogWriter:
    """One per app (event loop); ``await write(...)`` returns once the row is stored."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._scheduled = False

    async def write(self, db: Database, account_id: str, gateway_id: str, row: LogRow, *,
                    delay_s: float = 0.0) -> None:
        """Store ``row``; with ``delay_s`` > 0 return at once and store it ``delay_s`` seconds from now."""
        loop = asyncio.get_running_loop()
        if delay_s > 0:
            if row.created_at is None:
                row.created_at = datetime.now(UTC)  # the request's time, not the time it shows up
            loop.call_later(delay_s, self._queue, loop, (db, account_id, gateway_id, row, None))
            return
        future: asyncio.Future[None] = loop.create_future()
        self._queue(loop, (db, account_id, gateway_id, row, future))
        await future

    def _queue(self, loop: asyncio.AbstractEventLoop, item: _Pending) -> None:
        self._pending.append(item)
        if not self._scheduled:
            self._scheduled = True
            # Runs on the loop's next turn, after every request that is ready now has queued its row.
            loop.call_soon(self._flush)

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
                waiting = [item[4] for item in items if item[4] is not None]
                if len(waiting) < len(items):  # a delayed row has nobody waiting to hear of it
                    logger.exception("twin: storing %d delayed log(s) failed", len(items) - len(waiting))
                for waiter in waiting:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for item in items:
                future = item[4]
                if future is not None and not future.done():
                    future.set_result(None)
