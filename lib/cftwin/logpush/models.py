"""Logpush jobs of an account (the ``ai_gateway_events`` dataset), with Cloudflare's rules and limits.

Sources: the Logpush job API (cloudflare-python ``types/logpush/job_create_params.py``, ``logpush_job.py``,
``output_options.py``, 2026); cloudflare-docs ``logs/logpush/logpush-job/api-configuration.mdx`` (the
``max_upload_*`` ranges, ``kind``, ``{DATE}``); ``ai-gateway/observability/logging/logpush.mdx`` and
``ai-gateway/reference/limits.mdx`` (four jobs per account, 1 MB per exported log, Workers Paid only);
``logs/logpush/logpush-job/datasets/account/ai_gateway_events`` (the dataset's fields).

A job's ``cursor`` is the ``seq`` of the last gateway log it has delivered: a job exports only the logs
stored after it was made (Logpush "only pushes the logs once as they become available and is unable to
backfill", cloudflare-docs ``logs/faq/logpush``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from typing import Any, Final

from cftwin.db import Database
from cftwin.envelope import now_iso
from cftwin.logs.models import last_log_seq

__all__ = [
    "DATASET",
    "DATASET_FIELDS",
    "JOB_LIMIT",
    "LOG_SIZE_LIMIT",
    "JobError",
    "count_jobs",
    "create_job",
    "delete_job",
    "enabled_jobs",
    "get_job",
    "list_jobs",
    "mark_delivered",
    "mark_failed",
    "update_job",
    "validate_job_fields",
]

DATASET: Final = "ai_gateway_events"
#: "Workers Logpush supports four jobs per account" (ai-gateway logpush.mdx; limits.mdx "Logpush jobs 4 per account").
JOB_LIMIT: Final = 4
#: "Each exported log can be up to 1 MB."
LOG_SIZE_LIMIT: Final = 1_000_000
#: The dataset's fields and their descriptions, as ``GET .../datasets/ai_gateway_events/fields`` answers.
DATASET_FIELDS: Final[Mapping[str, str]] = {
    "Cached": "Request cached.",
    "Endpoint": "Requested endpoint.",
    "Gateway": "The AI Gateway that generated the log message.",
    "Metadata": "User defined metadata attached to the request.",
    "Metrics": "Provider-independent cost and usage metrics for the request, for example "
               '{"cost":0.0042,"durationMs":1234}.',
    "Model": "Model that served the request. For the model the caller asked for, refer to RequestedModel.",
    "Provider": "Requested provider name.",
    "RateLimited": "Request rate limited.",
    "RequestBody": 'Encrypted Request body in the format {"type":"encrypted","data":"base64"}.',
    "RequestedModel": "Model name the caller requested, for example cloudflare/auto. This can differ from Model "
                      "when AI Gateway routes the request to another model.",
    "ResponseBody": 'Encrypted Response body in the format {"type":"encrypted","data":"base64"}.',
    "RoutingDecisionID": "Smart routing decision ID, matching the cf-aig-routing-decision-id response header. "
                         "Empty when no routing decision was made.",
    "RoutingReason": "Reason smart routing selected the model, matching the cf-aig-routing-reason response "
                     "header. Empty when no routing decision was made.",
    "StatusCode": "Response status code.",
    "Timestamp": "Time the request was made.",
}
_TIMESTAMP_FORMATS: Final = ("unixnano", "unix", "rfc3339", "rfc3339ms", "rfc3339ns")
# ASSUMPTION: the name rule is the one the job API has enforced since 2019 (terraform-provider-cloudflare
# docs: "^[a-zA-Z0-9\-\.]*$", no "_"); the 512-character ceiling is the twin's.
_NAME: Final = re.compile(r"^[a-zA-Z0-9\-.]*$")
_NAME_MAX: Final = 512
#: (low, high) for each max_upload_* option; 0 disables it (api-configuration.mdx, job_create_params.py).
_UPLOAD_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "max_upload_bytes": (5_000_000, 1_000_000_000),
    "max_upload_records": (1_000, 1_000_000),
    "max_upload_interval_seconds": (30, 300),
}
_OUTPUT_KEYS: Final = frozenset({"field_names", "timestamp_format", "output_type", "sample_rate", "CVE-2021-44228"})
_UPDATABLE: Final = frozenset({"destination_conf", "enabled", "name", "output_options", "filter", "frequency",
                               "max_upload_bytes", "max_upload_records", "max_upload_interval_seconds",
                               "ownership_challenge", "logpull_options"})

SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS logpush_jobs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id  TEXT NOT NULL,
        body        TEXT NOT NULL,
        cursor      INTEGER NOT NULL,
        created_at  TEXT NOT NULL
    );
"""


