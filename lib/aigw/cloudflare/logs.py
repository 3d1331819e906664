"""AI Gateway log operations: a page of logs, every log as columns, one log and its bodies, deletion;
and Workers Observability queries, where newer accounts keep their gateway logs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from aigw.cloudflare.base import ClientBase
from aigw.cloudflare.envelope import Json
from aigw.cloudflare.filters import encode_filters, filter_value, iso
from aigw.cloudflare.pages import page_rows, read_page
from aigw.cloudflare.results import Log, LogColumns, LogPage, append_columns, as_items, as_object, opt_int
from aigw.errors import ValidationError

__all__ = ["LOGS_PER_PAGE_MAX", "LogOperations"]

#: Cloudflare's page-size ceiling for logs (2024 schema; the twin enforces the same).
LOGS_PER_PAGE_MAX: Final = 50

Progress = Callable[[int, int | None], None]


def _time_filters(
    filters: Sequence[Mapping[str, Any]] | None, since: datetime | str | None, until: datetime | str | None
) -> list[Mapping[str, Any]]:
    every = list(filters or [])
    if since is not None:
        every.append({"key": "created_at", "operator": "gt", "value": [iso(since)]})
    if until is not None:
        every.append({"key": "created_at", "operator": "lt", "value": [iso(until)]})
    return every


class _LogsRead:
    """One ``fetch_logs``: the columns so far, the ids seen, and when to stop."""

    def __init__(self, read: Callable[[int], list[Any]], per_page: int, max_logs: int | None,
                 progress: Progress | None) -> None:
        self.columns = LogColumns()
        self._seen: set[str] = set()
        self._read_rows = read
        self._per_page = per_page
        self._max_logs = max_logs
        self._progress = progress

    def take(self, rows: list[Any]) -> bool:
        """Add a page; False when the reading should stop (empty page or ``max_logs`` reached)."""
        if not rows:
            return False
        columns = self.columns
        columns.pages += 1
        if self._max_logs is not None:
            rows = rows[: max(0, self._max_logs - columns.rows)]
        append_columns(columns, rows, seen=self._seen)
        if self._progress is not None:
            self._progress(columns.rows, columns.total_count)
        return self._max_logs is None or columns.rows < self._max_logs

    def run(self, first: list[Any], total: int | None, concurrency: int) -> LogColumns:
        self.columns.total_count = total
        if not self.take(first):
            return self.columns
        workers = max(1, concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aigw-logs") as pool:
            next_page = self._read_announced(pool, total)
            # Past the pages page 1 announced (or with no total at all): until an empty page.
            step = 1 if total is not None else workers
            while next_page is not None and self._read(pool, range(next_page, next_page + step)):
                next_page += step
        return self.columns

    def _read_announced(self, pool: Executor, total: int | None) -> int | None:
        """Read the pages after page 1 that ``total`` implies; the next page to read, None when done."""
        if total is None:
            return 2
        last = math.ceil(total / self._per_page)
        if self._max_logs is not None:
            last = min(last, math.ceil(self._max_logs / self._per_page))
        if last < 2:
            return 2
        return last + 1 if self._read(pool, range(2, last + 1)) else None

    def _read(self, pool: Executor, pages: Iterable[int]) -> bool:
        """Read ``pages`` (in parallel), add them in order; False once an empty page is met."""
        going = True
        for rows in pool.map(self._read_rows, pages):  # every result is consumed, so a failed page always raises
            going = going and self.take(rows)
        return going


class LogOperations(ClientBase):
    def _log_params(
        self,
        filters: Sequence[Mapping[str, Any]] | None,
        order_by: str | None,
        order_by_direction: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, str]]:
        params = encode_filters(filters, self.filter_encoding)
        if order_by:
            params.append(("order_by", order_by))
        if order_by_direction:
            params.append(("order_by_direction", order_by_direction))
        params.extend((key, filter_value(value)) for key, value in (extra or {}).items() if value is not None)
        return params

    def list_logs(
        self,
        gateway_id: str,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        page: int = 1,
        per_page: int = LOGS_PER_PAGE_MAX,
        meta_info: bool = False,
        search: str | None = None,
    ) -> LogPage:
        """One page of the gateway's logs."""
        params = self._log_params(filters, order_by, order_by_direction, {"search": search})
        params += [("page", str(page)), ("per_page", str(per_page))]
        if meta_info:
            params.append(("meta_info", "true"))
        path = self._gateway_path(gateway_id, "logs")
        env = self._send("GET", path, params=params)
        rows = as_items(env, "GET", "/" + path)
        info = dict(env.result_info or {})
        return LogPage(
            logs=tuple(Log.from_api(row) for row in rows),
            page=opt_int(info.get("page")) or page,
            per_page=opt_int(info.get("per_page")) or per_page,
            count=opt_int(info.get("count")) or len(rows),
            total_count=opt_int(info.get("total_count")),
            result_info=info,
        )

    def fetch_logs(
        self,
        gateway_id: str,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        per_page: int = LOGS_PER_PAGE_MAX,
        concurrency: int = 4,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        max_logs: int | None = None,
        progress: Progress | None = None,
    ) -> LogColumns:
        """Every log that matches, parsed straight into columns (``pd.DataFrame(result)``).

        Page 1 tells ``total_count``; the pages it implies are read ``concurrency`` at a time (inside the
        budget), then pages after them until an empty one, as the SDKs do (logs may arrive meanwhile).
        Oldest first by default, so logs written during the read land on later pages; a log seen twice
        (a shifted page) is kept once. ``progress(rows_so_far, total_count)`` is called after each page.
        """
        params = self._log_params(_time_filters(filters, since, until), order_by, order_by_direction)
        path = self._gateway_path(gateway_id, "logs")
        get = self._get(path)

        def rows_of(page: int) -> tuple[list[Any], int | None]:
            env = read_page(get, params, page, per_page)
            total = None if env.result is None else opt_int((env.result_info or {}).get("total_count"))
            return page_rows(env, path), total

        first, total = rows_of(1)
        return _LogsRead(lambda page: rows_of(page)[0], per_page, max_logs, progress).run(first, total, concurrency)

    def query_telemetry(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """One Workers Observability query (``POST /accounts/{a}/workers/observability/telemetry/query``):
        where an account created since 2026-09-24 keeps its gateway logs. Read-only, so retried like a GET."""
        path = self._account("workers/observability/telemetry/query")
        env = self._send("POST", path, body=dict(body), idempotent=True)
        return as_object(env, "a query result", "POST", "/" + path)

    def get_log(self, gateway_id: str, log_id: str) -> Log:
        path = self._gateway_path(gateway_id, f"logs/{quote(log_id, safe='')}")
        env = self._send("GET", path)
        return Log.from_api(as_object(env, "a log", "GET", "/" + path))

    def _log_body(self, gateway_id: str, log_id: str, which: str) -> Json:
        # ASSUMPTION: the stored body may come wrapped in the envelope or bare (the schema declares only
        # "object"); both are accepted and the body itself is returned.
        path = self._gateway_path(gateway_id, f"logs/{quote(log_id, safe='')}/{which}")
        return self._send("GET", path, bare_ok=True).result

    def get_log_request(self, gateway_id: str, log_id: str) -> Json:
        """The request body the gateway stored for the log (JSON, or text)."""
        return self._log_body(gateway_id, log_id, "request")

    def get_log_response(self, gateway_id: str, log_id: str) -> Json:
        """The response body the gateway stored for the log (JSON, or text)."""
        return self._log_body(gateway_id, log_id, "response")

    def delete_logs(
        self,
        gateway_id: str,
        filters: Sequence[Mapping[str, Any]] | None = None,
        limit: int | None = None,
        *,
        order_by: str | None = None,
        order_by_direction: str | None = None,
    ) -> None:
        """Delete the logs that match ``filters`` (at most ``limit``, 1..10,000). Cloudflare deletes asynchronously."""
        if limit is not None and not 1 <= limit <= 10_000:
            raise ValidationError(
                f"delete_logs limit {limit} is out of range",
                status=0,
                hint="Use a limit between 1 and 10000 (Cloudflare's bound)",
            )
        params = self._log_params(filters, order_by, order_by_direction, {"limit": limit})
        self._send("DELETE", self._gateway_path(gateway_id, "logs"), params=params)
