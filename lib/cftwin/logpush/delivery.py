"""Delivery: every ``TwinOptions.logpush_interval_s`` seconds, each enabled job's new gateway logs go to its
bucket as one gzipped NDJSON object of ``ai_gateway_events`` records.

* A record is exported when its gateway has ``logpush`` on and a ``logpush_public_key`` (ai-gateway
  ``logpush.mdx``: "Uploading your public key enables Workers Logpush for the gateway, but logs will not be
  exported until you also create and enable a Logpush job"), and only logs that were stored (logs on, and
  under the gateway's log limit: "If saving stops at this limit, logs are not saved or exported").
  ASSUMPTION: the gateway's settings are read when the batch is made, not when the request was served.
* ``Metadata``, ``RequestBody`` and ``ResponseBody`` are encrypted per record (``crypto.py``); the other
  fields are plain. A record larger than 1 MB is not exported (ASSUMPTION: dropped, as the limit says
  "each exported log can be up to 1 MB"; the job is not failed for it).
* Object key: ``<path with {DATE}>/<first>_<last>_<8 hex>.log.gz``, times ``YYYYMMDDTHHMMSSZ`` (the name
  Logpush gives its files). ASSUMPTION: ``{DATE}`` is the day of the batch's first record.
* A failed upload leaves the job's cursor where it was (the batch is retried next time) and sets
  ``last_error`` / ``error_message``; a success sets ``last_complete`` and clears them.
* ASSUMPTION: Cloudflare batches for up to ``max_upload_interval_seconds`` (default 30 s) and says files "may
  be sent in shorter intervals than this"; the twin sends every ``logpush_interval_s`` (default 1 s), so a
  rehearsal does not wait half a minute for what Cloudflare may deliver at any time within it.

One daemon thread per twin (``ensure_worker``), started by the first Logpush API call; it stops when the
twin's database is closed.
"""

from __future__ import annotations

import gzip
import json
import logging
import secrets
import sqlite3
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from cftwin.gateways.models import get_gateway
from cftwin.logpush.crypto import EncryptionKeyError, encrypt_field, load_public_key
from cftwin.logpush.destinations import DestinationError, parse_destination, s3_client
from cftwin.logpush.models import LOG_SIZE_LIMIT, enabled_jobs, mark_delivered, mark_failed
from cftwin.logs.models import logs_after, parse_timestamp

if TYPE_CHECKING:
    from cftwin.context import TwinContext

__all__ = ["deliver_once", "ensure_worker", "event_record"]

logger = logging.getLogger("cftwin.logpush")

#: Records per object when the job sets no max_upload_records: Logpush's internal default (100k).
_DEFAULT_RECORDS: Final = 100_000
_DEFAULT_BYTES: Final = 1_000_000_000
_FILE_TIME: Final = "%Y%m%dT%H%M%SZ"


def _timestamp(created_at: str, fmt: str) -> int | str:
    moment = parse_timestamp(created_at)
    if fmt == "unix":
        return int(moment.timestamp())
    if fmt == "unixnano":
        return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000
    if fmt == "rfc3339ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if fmt == "rfc3339ns":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    # ASSUMPTION: a payload the log did not keep (cf-aig-collect-log-payload: false) is encrypted as "null".
    return "null" if value is None else str(value)


def event_record(log: dict[str, Any], key: rsa.RSAPublicKey, output_options: dict[str, Any] | None) -> dict[str, Any]:
    """One ``ai_gateway_events`` record of a stored gateway log."""
    options = output_options or {}
    status = log["status_code"]
    record: dict[str, Any] = {
        "Cached": bool(log["cached"]),
        "Endpoint": log["path"],
        "Gateway": log["gateway_id"],
        "Metadata": encrypt_field(key, _text(log["metadata"])),
        "Metrics": {"cost": float(log["cost"] or 0.0), "durationMs": int(log["duration"] or 0)},
        "Model": log["model"],
        "Provider": log["provider"],
        # ASSUMPTION: a request the gateway's rate limit refused is the one answered 429.
        "RateLimited": status == 429,
        "RequestBody": encrypt_field(key, _text(log["request_body"])),
        # The twin does no smart routing: the requested model is the one that served.
        "RequestedModel": log["model"],
        "ResponseBody": encrypt_field(key, _text(log["response_body"])),
        "RoutingDecisionID": "",
        "RoutingReason": "",
        "StatusCode": status,
        # ASSUMPTION: without output_options the timestamp is unixnano (Logpush's documented default).
        "Timestamp": _timestamp(log["created_at"], options.get("timestamp_format") or "unixnano"),
    }
    names = options.get("field_names")
    return {k: v for k, v in record.items() if k in names} if names else record


