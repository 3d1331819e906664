"""Analysis over the Logpush export (issue 17 item 3, the library part): the gzipped NDJSON batches in the
bucket, parsed by DuckDB's built-in JSON reader (linked into the wheel: no extension downloads; objects are
fetched with boto3, never by DuckDB) into Arrow record batches, one object at a time per worker so memory stays
bounded however many objects there are, analysed by an embedded DuckDB, and 04's
totals and tables as **named SQL queries** over one relation, ``events``, so the same analysis runs on any
engine that reads the same files (see docs/PERFORMANCE.md's note on R2 SQL and Spark).

``events`` columns: ``ts`` (timestamp, UTC), ``gateway``, ``provider``, ``model``, ``endpoint``,
``status_code``, ``cached``, ``rate_limited``, ``cost``, ``duration_ms``. The encrypted fields are not
read: totals and tables need none of them (decrypt a record with ``aigw.logpush`` when you need one).

What the export does not hold, the API route does: tokens (``Metrics`` has cost and duration only) and a
log id. ``errors`` here are records with ``StatusCode >= 400``: ASSUMPTION that this is the API's
``success = false`` (the twin and Cloudflare's logs mark a non-2xx/3xx answer unsuccessful).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from aigw.errors import ConfigError
from aigw.logpush import BucketSettings, batch_keys

__all__ = ["EVENTS_SCHEMA", "NAMED_QUERIES", "ExportStore", "ExportTables", "analyse_export", "read_event_batches",
           "write_parquet_by_day"]

EVENTS_SCHEMA: Final = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")),
    ("gateway", pa.string()),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("endpoint", pa.string()),
    ("status_code", pa.int32()),
    ("cached", pa.bool_()),
    ("rate_limited", pa.bool_()),
    ("cost", pa.float64()),
    ("duration_ms", pa.int64()),
])
#: The record fields read (the encrypted ones are skipped), and the columns they become.
_PLAIN: Final = {"Gateway": "gateway", "Provider": "provider", "Model": "model", "Endpoint": "endpoint",
                 "StatusCode": "status_code", "Cached": "cached", "RateLimited": "rate_limited"}

#: 04's totals and tables, in SQL any engine that reads the Parquet export runs (DuckDB, R2 SQL, Spark SQL).
NAMED_QUERIES: Final[Mapping[str, str]] = {
    "totals": """
        SELECT count(*) AS requests, coalesce(sum(cost), 0) AS cost,
               count(*) FILTER (WHERE status_code >= 400) AS errors,
               count(*) FILTER (WHERE cached) AS cached,
               min(ts) AS first, max(ts) AS last
        FROM events""",
    "usage_by_model": """
        SELECT provider, model, count(*) AS requests, sum(cost) AS cost,
               count(*) FILTER (WHERE status_code >= 400) AS errors
        FROM events GROUP BY provider, model ORDER BY requests DESC, provider, model""",
    "latency_percentiles": """
        SELECT provider, model, count(*) AS requests,
               quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.95) AS p95,
               quantile_cont(duration_ms, 0.99) AS p99
        FROM events GROUP BY provider, model ORDER BY provider, model""",
    "status_codes": """
        SELECT provider, status_code, count(*) AS requests
        FROM events GROUP BY provider, status_code ORDER BY provider, status_code""",
    "cache_hit_rate": """
        SELECT provider, model, count(*) AS requests, count(*) FILTER (WHERE cached) AS hits,
               count(*) FILTER (WHERE cached) / count(*) AS hit_rate
        FROM events GROUP BY provider, model ORDER BY provider, model""",
    "providers_models": """
        SELECT provider, model, min(ts) AS first
        FROM events GROUP BY provider, model ORDER BY first, provider, model""",
    "requests_over_time": """
        SELECT to_timestamp(floor(epoch(ts) / $bin_s) * $bin_s) AS bin, provider, count(*) AS requests
        FROM events GROUP BY bin, provider ORDER BY bin, provider""",
    "requests_per_day": """
        SELECT date_trunc('day', ts) AS day, provider, count(*) AS requests
        FROM events GROUP BY day, provider ORDER BY day, provider""",
}


#: The record fields read, as DuckDB's ``read_json`` types them (a field a record lacks is NULL); the encrypted
#: ones are not listed, so they are skipped, never turned into values.
_JSON_COLUMNS: Final = ("{'Cached': 'BOOLEAN', 'Endpoint': 'VARCHAR', 'Gateway': 'VARCHAR', 'Model': 'VARCHAR', "
                        "'Provider': 'VARCHAR', 'RateLimited': 'BOOLEAN', 'StatusCode': 'BIGINT', "
                        "'Timestamp': 'VARCHAR', 'Metrics': 'STRUCT(cost DOUBLE, durationMs BIGINT)'}")


def _to_batch(table: pa.Table) -> pa.RecordBatch:
    """DuckDB's answer (the record's field names; ``cost`` and ``durationMs`` out of ``Metrics``) as
    ``EVENTS_SCHEMA``."""
    columns: dict[str, pa.Array] = {}
    for field_name, column in _PLAIN.items():
        columns[column] = table.column(field_name).combine_chunks().cast(EVENTS_SCHEMA.field(column).type)
    columns["cost"] = table.column("cost").combine_chunks().cast(pa.float64())
    columns["duration_ms"] = table.column("durationMs").combine_chunks().cast(pa.int64())
    columns["ts"] = _timestamps(table.column("Timestamp").combine_chunks())
    return pa.RecordBatch.from_pydict({name: columns[name] for name in EVENTS_SCHEMA.names}, schema=EVENTS_SCHEMA)


def _timestamps(values: pa.Array) -> pa.Array:
    """``Timestamp`` as the job wrote it: RFC 3339 text, or an integer in unix seconds or nanoseconds (which
    DuckDB hands over as its digits, so no record has to be parsed first to learn the job's format)."""
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    text = values.cast(pa.string())
    digits = pc.fill_null(pc.match_substring_regex(text, r"^\d+$"), False)
    numbers = pc.if_else(digits, text, pa.scalar(None, pa.string())).cast(pa.int64())
    # Nanoseconds since 1970 are above 1e17 for any date after 1973; seconds are below 1e11.
    nanos = pc.if_else(pc.greater(numbers, 10**11), numbers, pc.multiply(numbers, 10**9))
    from_numbers = pc.divide(nanos, 1000).cast(pa.int64()).cast(target)
    from_text = pc.strptime(pc.if_else(digits, pa.scalar(None, pa.string()), text),
                            format="%Y-%m-%dT%H:%M:%S%z", unit="us").cast(target)
    return pc.coalesce(from_numbers, from_text)


def _object_batches(client: Any, bucket: str, key: str, cursor: Any, scratch: Path) -> list[pa.RecordBatch]:
    # The compressed object (about 12 MB per 100,000 events) goes to a scratch file that DuckDB's built-in JSON
    # reader inflates and parses, a buffer at a time: it skips the encrypted fields (most of each line) without
    # building them, at about half the CPU of pyarrow's JSON reader with an explicit schema, which still
    # tokenises them. No extension is loaded or downloaded: ``json`` is linked into the duckdb wheel.
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if not body:
        cursor.close()
        return []
    path = scratch / f"{threading.get_ident()}.json.gz"
    path.write_bytes(body)
    del body
    try:
        table = cursor.sql(
            "SELECT Cached, Endpoint, Gateway, Model, Provider, RateLimited, StatusCode, Timestamp, "
            "Metrics.cost AS cost, Metrics.durationMs AS durationMs "
            f"FROM read_json('{_sql_text(path)}', format = 'newline_delimited', compression = 'gzip', "
            f"columns = {_JSON_COLUMNS})").to_arrow_table()
    finally:
        cursor.close()
        path.unlink(missing_ok=True)
    return [_to_batch(table)] if table.num_rows else []


def read_event_batches(bucket: BucketSettings, days: Iterable[datetime] | None = None, *,
                       workers: int = 2) -> Iterator[pa.RecordBatch]:
    """Every ``*.log.gz`` batch under the export's folder (``days``' folders only, when given), as
    ``EVENTS_SCHEMA`` record batches, in key order. ``workers`` objects are read at once (download, gunzip
    and parse release the GIL), and no more are held than that: memory stays bounded however many there are."""
    import tempfile
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    import duckdb

    client = bucket.client()
    prefixes = bucket.prefixes(days) if days is not None else [bucket.path.strip("/").split("{DATE}")[0]]
    keys = (key for prefix in prefixes for key in batch_keys(client, bucket.bucket, prefix))
    workers = max(1, workers)
    # Each query runs in its worker's thread alone (a gzip stream does not split), so the objects in flight use
    # the cores; DuckDB's own threads on top of them made it slower, not faster (they contend for the same cores).
    con = duckdb.connect(config={"threads": 1, "memory_limit": "256MB"})
    with (tempfile.TemporaryDirectory(prefix="aigw-logpush-") as scratch,
          ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aigw-logpush-read") as pool):
        pending: deque[Future[list[pa.RecordBatch]]] = deque()
        try:
            for key in keys:
                # A cursor per object, made here: a DuckDB connection is not to be shared across threads.
                pending.append(pool.submit(_object_batches, client, bucket.bucket, key, con.cursor(), Path(scratch)))
                if len(pending) > workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            con.close()


class ExportTables(dict[str, Any]):
    """Named query -> pandas DataFrame."""


_SIZE: Final = re.compile(r"\d+(\.\d+)?\s*[KMGT]i?B")


def _close(con: Any, scratch: Any) -> None:
    con.close()
    if scratch is not None:
        scratch.cleanup()


class ExportStore:
    """The export's events as DuckDB's relation ``events``: a view over Parquet files (one per ~100,000 events)
    in a folder under ``spill_to`` (else a temporary one, removed on ``close`` or when the store is collected).

    Why Parquet files and not a DuckDB table: inserting 10M rows into a DuckDB table (compressing them) took
    longer than reading them from the bucket, while Arrow writes a file per object in a few tens of ms without
    holding the GIL, and DuckDB scans Parquet in parallel; memory holds one object's rows, however many there
    are. Queries stay under ``memory_limit`` by spilling to the folder."""

    def __init__(self, *, spill_to: Path | None = None, memory_limit: str = "512MB") -> None:
        import tempfile
        import weakref

        import duckdb

        if not _SIZE.fullmatch(memory_limit):
            raise ConfigError(f"memory_limit {memory_limit!r} is not a size", hint="Write it like 512MB or 2GiB")
        scratch: tempfile.TemporaryDirectory[str] | None = None
        if spill_to is None:
            scratch = tempfile.TemporaryDirectory(prefix="aigw-duckdb-")
            where = Path(scratch.name)
        else:
            where = spill_to
        self.folder = where / "events"
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute("SET temp_directory = ?", [str(where / "spill")])
        # Days, hours and the answers' times are UTC whatever the machine's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        self.rows = 0
        self._finalizer = weakref.finalize(self, _close, self.con, scratch)

    def load(self, batches: Iterable[pa.RecordBatch], where: str = "", params: Mapping[str, Any] | None = None,
             *, rows_per_file: int = 100_000) -> int:
        """Write ``batches`` as Parquet files and make ``events`` the rows ``where`` keeps (an SQL condition with
        ``$name`` parameters from ``params``: strings, times, numbers or lists of strings); the number kept."""
        import pyarrow.parquet as pq

        self.folder.mkdir(parents=True, exist_ok=True)
        pending: list[pa.RecordBatch] = []
        held = files = 0

        def flush() -> None:
            nonlocal held, files
            # Dictionary encoding alone makes the files as small as snappy did (a few repeated names and
            # codes); statistics on ``ts`` only, which the window's filter prunes on. A third less CPU.
            pq.write_table(pa.Table.from_batches(pending, EVENTS_SCHEMA), self.folder / f"part-{files:06d}.parquet",
                           compression="none", write_statistics=["ts"])
            pending.clear()
            held, files = 0, files + 1

        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            if held >= rows_per_file:
                flush()
        if pending or not files:
            flush()  # an empty window still gets a file, so ``events`` has its columns
        condition = f" WHERE {_bind(where, params or {})}" if where else ""
        self.con.execute(f"CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet('{_sql_text(self.folder)}"
                         f"/*.parquet'){condition}")
        counted = self.con.execute("SELECT count(*) FROM events").fetchone()
        self.rows = int(counted[0]) if counted else 0
        return self.rows

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """One query's answer as a pandas DataFrame (``sql`` may be a name of ``NAMED_QUERIES``)."""
        return self.con.execute(NAMED_QUERIES.get(sql, sql), dict(params or {})).df()

    def tables(self, queries: Mapping[str, str] = NAMED_QUERIES) -> ExportTables:
        parameterless = {name: sql for name, sql in queries.items() if "$" not in sql}
        return ExportTables({name: self.query(sql) for name, sql in parameterless.items()})

    def write_parquet_by_day(self, folder: Path) -> Path:
        """``events`` as Parquet partitioned by day (``day=YYYY-MM-DD/``), as ``write_parquet_by_day`` writes it,
        from the store (the bucket is not read again)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.con.execute(f"COPY (SELECT *, strftime(ts, '%Y-%m-%d') AS day FROM events) TO '{_sql_text(folder)}' "
                         "(FORMAT PARQUET, PARTITION_BY (day), OVERWRITE_OR_IGNORE)")
        return folder

    def close(self) -> None:
        self._finalizer()


def _sql_text(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _literal(value: Any) -> str:
    """``value`` as an SQL literal: a view cannot take prepared parameters."""
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return f"'{_sql_text(value)}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]::VARCHAR[]" if value else "[]::VARCHAR[]"
    raise ConfigError(f"cannot filter on a {type(value).__name__}", hint="Use strings, times or numbers")


def _bind(where: str, params: Mapping[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise ConfigError(f"no value for ${name} in the events filter", hint="Pass it in params")
        return _literal(params[name])

    return re.sub(r"\$([A-Za-z_]\w*)", value, where)


def analyse_export(batches: Iterable[pa.RecordBatch], *, spill_to: Path | None = None,
                   memory_limit: str = "512MB", queries: Mapping[str, str] = NAMED_QUERIES) -> ExportTables:
    """Run ``queries`` (those without parameters) over ``batches`` in DuckDB (an ``ExportStore``); the
    answers are small tables."""
    store = ExportStore(spill_to=spill_to, memory_limit=memory_limit)
    try:
        store.load(batches)
        return store.tables(queries)
    finally:
        store.close()


def write_parquet_by_day(batches: Iterable[pa.RecordBatch], folder: Path) -> Path:
    """The events as Parquet, partitioned by day (``day=YYYY-MM-DD/``): what R2 SQL or Spark reads later."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    def with_day(batch: pa.RecordBatch) -> pa.RecordBatch:
        day = pc.strftime(batch.column("ts"), format="%Y-%m-%d")
        return pa.RecordBatch.from_arrays([*batch.columns, day], names=[*batch.schema.names, "day"])

    schema = EVENTS_SCHEMA.append(pa.field("day", pa.string()))
    reader = pa.RecordBatchReader.from_batches(schema, (with_day(b) for b in batches))
    ds.write_dataset(reader, folder, format="parquet", partitioning=["day"], partitioning_flavor="hive",
                     existing_data_behavior="overwrite_or_ignore")
    return folder
