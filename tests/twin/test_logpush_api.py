"""The twin's Logpush job API over HTTP, through the official ``cloudflare`` SDK: Cloudflare's validation,
the four-jobs limit, the plan, permissions, and the destination checks against a real S3 server (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cftwin.logpush.bucket import LocalBucket
from cloudflare import BadRequestError, Cloudflare, NotFoundError, PermissionDeniedError

from tests.conftest import TwinHandle

DATASET = "ai_gateway_events"


@pytest.fixture(scope="module")
def bucket() -> Iterator[LocalBucket]:
    with LocalBucket("logpush-api") as local:
        yield local


@pytest.fixture
def sdk(twin: TwinHandle, bucket: LocalBucket) -> Iterator[Cloudflare]:
    twin.reset(r2_endpoint_url=bucket.url, logpush_interval_s=60.0)
    with Cloudflare(api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0) as client:
        yield client


def r2_conf(twin: TwinHandle, bucket: LocalBucket, path: str = "logs/{DATE}", name: str | None = None) -> str:
    return (f"r2://{name or bucket.bucket}/{path}?account-id={twin.account_id}"
            f"&access-key-id={bucket.access_key_id}&secret-access-key={bucket.secret_access_key}")


def create(sdk: Cloudflare, twin: TwinHandle, conf: str, **extra: Any) -> Any:
    return sdk.logpush.jobs.create(account_id=twin.account_id, destination_conf=conf,
                                   dataset=DATASET,  # type: ignore[arg-type]  # the SDK's list predates it
                                   **extra)


def test_create_get_update_delete_round_trip(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    job = create(sdk, twin, r2_conf(twin, bucket), name="aigw-gw", enabled=True,
                 output_options={"field_names": ["Gateway", "Metadata"], "timestamp_format": "rfc3339"})
    assert job is not None and job.id and job.enabled and job.name == "aigw-gw"
    assert job.dataset == DATASET and job.kind == "" and job.last_complete is None
    # Creating wrote Cloudflare's test object where the logs go.
    assert any(key.endswith("test.txt.gz") for key in bucket.keys("logs/"))
    got = sdk.logpush.jobs.get(job.id, account_id=twin.account_id)
    assert got is not None and got.destination_conf == job.destination_conf
    updated = sdk.logpush.jobs.update(job.id, account_id=twin.account_id, enabled=False)
    assert updated is not None and updated.enabled is False and updated.name == "aigw-gw"
    listed = sdk.logpush.jobs.list(account_id=twin.account_id)
    assert [j.id for j in listed if j is not None] == [job.id]
    deleted = sdk.logpush.jobs.delete(job.id, account_id=twin.account_id)
    assert deleted is not None and deleted.id == job.id
    with pytest.raises(NotFoundError):
        sdk.logpush.jobs.get(job.id, account_id=twin.account_id)


def test_at_most_four_jobs_per_account(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    for n in range(4):
        create(sdk, twin, r2_conf(twin, bucket, path=f"job{n}"))
    with pytest.raises(BadRequestError) as refused:
        create(sdk, twin, r2_conf(twin, bucket, path="job4"))
    assert "4 Logpush jobs" in str(refused.value)
    assert len(list(sdk.logpush.jobs.list(account_id=twin.account_id))) == 4


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"max_upload_records": 999}, "max_upload_records"),
        ({"max_upload_bytes": 4_000_000}, "max_upload_bytes"),
        ({"max_upload_interval_seconds": 301}, "max_upload_interval_seconds"),
        ({"name": "has_underscore"}, "name"),
        ({"kind": "edge"}, "kind"),
        ({"output_options": {"field_names": ["ClientIP"]}}, "ClientIP"),
        ({"output_options": {"timestamp_format": "iso"}}, "timestamp_format"),
    ],
)
def test_cloudflare_field_rules(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket,
                                extra: dict[str, Any], words: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        create(sdk, twin, r2_conf(twin, bucket), **extra)
    assert words in str(refused.value)
    assert list(sdk.logpush.jobs.list(account_id=twin.account_id)) == []


def test_zero_disables_an_upload_limit(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    job = create(sdk, twin, r2_conf(twin, bucket), max_upload_records=0, max_upload_interval_seconds=30)
    assert job is not None and job.max_upload_records == 0 and job.max_upload_interval_seconds == 30


def test_destination_must_be_reachable_and_complete(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    no_secret = f"r2://{bucket.bucket}/x?account-id={twin.account_id}&access-key-id={bucket.access_key_id}"
    with pytest.raises(BadRequestError, match="secret-access-key"):
        create(sdk, twin, no_secret)
    with pytest.raises(BadRequestError, match="error writing object"):
        create(sdk, twin, r2_conf(twin, bucket, name="no-such-bucket"))
    with pytest.raises(BadRequestError, match="Amazon S3"):
        create(sdk, twin, f"s3://{bucket.bucket}/x?region=us-east-1")
    with pytest.raises(BadRequestError, match="not loopback"):
        create(sdk, twin, f"s3://{bucket.bucket}/x?region=auto&access-key-id=a&secret-access-key=b"
                          "&endpoint=example.com")
    assert list(sdk.logpush.jobs.list(account_id=twin.account_id)) == []


def test_validate_destination_and_exists(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    good = sdk.logpush.validate.destination(account_id=twin.account_id, destination_conf=r2_conf(twin, bucket))
    assert good is not None and good.valid is True
    bad = sdk.logpush.validate.destination(account_id=twin.account_id,
                                           destination_conf=r2_conf(twin, bucket, name="missing-bucket"))
    assert bad is not None and bad.valid is False and "error writing object" in (bad.message or "")
    conf = r2_conf(twin, bucket, path="taken")
    before = sdk.logpush.validate.destination_exists(account_id=twin.account_id, destination_conf=conf)
    create(sdk, twin, conf)
    after = sdk.logpush.validate.destination_exists(account_id=twin.account_id, destination_conf=conf)
    assert before is not None and before.exists is False
    assert after is not None and after.exists is True


def test_dataset_fields(sdk: Cloudflare, twin: TwinHandle) -> None:
    fields = sdk.logpush.datasets.fields.get(DATASET, account_id=twin.account_id)  # type: ignore[arg-type]
    assert fields is not None
    assert {"Cached", "Gateway", "Metadata", "RequestBody", "ResponseBody", "StatusCode", "Timestamp"} <= set(fields)


def test_logpush_needs_the_paid_plan(twin: TwinHandle, bucket: LocalBucket) -> None:
    twin.reset(r2_endpoint_url=bucket.url, logpush_paid_plan=False)
    with Cloudflare(api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0) as sdk, \
            pytest.raises(BadRequestError, match="Workers Paid"):
        create(sdk, twin, r2_conf(twin, bucket))


def test_the_run_token_may_not_manage_jobs(sdk: Cloudflare, twin: TwinHandle, bucket: LocalBucket) -> None:
    assert twin.seed.aig_token
    with Cloudflare(api_token=twin.seed.aig_token, base_url=twin.server.api_base_url, max_retries=0) as run_only, \
            pytest.raises(PermissionDeniedError):
        create(run_only, twin, r2_conf(twin, bucket))


def test_a_job_id_is_a_number(sdk: Cloudflare, twin: TwinHandle) -> None:
    answer = httpx.get(f"{twin.server.api_base_url}/accounts/{twin.account_id}/logpush/jobs/abc",
                       headers=twin.api_headers)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == 1002
