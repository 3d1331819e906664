"""Delivery of ``ai_gateway_events`` into a real S3 server (moto) on loopback: gzipped NDJSON batches whose
Metadata / RequestBody / ResponseBody decrypt with the gateway's private key (aigw's decryption, written
apart from the twin's encryption, so each checks the other), only for gateways with Logpush on, no backfill,
and retries after a failed upload."""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aigw.logpush import decrypt_record
from cftwin.logpush.bucket import LocalBucket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TwinHandle

# A bound on waiting for a background delivery, not a timing assertion: delivery runs every 0.1 s here.
WAIT_S = 20.0


@pytest.fixture(scope="module")
def bucket() -> Iterator[LocalBucket]:
    with LocalBucket("logpush-delivery") as local:
        yield local


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def api(twin: TwinHandle, bucket: LocalBucket) -> Iterator[httpx.Client]:
    twin.reset(r2_endpoint_url=bucket.url, logpush_interval_s=0.1)
    with httpx.Client(base_url=f"{twin.server.api_base_url}/accounts/{twin.account_id}/",
                      headers=twin.api_headers, timeout=30) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["result"]


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def make_gateway(api: httpx.Client, **fields: Any) -> str:
    gateway_id = "lp-" + secrets.token_hex(4)
    ok(api.post("ai-gateway/gateways", json={
        "id": gateway_id, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
        "rate_limiting_interval": 0, "rate_limiting_limit": 0, "authentication": True, **fields}))
    return gateway_id


def make_job(api: httpx.Client, twin: TwinHandle, bucket: LocalBucket, path: str, **extra: Any) -> dict[str, Any]:
    conf = (f"r2://{bucket.bucket}/{path}/{{DATE}}?account-id={twin.account_id}"
            f"&access-key-id={bucket.access_key_id}&secret-access-key={bucket.secret_access_key}")
    body = {"dataset": "ai_gateway_events", "destination_conf": conf, "enabled": True, **extra}
    job: dict[str, Any] = ok(api.post("logpush/jobs", json=body))
    return job


def send(twin: TwinHandle, gateway_id: str, marker: str) -> None:
    url = f"{twin.server.gateway_base_url}/{twin.account_id}/{gateway_id}/openai/chat/completions"
    response = httpx.post(url, timeout=30, json={
        "model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": f"canary {marker}"}]},
        headers={**twin.aig_headers, "Authorization": f"Bearer {twin.seed.provider_keys['openai']}",
                 "cf-aig-metadata": json.dumps({"canary": marker})})
    assert response.status_code == 200, response.text


def batches(bucket: LocalBucket, prefix: str) -> list[list[dict[str, Any]]]:
    client = bucket.client()
    out = []
    for key in bucket.keys(prefix):
        if key.endswith(".log.gz"):
            body = client.get_object(Bucket=bucket.bucket, Key=key)["Body"].read()
            out.append([json.loads(line) for line in gzip.decompress(body).decode().splitlines() if line])
    return out


