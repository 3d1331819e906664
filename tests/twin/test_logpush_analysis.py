"""The Logpush export analysed with DuckDB (aigw.logpush_analysis) gives the same totals as the logs API for the
same traffic: requests, cost, errors and cache hits; and its Parquet export, partitioned by day, reads back."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest
from aigw.config import Secret
from aigw.logpush import BucketSettings
from aigw.logpush_analysis import analyse_export, read_event_batches, write_parquet_by_day
from cftwin.logpush.bucket import LocalBucket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TwinHandle
from tests.twin_support import logpush_gateway, ok_result

WAIT_S = 30.0  # a bound on waiting for background delivery, not a timing assertion


@pytest.fixture(scope="module")
def bucket() -> Iterator[LocalBucket]:
    with LocalBucket("logpush-analysis") as local:
        yield local


def _api_totals(api: httpx.Client, gateway_id: str) -> dict[str, Any]:
    logs: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = api.get(f"ai-gateway/gateways/{gateway_id}/logs", params={"per_page": 50, "page": page})
        logs += ok_result(answer)
        if page * 50 >= answer.json()["result_info"]["total_count"]:
            break
        page += 1
    return {"requests": len(logs), "cost": sum(float(log["cost"] or 0) for log in logs),
            "errors": sum(1 for log in logs if not log["success"]), "cached": sum(1 for log in logs if log["cached"])}


def test_duckdb_totals_over_the_export_equal_the_logs_api(twin: TwinHandle, bucket: LocalBucket,
                                                          tmp_path: Path) -> None:
    twin.reset(r2_endpoint_url=bucket.url, logpush_interval_s=0.1, log_delay_s=0.0, cache_write_delay_s=0.0)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    folder = "an-" + secrets.token_hex(3)
    with httpx.Client(base_url=f"{twin.server.api_base_url}/accounts/{twin.account_id}/",
                      headers=twin.api_headers, timeout=30) as api:
        gateway_id = "an-" + secrets.token_hex(4)
        logpush_gateway(api, twin.account_id, gateway_id, pem, bucket, folder)
        base = f"{twin.server.gateway_base_url}/{twin.account_id}/{gateway_id}"
        sent = 0
        for n in range(12):
            provider, key_ok = ("openai", n % 5 != 4)
            headers = {**twin.aig_headers, "cf-aig-metadata": json.dumps({"n": n})}
            headers["Authorization"] = f"Bearer {twin.seed.provider_keys[provider] if key_ok else 'sk-wrong-key'}"
            if n % 3 == 0:
                headers["cf-aig-cache-ttl"] = "3600"
            body = {"model": "gpt-4o-mini", "max_tokens": 8,
                    "messages": [{"role": "user", "content": "same" if n % 3 == 0 else f"prompt {n}"}]}
            httpx.post(f"{base}/{provider}/chat/completions", json=body, headers=headers, timeout=30)
            sent += 1
        truth = _api_totals(api, gateway_id)
        assert truth["requests"] == sent and truth["errors"] >= 2
        settings = BucketSettings(bucket=bucket.bucket, path=f"{folder}/{{DATE}}", access_key_id=bucket.access_key_id,
                                  secret_access_key=Secret(bucket.secret_access_key), endpoint_url=bucket.url,
                                  region=None, account_id=twin.account_id)
        deadline = time.monotonic() + WAIT_S
        while True:
            tables = analyse_export(read_event_batches(settings))
            if int(tables["totals"]["requests"][0]) >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    totals = tables["totals"].iloc[0]
    assert int(totals["requests"]) == truth["requests"]
    assert int(totals["errors"]) == truth["errors"]
    assert int(totals["cached"]) == truth["cached"]
    assert float(totals["cost"]) == pytest.approx(truth["cost"], rel=1e-9, abs=1e-12)
    by_model = tables["usage_by_model"]
    assert int(by_model["requests"].sum()) == sent and set(by_model["provider"]) == {"openai"}
    assert set(tables["status_codes"]["status_code"]) >= {200, 401}
    out = write_parquet_by_day(read_event_batches(settings), tmp_path / "parquet")
    days = [p.name for p in out.iterdir()]
    assert days and all(d.startswith("day=") for d in days)
    assert ds.dataset(out, format="parquet", partitioning="hive").count_rows() == sent


def test_batches_read_each_timestamp_format_and_skip_an_empty_object(bucket: LocalBucket) -> None:
    """Timestamps as unixnano (the twin's default), unix and rfc3339, fields a record lacks as nulls, and a
    zero-byte object as no rows: what a job's ``output_options`` can make of the same records."""
    import gzip

    import pyarrow as pa

    folder = "ts-" + secrets.token_hex(3)
    s3 = bucket.client()
    records = [{"Timestamp": 1_764_547_200_123_456_789, "Provider": "openai", "StatusCode": 200,
                "Metrics": {"cost": 0.5, "durationMs": 10}},
               {"Timestamp": 1_764_547_201, "Provider": "openai", "StatusCode": 500, "Cached": True},
               {"Timestamp": "2025-12-01T00:00:02Z", "Model": "gpt-4o", "RequestBody": {"type": "encrypted"}}]
    for n, record in enumerate(records):
        s3.put_object(Bucket=bucket.bucket, Key=f"{folder}/20251201/{n:03d}.log.gz",
                      Body=gzip.compress((json.dumps(record) + "\n").encode()))
    s3.put_object(Bucket=bucket.bucket, Key=f"{folder}/20251201/999.log.gz", Body=b"")
    settings = BucketSettings(bucket=bucket.bucket, path=f"{folder}/{{DATE}}", access_key_id=bucket.access_key_id,
                              secret_access_key=Secret(bucket.secret_access_key), endpoint_url=bucket.url,
                              region=None, account_id="0" * 32)
    rows = pa.Table.from_batches(list(read_event_batches(settings))).to_pylist()
    assert [int(r["ts"].timestamp() * 1_000_000) for r in rows] == [1_764_547_200_123_456, 1_764_547_201_000_000,
                                                                    1_764_547_202_000_000]
    assert [r["status_code"] for r in rows] == [200, 500, None]
    assert [r["cached"] for r in rows] == [None, True, None]
    assert [r["cost"] for r in rows] == [0.5, None, None] and rows[2]["model"] == "gpt-4o"