def _object_key(prefix_for: Any, first: str, last: str) -> str:
    start, end = parse_timestamp(first), parse_timestamp(last)
    return f"{prefix_for(start)}{start.strftime(_FILE_TIME)}_{end.strftime(_FILE_TIME)}_{secrets.token_hex(4)}.log.gz"


def _deliver_job(context: TwinContext, account_id: str, job_id: int, cursor: int, job: dict[str, Any]) -> int:
    db = context.db
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        destination = parse_destination(job["destination_conf"], r2_endpoint_url=context.options.r2_endpoint_url)
    except DestinationError as exc:
        mark_failed(db, job_id, now, f"error validating destination: {exc}")
        return 0
    max_records = job.get("max_upload_records") or _DEFAULT_RECORDS
    max_bytes = job.get("max_upload_bytes") or _DEFAULT_BYTES
    logs = logs_after(db, account_id, cursor, max_records)
    if not logs:
        return 0
    keys: dict[str, rsa.RSAPublicKey | None] = {}
    lines: list[bytes] = []
    size = 0
    last_seq = cursor
    first_at = last_at = ""
    for log in logs:
        gateway_id = log["gateway_id"]
        if gateway_id not in keys:
            gateway = get_gateway(db, account_id, gateway_id)
            pem = gateway.get("logpush_public_key") if gateway and gateway.get("logpush") else None
            try:
                keys[gateway_id] = load_public_key(pem) if pem else None
            except EncryptionKeyError as exc:
                logger.warning("gateway %s: %s; its logs are not exported", gateway_id, exc)
                keys[gateway_id] = None
        key = keys[gateway_id]
        if key is not None:
            line = json.dumps(event_record(log, key, job.get("output_options")), separators=(",", ":")).encode()
            if len(line) <= LOG_SIZE_LIMIT:
                if lines and size + len(line) + 1 > max_bytes:
                    break
                lines.append(line)
                size += len(line) + 1
                first_at = first_at or log["created_at"]
                last_at = log["created_at"]
        last_seq = log["seq"]
    if not lines:
        mark_delivered(db, job_id, last_seq, job.get("last_complete") or now)
        return 0
    body = gzip.compress(b"\n".join(lines) + b"\n")
    key_name = _object_key(destination.prefix, first_at, last_at)
    try:
        s3_client(destination, context.logpush).put_object(Bucket=destination.bucket, Key=key_name, Body=body,
                                          ContentEncoding="gzip", ContentType="application/x-ndjson")
    except Exception as exc:  # botocore's errors (no such bucket, refused, bad keys): the job records them
        mark_failed(db, job_id, now, f"error uploading to {destination.scheme}://{destination.bucket}: "
                    f"{type(exc).__name__}: {str(exc)[:200]}")
        return 0
    mark_delivered(db, job_id, last_seq, now)
    return len(lines)


def deliver_once(context: TwinContext) -> int:
    """One delivery round over every enabled job; the number of records written."""
    return sum(_deliver_job(context, *job) for job in enabled_jobs(context.db))


class _Worker(threading.Thread):
    def __init__(self, context: TwinContext) -> None:
        super().__init__(name="cftwin-logpush", daemon=True)
        self._context = weakref.ref(context)

    def run(self) -> None:
        while True:
            context = self._context()
            if context is None:
                return
            interval = max(context.options.logpush_interval_s, 0.05)
            try:
                deliver_once(context)
            except sqlite3.ProgrammingError:  # the twin closed its database: it is stopping
                return
            except Exception:
                logger.exception("logpush delivery round failed")
            del context
            time.sleep(interval)


def ensure_worker(context: TwinContext) -> None:
    """Start this twin's delivery thread unless it runs already (kept in ``context.logpush``)."""
    runtime = context.logpush
    with runtime.lock:
        worker = runtime.worker
        if isinstance(worker, _Worker) and worker.is_alive():
            return
        worker = _Worker(context)
        runtime.worker = worker
        worker.start()