def wait_for_records(bucket: LocalBucket, prefix: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        records = [r for batch in batches(bucket, prefix) for r in batch]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_a_request_arrives_encrypted_and_decrypts(api: httpx.Client, twin: TwinHandle, bucket: LocalBucket,
                                                   private_key: rsa.RSAPrivateKey) -> None:
    gateway_id = make_gateway(api, logpush=True, logpush_public_key=public_pem(private_key))
    make_job(api, twin, bucket, "one", output_options={"timestamp_format": "rfc3339"})
    marker = secrets.token_hex(6)
    send(twin, gateway_id, marker)
    records = wait_for_records(bucket, "one/", 1)
    assert len(records) == 1
    record = records[0]
    assert record["Gateway"] == gateway_id and record["Provider"] == "openai" and record["StatusCode"] == 200
    assert record["Model"] == "gpt-4o-mini" and record["Cached"] is False and record["RateLimited"] is False
    assert set(record["Metrics"]) == {"cost", "durationMs"}
    assert record["Timestamp"].endswith("Z")
    # On the wire the payloads are ciphertext only.
    for name in ("Metadata", "RequestBody", "ResponseBody"):
        assert record[name]["type"] == "encrypted" and set(record[name]) == {"type", "key", "iv", "data"}
        assert marker not in json.dumps(record[name])
    plain = decrypt_record(private_key, record)
    assert plain["Metadata"]["canary"] == marker
    assert marker in json.dumps(plain["RequestBody"])
    assert plain["ResponseBody"]["object"] == "chat.completion"
    # The object is named as Logpush names its files, under the day's folder.
    key = next(k for k in bucket.keys("one/") if k.endswith(".log.gz"))
    day, name = key.split("/")[1:]
    assert len(day) == 8 and day.isdigit() and name.count("_") == 2


def test_only_gateways_with_logpush_and_only_new_logs(api: httpx.Client, twin: TwinHandle, bucket: LocalBucket,
                                                      private_key: rsa.RSAPrivateKey) -> None:
    pem = public_pem(private_key)
    on = make_gateway(api, logpush=True, logpush_public_key=pem)
    off = make_gateway(api, logpush=False, logpush_public_key=pem)
    before = secrets.token_hex(6)
    send(twin, on, before)  # stored before the job exists: Logpush does not backfill
    make_job(api, twin, bucket, "two")
    after = secrets.token_hex(6)
    send(twin, off, secrets.token_hex(6))
    send(twin, on, after)
    # Logs are exported in the order they were stored: once `after` is in, `off`'s log was passed over.
    records = wait_for_records(bucket, "two/", 1)
    assert [decrypt_record(private_key, r)["Metadata"]["canary"] for r in records] == [after]
    assert {r["Gateway"] for r in records} == {on}


def test_field_names_select_the_record_fields(api: httpx.Client, twin: TwinHandle, bucket: LocalBucket,
                                              private_key: rsa.RSAPrivateKey) -> None:
    gateway_id = make_gateway(api, logpush=True, logpush_public_key=public_pem(private_key))
    make_job(api, twin, bucket, "three", output_options={"field_names": ["Gateway", "StatusCode"]})
    send(twin, gateway_id, "x")
    records = wait_for_records(bucket, "three/", 1)
    assert records == [{"Gateway": gateway_id, "StatusCode": 200}]


def test_a_failed_upload_is_recorded_and_retried(api: httpx.Client, twin: TwinHandle, bucket: LocalBucket,
                                                 private_key: rsa.RSAPrivateKey) -> None:
    gateway_id = make_gateway(api, logpush=True, logpush_public_key=public_pem(private_key))
    job = make_job(api, twin, bucket, "four")
    s3 = bucket.client()
    for key in bucket.keys("four/"):
        s3.delete_object(Bucket=bucket.bucket, Key=key)
    # The destination stops working: the job must say so, and keep the batch.
    twin.context.options.update({"r2_endpoint_url": "http://127.0.0.1:9"})
    send(twin, gateway_id, "kept")
    deadline = time.monotonic() + WAIT_S
    state = ok(api.get(f"logpush/jobs/{job['id']}"))
    while state["error_message"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
        state = ok(api.get(f"logpush/jobs/{job['id']}"))
    assert state["error_message"] and state["last_error"] and state["last_complete"] is None
    twin.context.options.update({"r2_endpoint_url": bucket.url})
    records = wait_for_records(bucket, "four/", 1)
    assert [decrypt_record(private_key, r)["Metadata"]["canary"] for r in records] == ["kept"]
    healed = ok(api.get(f"logpush/jobs/{job['id']}"))
    while healed["last_complete"] is None and time.monotonic() < deadline + WAIT_S:
        time.sleep(0.05)  # the status is written just after the object
        healed = ok(api.get(f"logpush/jobs/{job['id']}"))
    assert healed["error_message"] is None and healed["last_complete"]