class JobError(ValueError):
    """A request the job API refuses: ``message`` and the body path it is about."""

    def __init__(self, message: str, path: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _check_int_range(body: Mapping[str, Any], name: str) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    low, high = _UPLOAD_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int) or (value != 0 and not low <= value <= high):
        raise JobError(f"{name} must be 0 or between {low:,} and {high:,}", ("body", name))


def _check_output_options(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise JobError("output_options must be an object", ("body", "output_options"))
    unknown = sorted(set(value) - _OUTPUT_KEYS)
    if unknown:
        # ASSUMPTION: the twin writes plain NDJSON records; templates, delimiters and prefixes are refused.
        raise JobError(f"output_options {', '.join(unknown)} are not supported by the twin", ("body", "output_options"))
    names = value.get("field_names")
    if names is not None:
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise JobError("output_options.field_names must be a non-empty list of field names",
                           ("body", "output_options", "field_names"))
        bad = [n for n in names if n not in DATASET_FIELDS]
        if bad:
            raise JobError(f"output_options.field_names: {', '.join(bad)} not in dataset {DATASET}",
                           ("body", "output_options", "field_names"))
    fmt = value.get("timestamp_format")
    if fmt is not None and fmt not in _TIMESTAMP_FORMATS:
        raise JobError(f"output_options.timestamp_format must be one of {', '.join(_TIMESTAMP_FORMATS)}",
                       ("body", "output_options", "timestamp_format"))
    if value.get("output_type") not in (None, "ndjson"):
        raise JobError("output_options.output_type: the twin writes ndjson only", ("body", "output_options"))
    rate = value.get("sample_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1):
        raise JobError("output_options.sample_rate must be greater than 0 and at most 1",
                       ("body", "output_options", "sample_rate"))


def validate_job_fields(body: Mapping[str, Any], *, creating: bool) -> None:
    """Cloudflare's field rules for a create (``creating``) or an update body; ``JobError`` otherwise."""
    if creating:
        if body.get("dataset") != DATASET:
            # ASSUMPTION: an account job must name its dataset; the twin emulates only ai_gateway_events.
            raise JobError(f"dataset must be {DATASET!r} (the only dataset the twin emulates)", ("body", "dataset"))
        if body.get("kind") not in (None, ""):
            raise JobError("kind 'edge' is supported only for the http_requests dataset", ("body", "kind"))
    else:
        if "kind" in body:
            raise JobError("kind cannot be changed on an existing job", ("body", "kind"))
        extra = sorted(set(body) - _UPDATABLE - {"dataset", "id"})
        if extra:
            raise JobError(f"{', '.join(extra)} cannot be updated", ("body", extra[0]))
        if "dataset" in body and body["dataset"] != DATASET:
            raise JobError("dataset cannot be changed on an existing job", ("body", "dataset"))
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise JobError("enabled must be a boolean", ("body", "enabled"))
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > _NAME_MAX or not _NAME.fullmatch(name)):
        raise JobError("name may hold only letters, digits, '-' and '.'", ("body", "name"))
    if body.get("frequency") not in (None, "high", "low"):
        raise JobError("frequency must be high or low", ("body", "frequency"))
    if body.get("filter") not in (None, ""):
        # ASSUMPTION: the twin does not evaluate Logpush filters; it refuses one rather than ignore it.
        raise JobError("filter is not supported by the twin", ("body", "filter"))
    if body.get("logpull_options") not in (None, ""):
        raise JobError("logpull_options is deprecated; use output_options", ("body", "logpull_options"))
    for option in _UPLOAD_RANGES:
        _check_int_range(body, option)
    _check_output_options(body.get("output_options"))


def _public(job_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
    job = {
        "id": job_id,
        "dataset": DATASET,
        "kind": "",
        "enabled": bool(body.get("enabled", False)),
        "name": body.get("name"),
        "destination_conf": body["destination_conf"],
        "output_options": body.get("output_options"),
        "frequency": body.get("frequency", "high"),
        "max_upload_bytes": body.get("max_upload_bytes"),
        "max_upload_records": body.get("max_upload_records"),
        "max_upload_interval_seconds": body.get("max_upload_interval_seconds"),
        "last_complete": body.get("last_complete"),
        "last_error": body.get("last_error"),
        "error_message": body.get("error_message"),
    }
    return job


_STORED: Final = frozenset({"enabled", "name", "destination_conf", "output_options", "frequency", "max_upload_bytes",
                            "max_upload_records", "max_upload_interval_seconds"})


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return _public(int(row["id"]), json.loads(row["body"]))


def count_jobs(db: Database, account_id: str) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM logpush_jobs WHERE account_id = ?", (account_id,))
    return int(row["n"]) if row is not None else 0


def create_job(db: Database, account_id: str, body: Mapping[str, Any], *, limit: int = JOB_LIMIT) -> dict[str, Any]:
    """Store a job (validated by the caller); ``JobError`` when the account has ``limit`` jobs already."""
    stored = {k: v for k, v in body.items() if k in _STORED}
    with db.transaction() as conn:
        if count_jobs(db, account_id) >= limit:
            raise JobError(f"the account has {limit} Logpush jobs, the most it may have; delete one first")
        # Only logs stored from now on are exported (no backfill).
        cursor = conn.execute(
            "INSERT INTO logpush_jobs (account_id, body, cursor, created_at) VALUES (?, ?, ?, ?)",
            (account_id, json.dumps(stored), last_log_seq(db, account_id), now_iso()),
        )
        job_id = int(cursor.lastrowid or 0)
    return _public(job_id, stored)


def get_job(db: Database, account_id: str, job_id: int) -> dict[str, Any] | None:
    row = db.query_one("SELECT * FROM logpush_jobs WHERE account_id = ? AND id = ?", (account_id, job_id))
    return _row(row) if row is not None else None


def list_jobs(db: Database, account_id: str) -> list[dict[str, Any]]:
    return [_row(r) for r in db.query("SELECT * FROM logpush_jobs WHERE account_id = ? ORDER BY id", (account_id,))]


def update_job(db: Database, account_id: str, job_id: int, changes: Mapping[str, Any]) -> dict[str, Any] | None:
    with db.transaction() as conn:
        row = conn.execute("SELECT body FROM logpush_jobs WHERE account_id = ? AND id = ?",
                           (account_id, job_id)).fetchone()
        if row is None:
            return None
        body = json.loads(row["body"])
        body.update({k: v for k, v in changes.items() if k in _STORED})
        conn.execute("UPDATE logpush_jobs SET body = ? WHERE id = ?", (json.dumps(body), job_id))
    return _public(job_id, body)


def delete_job(db: Database, account_id: str, job_id: int) -> bool:
    with db.transaction() as conn:
        cursor = conn.execute("DELETE FROM logpush_jobs WHERE account_id = ? AND id = ?", (account_id, job_id))
        return cursor.rowcount > 0


def enabled_jobs(db: Database) -> list[tuple[str, int, int, dict[str, Any]]]:
    """Every enabled job of every account: (account id, job id, cursor, job)."""
    rows = db.query("SELECT * FROM logpush_jobs ORDER BY id")
    jobs = [(str(r["account_id"]), int(r["id"]), int(r["cursor"]), _row(r)) for r in rows]
    return [j for j in jobs if j[3]["enabled"]]


def _set_status(db: Database, job_id: int, cursor: int | None, status: Mapping[str, Any]) -> None:
    with db.transaction() as conn:
        row = conn.execute("SELECT body FROM logpush_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:  # deleted while a batch was on its way
            return
        body = json.loads(row["body"])
        body.update(status)
        if cursor is None:
            conn.execute("UPDATE logpush_jobs SET body = ? WHERE id = ?", (json.dumps(body), job_id))
        else:
            conn.execute("UPDATE logpush_jobs SET body = ?, cursor = MAX(cursor, ?) WHERE id = ?",
                         (json.dumps(body), cursor, job_id))


def mark_delivered(db: Database, job_id: int, cursor: int, at: str) -> None:
    """A batch is in the bucket: move the cursor past it; the job is healthy again."""
    _set_status(db, job_id, cursor, {"last_complete": at, "last_error": None, "error_message": None})


def mark_failed(db: Database, job_id: int, at: str, message: str, *, skip_to: int | None = None) -> None:
    """A batch failed (the cursor stays, so it is retried) unless ``skip_to`` drops what cannot be sent."""
    _set_status(db, job_id, skip_to, {"last_error": at, "error_message": message})
