"""HTTP handlers of the account Logpush API (``/client/v4/accounts/{a}/logpush/...``) for ``ai_gateway_events``.

Permissions: reads need ``logs:read`` (or ``logs:write``), changes ``logs:write`` (Cloudflare: "Logs Read" /
"Logs Edit" on the account). A call on an account with jobs starts this twin's delivery thread if it is not
running.

ASSUMPTION: the job API's refusals are 400 with code 1002 (its validation failures), an unknown job 404 with
code 1003; Cloudflare's public sources do not list the Logpush API's codes. Messages say what to fix.
ASSUMPTION: a job is made only after its destination took Cloudflare's test object (as
``validate/destination`` does); the ownership challenge is not emulated, as none of the destinations the twin
reaches needs one (R2 and S3-compatible endpoints: "there is no ownership challenge").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.context import TwinContext, authorized_account, twin_context
from cftwin.envelope import CloudflareAPIError, ok, read_json_object
from cftwin.logpush import models
from cftwin.logpush.delivery import ensure_worker
from cftwin.logpush.destinations import DestinationError, parse_destination, write_validation_object

__all__ = ["CODE_LOGPUSH_INVALID", "CODE_LOGPUSH_NOT_FOUND", "routes"]

CODE_LOGPUSH_INVALID: Final = 1002
CODE_LOGPUSH_NOT_FOUND: Final = 1003
_BASE: Final = "/client/v4/accounts/{account_id}/logpush"


def _wake(context: TwinContext, account_id: str) -> None:
    # The delivery thread runs only once the account has a job (a twin restarted on kept state gets it
    # back on its first Logpush call); a run that never uses Logpush pays nothing for it.
    if models.count_jobs(context.db, account_id):
        ensure_worker(context)


def _invalid(message: str, path: tuple[str, ...] | None = None) -> CloudflareAPIError:
    return CloudflareAPIError.single(400, CODE_LOGPUSH_INVALID, message, path=list(path) if path else None)


def _job_id(request: Request) -> int:
    text = request.path_params["job_id"]
    if not text.isdigit() or int(text) < 1:
        raise _invalid(f"job id {text!r} is not a job id (a positive integer)", ("job_id",))
    return int(text)


def _dataset(request: Request) -> None:
    if request.path_params["dataset_id"] != models.DATASET:
        raise CloudflareAPIError.single(404, CODE_LOGPUSH_NOT_FOUND,
                                        f"dataset {request.path_params['dataset_id']!r} is not one the twin serves "
                                        f"(only {models.DATASET})")


async def _checked_destination(context: TwinContext, conf: Any) -> None:
    """Parse ``conf`` and write the test object there; 400 'error validating destination: ...' otherwise."""
    try:
        destination = parse_destination(conf, r2_endpoint_url=context.options.r2_endpoint_url)
    except DestinationError as exc:
        raise _invalid(f"error validating destination: {exc}", ("body", "destination_conf")) from None
    try:
        await run_in_threadpool(write_validation_object, destination, datetime.now(UTC), context.logpush)
    except Exception as exc:  # botocore's errors: no such bucket, refused, wrong keys
        raise _invalid(f"error validating destination: error writing object: {type(exc).__name__}: "
                       f"{str(exc)[:200]}", ("body", "destination_conf")) from None


def _jobs(request: Request, account_id: str) -> Response:
    """The account's jobs, once the caller's checks passed (each charges the budget once, so not here)."""
    context = twin_context(request)
    _wake(context, account_id)
    return ok(models.list_jobs(context.db, account_id))


async def list_jobs(request: Request) -> Response:
    account_id = authorized_account(request, "logs:read")
    return _jobs(request, account_id)


async def list_dataset_jobs(request: Request) -> Response:
    account_id = authorized_account(request, "logs:read")
    _dataset(request)
    return _jobs(request, account_id)


async def create_job(request: Request) -> Response:
    account_id = authorized_account(request, "logs:write")
    context = twin_context(request)
    body = await read_json_object(request)
    if not context.options.logpush_paid_plan:
        # "This product is available on the Workers Paid plan" (ai-gateway logpush.mdx).
        raise _invalid("Logpush for ai_gateway_events needs the Workers Paid plan; upgrade the account")
    try:
        models.validate_job_fields(body, creating=True)
    except models.JobError as exc:
        raise _invalid(exc.message, exc.path) from None
    if models.count_jobs(context.db, account_id) >= models.JOB_LIMIT:
        raise _invalid(f"the account has {models.JOB_LIMIT} Logpush jobs, the most it may have; delete one first")
    await _checked_destination(context, body.get("destination_conf"))
    try:
        job = models.create_job(context.db, account_id, body)
    except models.JobError as exc:  # the limit, reached by a concurrent create
        raise _invalid(exc.message, exc.path) from None
    _wake(context, account_id)
    return ok(job)


def _existing(context: TwinContext, account_id: str, job_id: int) -> dict[str, Any]:
    job = models.get_job(context.db, account_id, job_id)
    if job is None:
        raise CloudflareAPIError.single(404, CODE_LOGPUSH_NOT_FOUND, f"Logpush job {job_id} not found")
    return job


async def get_job(request: Request) -> Response:
    account_id = authorized_account(request, "logs:read")
    return ok(_existing(twin_context(request), account_id, _job_id(request)))


async def update_job(request: Request) -> Response:
    account_id = authorized_account(request, "logs:write")
    context = twin_context(request)
    job_id = _job_id(request)
    body = await read_json_object(request)
    current = _existing(context, account_id, job_id)
    try:
        models.validate_job_fields(body, creating=False)
    except models.JobError as exc:
        raise _invalid(exc.message, exc.path) from None
    if "destination_conf" in body and body["destination_conf"] != current["destination_conf"]:
        await _checked_destination(context, body["destination_conf"])
    updated = models.update_job(context.db, account_id, job_id, body)
    if updated is None:
        raise CloudflareAPIError.single(404, CODE_LOGPUSH_NOT_FOUND, f"Logpush job {job_id} not found")
    _wake(context, account_id)
    return ok(updated)


async def delete_job(request: Request) -> Response:
    account_id = authorized_account(request, "logs:write")
    job_id = _job_id(request)
    if not models.delete_job(twin_context(request).db, account_id, job_id):
        raise CloudflareAPIError.single(404, CODE_LOGPUSH_NOT_FOUND, f"Logpush job {job_id} not found")
    return ok({"id": job_id})


async def dataset_fields(request: Request) -> Response:
    authorized_account(request, "logs:read")
    _dataset(request)
    return ok(dict(models.DATASET_FIELDS))


async def validate_destination(request: Request) -> Response:
    authorized_account(request, "logs:write")
    context = twin_context(request)
    body = await read_json_object(request)
    try:
        await _checked_destination(context, body.get("destination_conf"))
    except CloudflareAPIError as exc:
        # The operation answers whether the destination works; a bad one is a valid answer, not an error.
        return ok({"valid": False, "message": str(exc.errors[0]["message"])})
    return ok({"valid": True, "message": ""})


async def destination_exists(request: Request) -> Response:
    account_id = authorized_account(request, "logs:read")
    context = twin_context(request)
    body = await read_json_object(request)
    try:
        wanted = parse_destination(body.get("destination_conf"), r2_endpoint_url=context.options.r2_endpoint_url)
    except DestinationError as exc:
        raise _invalid(str(exc), ("body", "destination_conf")) from None
    taken = False
    for job in models.list_jobs(context.db, account_id):
        try:
            place = parse_destination(job["destination_conf"], r2_endpoint_url=context.options.r2_endpoint_url)
        except DestinationError:
            continue
        taken = taken or place.same_place == wanted.same_place
    return ok({"exists": taken})


routes: list[BaseRoute] = [
    Route(f"{_BASE}/jobs", list_jobs, methods=["GET"]),
    Route(f"{_BASE}/jobs", create_job, methods=["POST"]),
    Route(f"{_BASE}/jobs/{{job_id}}", get_job, methods=["GET"]),
    Route(f"{_BASE}/jobs/{{job_id}}", update_job, methods=["PUT"]),
    Route(f"{_BASE}/jobs/{{job_id}}", delete_job, methods=["DELETE"]),
    Route(f"{_BASE}/datasets/{{dataset_id}}/fields", dataset_fields, methods=["GET"]),
    Route(f"{_BASE}/datasets/{{dataset_id}}/jobs", list_dataset_jobs, methods=["GET"]),
    Route(f"{_BASE}/validate/destination", validate_destination, methods=["POST"]),
    Route(f"{_BASE}/validate/destination/exists", destination_exists, methods=["POST"]),
]
