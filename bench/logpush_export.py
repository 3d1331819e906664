"""Row ``logpush_export``: 04's tables from a Logpush export: generated ``ai_gateway_events`` in gzipped NDJSON
objects in a local bucket (moto's S3 API), read back over S3 and analysed, ours against pandas.

Each side runs in a fresh process (``python -m bench.logpush_export ours|pandas URL BUCKET KEY SECRET``)
over the same objects, its peak resident memory sampled from /proc, so the peak is its own (the bucket's
objects live in this process, moto's):

* ours: ``aigw.logpush_analysis``: one object at a time as Arrow record batches into DuckDB (512 MB memory
  limit), then the named queries (totals, usage by model, latency percentiles, status codes, cache hits, per day).
* reference: pandas: ``pd.read_json(lines=True)`` per object, made compact (categories, narrow ints) per object,
  concatenated, then the same tables in pandas.

The events carry encrypted-looking fields of realistic size (base64 of random bytes), as a real export does.
Issue 17's targets (at 10,000,000 events, on 2 cores): under 60 s, at least 5x pandas, peak under 1 GiB.
``--quick`` generates 200,000 events: its figures are not the target's, so ``met`` is n/a.
Beside it: the logs API route's budget-bound time for the same count (50 logs a page, 1,200 requests per 300 s).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench.analysis import PeakSampler
from bench.common import PYTHON, Row, child_env

FULL_EVENTS = 10_000_000
QUICK_EVENTS = 200_000
PER_OBJECT = 100_000
PAIRS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"),
         ("anthropic", "claude-3-5-haiku"), ("google-ai-studio", "gemini-2.5-flash")]
PATH = "bench/20261201"


def _encrypted(rng: np.random.Generator, size: int) -> dict[str, str]:
    b64 = base64.b64encode
    return {"type": "encrypted", "key": b64(rng.bytes(512)).decode(), "iv": b64(rng.bytes(12)).decode(),
            "data": b64(rng.bytes(size)).decode()}


def _object(rng: np.random.Generator, start: int, count: int) -> bytes:
    # One encrypted value per object reused per line: generating 10M random fields would time the generator.
    meta, request, response = _encrypted(rng, 48), _encrypted(rng, 200), _encrypted(rng, 300)
    pick = rng.integers(0, len(PAIRS), count)
    status = np.where(rng.random(count) < 0.03, 429, np.where(rng.random(count) < 0.02, 500, 200))
    cached = rng.random(count) < 0.1
    cost = rng.gamma(2.0, 0.0004, count)
    duration = rng.gamma(2.0, 150.0, count).astype(int)
    base = 1_764_547_200  # 2025-12-01T00:00:00Z
    lines = []
    for i in range(count):
        provider, model = PAIRS[pick[i]]
        second = base + (start + i) * 86_400 // FULL_EVENTS
        lines.append(json.dumps({
            "Cached": bool(cached[i]), "Endpoint": "chat/completions", "Gateway": "bench", "Metadata": meta,
            "Metrics": {"cost": float(cost[i]), "durationMs": int(duration[i])}, "Model": model,
            "Provider": provider, "RateLimited": bool(status[i] == 429), "RequestBody": request,
            "RequestedModel": model, "ResponseBody": response, "RoutingDecisionID": "", "RoutingReason": "",
            "StatusCode": int(status[i]),
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)),
        }, separators=(",", ":")))
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)


def _pandas_tables(url: str, bucket: str, key_id: str, secret: str) -> dict[str, Any]:
    import boto3
    import pandas as pd

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
                      aws_secret_access_key=secret)
    frames = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="bench/"):
        for item in page.get("Contents", []):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            part = pd.read_json(io.BytesIO(body), lines=True)
            # Made compact per object, as a careful pandas user would: 10M rows of Python strings and
            # dicts would not fit in memory at all.
            frames.append(pd.DataFrame({
                "Provider": part["Provider"].astype("category"), "Model": part["Model"].astype("category"),
                "StatusCode": part["StatusCode"].astype("int16"), "Cached": part["Cached"].astype(bool),
                "cost": part["Metrics"].map(lambda m: m["cost"]).astype(float),
                "duration": part["Metrics"].map(lambda m: m["durationMs"]).astype("int32"),
                "ts": pd.to_datetime(part["Timestamp"], utc=True),
            }))
    frame = pd.concat(frames, ignore_index=True)
    for name in ("Provider", "Model"):
        frame[name] = frame[name].astype("category")
    grouped = frame.groupby(["Provider", "Model"], observed=True)
    return {
        "requests": len(frame), "cost": float(frame["cost"].sum()),
        "errors": int((frame["StatusCode"] >= 400).sum()), "cached": int(frame["Cached"].sum()),
        "usage": grouped.agg(requests=("StatusCode", "size"), cost=("cost", "sum")),
        "latency": grouped["duration"].quantile([0.5, 0.95, 0.99]).unstack(),
        "status": frame.groupby(["Provider", "StatusCode"], observed=True).size(),
        "cache": grouped["Cached"].agg(["size", "sum"]),
        "per_day": frame.groupby([pd.Grouper(key="ts", freq="1D"), "Provider"], observed=True).size(),
    }


def child(side: str, url: str, bucket: str, key_id: str, secret: str) -> dict[str, Any]:
    # Sampled from /proc (getrusage's ru_maxrss would carry the parent's size at fork, bucket included).
    with PeakSampler() as peak:
        result = _side(side, url, bucket, key_id, secret)
    result["peak_bytes"] = peak.peak
    return result


def _side(side: str, url: str, bucket: str, key_id: str, secret: str) -> dict[str, Any]:
    started = time.perf_counter()
    if side == "ours":
        from aigw.config import Secret
        from aigw.logpush import BucketSettings
        from aigw.logpush_analysis import analyse_export, read_event_batches

        settings = BucketSettings(bucket=bucket, path="bench", access_key_id=key_id,
                                  secret_access_key=Secret(secret), endpoint_url=url, region=None,
                                  account_id="0" * 32)
        tables = analyse_export(read_event_batches(settings))
        totals = tables["totals"].iloc[0]
        result = {"requests": int(totals["requests"]), "cost": float(totals["cost"]),
                  "errors": int(totals["errors"]), "cached": int(totals["cached"])}
    else:
        tables_p = _pandas_tables(url, bucket, key_id, secret)
        result = {k: tables_p[k] for k in ("requests", "cost", "errors", "cached")}
    result["seconds"] = time.perf_counter() - started
    return result


def run(quick: bool) -> Row:
    from cftwin.logpush.bucket import LocalBucket

    events = QUICK_EVENTS if quick else FULL_EVENTS
    rng = np.random.default_rng(17)
    with LocalBucket("bench-logpush") as local:
        s3 = local.client()
        made = time.perf_counter()
        for n, start in enumerate(range(0, events, PER_OBJECT)):
            body = _object(rng, start, min(PER_OBJECT, events - start))
            s3.put_object(Bucket=local.bucket, Key=f"{PATH}/{n:06d}.log.gz", Body=body)
        generated_s = time.perf_counter() - made
        sides = {}
        for side in ("ours", "pandas"):
            done = subprocess.run([PYTHON, "-m", "bench.logpush_export", side, local.url, local.bucket,
                                   local.access_key_id, local.secret_access_key],
                                  capture_output=True, text=True, env=child_env(), check=True, timeout=3600)
            sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, pandas = sides["ours"], sides["pandas"]
    same = all(ours[k] == pandas[k] for k in ("requests", "errors", "cached")) and abs(
        ours["cost"] - pandas["cost"]) <= 1e-9 * max(1.0, abs(pandas["cost"]))
    ratio = pandas["seconds"] / ours["seconds"]
    api_s = events / 50 / (1200 / 300)  # pages of 50 within 1,200 requests per 300 s
    met = None if quick else (ours["seconds"] < 60 and ratio >= 5 and ours["peak_bytes"] < 2**30 and same)
    return Row(
        name="logpush_export",
        what=f"04's tables from {events:,} exported events ({events // PER_OBJECT} gzipped NDJSON objects over S3): "
             "DuckDB on Arrow batches vs pandas",
        figure=f"{ours['seconds']:.1f} s, peak {ours['peak_bytes'] / 2**20:.0f} MiB",
        reference=f"pandas {pandas['seconds']:.1f} s, peak {pandas['peak_bytes'] / 2**20:.0f} MiB",
        ratio=ratio,
        target=">= 5x pandas, < 60 s, < 1 GiB at 10M",
        met=met,
        notes=[f"same totals on both sides: {'yes' if same else 'NO'} ({ours['requests']:,} requests)",
               f"the logs API route for the same count, bound by the budget: {api_s:,.0f} s ({api_s / 3600:.1f} h)",
               f"generating the objects took {generated_s:.1f} s (not timed in either side)"],
        data={"ours": ours, "pandas": pandas, "events": events},
    )


if __name__ == "__main__":
    print(json.dumps(child(*sys.argv[1:6])))
