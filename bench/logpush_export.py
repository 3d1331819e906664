"""Row ``logpush_export``: notebook 04's tables from a Logpush export (``source="logpush"``): generated
``ai_gateway_events`` in gzipped NDJSON objects in a local bucket (moto's S3 API), read back over S3 and
analysed, ours against pandas.

Each side runs in a fresh process (``python -m bench.logpush_export ours|pandas URL BUCKET KEY SECRET OBJECTS``)
over the same objects, its peak resident memory sampled from /proc, so the peak is its own (the bucket's
objects live in this process, moto's):

* ours: what notebook 04 runs, ``aigw.logs_logpush.read_logpush_window`` (two objects at a time, each parsed by
  DuckDB's built-in ``read_json`` into Arrow, written as Parquet DuckDB scans, 512 MB memory limit) then
  ``.report()`` (every table from the named SQL).
* reference: pandas: ``pd.read_json(lines=True)`` per object, made compact (categories, narrow ints) per object,
  concatenated, then the same tables in pandas.

The events carry encrypted fields of realistic size (base64 of random bytes: an RSA-4096-wrapped key, an IV and
the ciphertext, as a real export does), so each event is about 3.3 kB of JSON and 10M events are about 33 GB to
inflate and parse. Generating them takes about a minute for 10M on 2 cores (it took 20 minutes before the lines
were formatted as bytes and deflated in chunks), and the objects are cached on disk under
``$AIGW_BENCH_CACHE`` (default ``~/.cache/aigw-bench``), keyed by the count and ``GENERATOR_VERSION``, with a
manifest of each object's totals: both sides are checked against it.

Issue 17's targets (at 10,000,000 events, on 2 cores): under 60 s, at least 5x pandas, peak under 1 GiB. pandas
on 10M would take ten minutes or more here, so in the full row it reads the first ``PANDAS_OBJECTS`` objects and
its time is extrapolated linearly (said in the row's note). ``--quick`` generates 200,000 events, and
``AIGW_BENCH_LOGPUSH_EVENTS`` any other count (1,000,000 compares two changes in a few minutes; pandas then reads
them all): their figures are not the target's, so ``met`` is n/a. Beside it: the logs API route's budget-bound
time for the same count (50 logs a page, 1,200 requests per 300 s).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bench.analysis import PeakSampler
from bench.common import PYTHON, Row, child_env

FULL_EVENTS = 10_000_000
QUICK_EVENTS = 200_000
PER_OBJECT = 100_000
PANDAS_OBJECTS = 10  # the full row's pandas side reads 1,000,000 events and is extrapolated
#: Another count than --quick's or the full row's (e.g. 1000000 to compare changes in a few minutes); only the
#: full count can meet the target.
EVENTS_VARIABLE = "AIGW_BENCH_LOGPUSH_EVENTS"
GENERATOR_VERSION = 2
PAIRS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"),
         ("anthropic", "claude-3-5-haiku"), ("google-ai-studio", "gemini-2.5-flash")]
DAY = "20251201"
BASE_S = 1_764_547_200  # 2025-12-01T00:00:00Z: the events spread over that day
FOLDER = f"bench/{DAY}"


def _encrypted(rng: np.random.Generator, size: int) -> str:
    b64 = base64.b64encode
    return json.dumps({"type": "encrypted", "key": b64(rng.bytes(512)).decode(), "iv": b64(rng.bytes(12)).decode(),
                       "data": b64(rng.bytes(size)).decode()}, separators=(",", ":"))


def _object(index: int, start: int, count: int, out: BinaryIO) -> dict[str, Any]:
    """Write one gzipped NDJSON object of ``count`` events to ``out``; its totals (what both sides must find)."""
    rng = np.random.default_rng([17, index])
    # One encrypted value per object, reused per line: generating 10M random fields would time the generator.
    meta, request, response = (_encrypted(rng, n).replace("%", "%%").encode() for n in (48, 200, 300))
    pick = rng.integers(0, len(PAIRS), count)
    status = np.where(rng.random(count) < 0.03, 429, np.where(rng.random(count) < 0.02, 500, 200))
    cached = rng.random(count) < 0.1
    cost = rng.gamma(2.0, 0.0004, count)
    duration = rng.gamma(2.0, 150.0, count).astype(np.int64)
    seconds = BASE_S + (start + np.arange(count, dtype=np.int64)) * 86_400 // FULL_EVENTS
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype("S").tolist()
    # The line as json.dumps writes it (fields in the export's order; a float as its repr), formatted as bytes
    # without a dict per line, and deflated a few MB at a time as it is made: formatting str lines, joining
    # and encoding 330 MB of them took three times as long as the formatting and gzip themselves.
    template = (b'{"Cached":%s,"Endpoint":"chat/completions","Gateway":"bench","Metadata":' + meta
                + b',"Metrics":{"cost":%s,"durationMs":%d},"Model":"%s","Provider":"%s","RateLimited":%s,'
                b'"RequestBody":' + request + b',"RequestedModel":"%s","ResponseBody":' + response
                + b',"RoutingDecisionID":"","RoutingReason":"","StatusCode":%d,"Timestamp":"%sZ"}\n')
    flags = (b"false", b"true")
    pairs = [(provider.encode(), model.encode()) for provider, model in PAIRS]
    rows = list(zip(cached.tolist(), [repr(x).encode() for x in cost.tolist()], duration.tolist(), pick.tolist(),
                    status.tolist(), stamps, strict=True))
    deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # a gzip member, as Logpush writes
    for first in range(0, count, 2_000):
        out.write(deflate.compress(b"".join([
            template % (flags[c], x, d, pairs[p][1], pairs[p][0], flags[s == 429], pairs[p][1], s, t)
            for c, x, d, p, s, t in rows[first:first + 2_000]])))
    out.write(deflate.flush())
    return {"requests": count, "cost": float(cost.sum()), "errors": int((status >= 400).sum()),
            "cached": int(cached.sum())}


def _write_object(folder: Path, index: int, start: int, count: int) -> dict[str, Any]:
    partial = folder / f"{index:06d}.log.gz.partial"
    with partial.open("wb") as out:
        totals = _object(index, start, count, out)
    partial.replace(folder / f"{index:06d}.log.gz")
    return totals


def cached_objects(events: int) -> tuple[Path, list[dict[str, Any]], float]:
    """The folder of generated objects for ``events`` (made once, two processes at a time), each object's
    totals, and the seconds generating took now (0 when they were cached)."""
    root = Path(os.environ.get("AIGW_BENCH_CACHE") or Path.home() / ".cache" / "aigw-bench")
    folder = root / f"logpush-{events}-v{GENERATOR_VERSION}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return folder, json.loads(manifest.read_text())["objects"], 0.0
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    starts = list(range(0, events, PER_OBJECT))
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_write_object, folder, n, start, min(PER_OBJECT, events - start))
                   for n, start in enumerate(starts)]
        objects = [future.result() for future in futures]
    manifest.write_text(json.dumps({"events": events, "generator": GENERATOR_VERSION, "objects": objects}))
    return folder, objects, time.perf_counter() - started


def _pandas_tables(url: str, bucket: str, key_id: str, secret: str, objects: int) -> dict[str, Any]:
    import boto3
    import pandas as pd

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
                      aws_secret_access_key=secret)
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="bench/")
            for item in page.get("Contents", [])][:objects]
    frames = []
    for key in keys:
        body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
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
        "objects": len(keys), "requests": len(frame), "cost": float(frame["cost"].sum()),
        "errors": int((frame["StatusCode"] >= 400).sum()), "cached": int(frame["Cached"].sum()),
        "usage": grouped.agg(requests=("StatusCode", "size"), cost=("cost", "sum")),
        "latency": grouped["duration"].quantile([0.5, 0.95, 0.99]).unstack(),
        "status": frame.groupby(["Provider", "StatusCode"], observed=True).size(),
        "cache": grouped["Cached"].agg(["size", "sum"]),
        "over_time": frame.groupby([pd.Grouper(key="ts", freq="1h"), "Provider"], observed=True).size(),
    }


def child(side: str, url: str, bucket: str, key_id: str, secret: str, objects: str) -> dict[str, Any]:
    # Sampled from /proc (getrusage's ru_maxrss would carry the parent's size at fork, bucket included).
    import resource

    with PeakSampler() as peak:
        result = _side(side, url, bucket, key_id, secret, int(objects))
    result["peak_bytes"] = peak.peak
    # CPU seconds beside the wall time: on a machine shared with other work the wall time says how busy it was,
    # the CPU time what the side costs (at best CPU / cores on idle cores).
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def _side(side: str, url: str, bucket: str, key_id: str, secret: str, objects: int) -> dict[str, Any]:
    started = time.perf_counter()
    if side == "ours":
        from datetime import UTC, datetime, timedelta

        from aigw.config import Secret
        from aigw.logpush import BucketSettings
        from aigw.logs_frame import Window
        from aigw.logs_logpush import read_logpush_window

        settings = BucketSettings(bucket=bucket, path="bench/{DATE}", access_key_id=key_id,
                                  secret_access_key=Secret(secret), endpoint_url=url, region=None,
                                  account_id="0" * 32)
        day = datetime.fromtimestamp(BASE_S, UTC)
        read = read_logpush_window(settings, Window(day, day + timedelta(days=1)))
        report = read.report()
        read.close()
        s = report.summary
        result = {"objects": objects, "requests": s.requests, "cost": s.cost, "errors": s.errors, "cached": s.cached,
                  "tables": 7}
    else:
        tables = _pandas_tables(url, bucket, key_id, secret, objects)
        result = {k: tables[k] for k in ("objects", "requests", "cost", "errors", "cached")}
    result["seconds"] = time.perf_counter() - started
    return result


def _matches(side: dict[str, Any], truth: list[dict[str, Any]]) -> bool:
    expected = truth[: side["objects"]]
    cost = sum(o["cost"] for o in expected)
    return (all(side[k] == sum(o[k] for o in expected) for k in ("requests", "errors", "cached"))
            and abs(side["cost"] - cost) <= 1e-9 * max(1.0, abs(cost)))


def run(quick: bool) -> Row:
    from cftwin.logpush.bucket import LocalBucket

    events = int(os.environ.get(EVENTS_VARIABLE) or (QUICK_EVENTS if quick else FULL_EVENTS))
    folder, truth, generated_s = cached_objects(events)
    pandas_objects = min(PANDAS_OBJECTS, len(truth)) if events > PANDAS_OBJECTS * PER_OBJECT else len(truth)
    with LocalBucket("bench-logpush") as local:
        s3 = local.client()
        for n in range(len(truth)):
            s3.put_object(Bucket=local.bucket, Key=f"{FOLDER}/{n:06d}.log.gz",
                          Body=(folder / f"{n:06d}.log.gz").read_bytes())
        sides = {}
        for side, objects in (("ours", len(truth)), ("pandas", pandas_objects)):
            done = subprocess.run([PYTHON, "-m", "bench.logpush_export", side, local.url, local.bucket,
                                   local.access_key_id, local.secret_access_key, str(objects)],
                                  capture_output=True, text=True, env=child_env(), check=True, timeout=3600)
            sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, pandas = sides["ours"], sides["pandas"]
    same = _matches(ours, truth) and _matches(pandas, truth)
    scale = len(truth) / pandas["objects"]
    pandas_s = pandas["seconds"] * scale
    ratio = pandas_s / ours["seconds"]
    api_s = events / 50 / (1200 / 300)  # pages of 50 within 1,200 requests per 300 s
    met = ((ours["seconds"] < 60 and ratio >= 5 and ours["peak_bytes"] < 2**30 and same) if events == FULL_EVENTS
           else None)
    reference = f"pandas {pandas_s:.1f} s, peak {pandas['peak_bytes'] / 2**20:.0f} MiB"
    notes = [f"totals equal the generator's on both sides: {'yes' if same else 'NO'} ({ours['requests']:,} "
             "requests)",
             f"the logs API route for the same count, bound by the budget: {api_s:,.0f} s ({api_s / 3600:.1f} h)",
             f"CPU: ours {ours['cpu_s']:.1f} s ({ours['cpu_s'] / ours['seconds']:.2f} cores busy on average), "
             f"pandas {pandas['cpu_s']:.1f} s for its {pandas['requests']:,} events; load average "
             f"{os.getloadavg()[0]:.1f} at the end (2 cores, shared)",
             "generated objects: " + (f"made now in {generated_s:.0f} s" if generated_s else "from the cache")
             + f" ({folder})"]
    if scale != 1:
        reference = f"pandas ~{pandas_s:.0f} s (extrapolated), peak {pandas['peak_bytes'] / 2**20:.0f} MiB"
        notes.append(f"pandas read {pandas['requests']:,} events ({pandas['objects']} objects) in "
                     f"{pandas['seconds']:.1f} s, extrapolated linearly x{scale:.0f}: on all {events:,} it would take "
                     "ten minutes or more")
    return Row(
        name="logpush_export",
        what=f"04's tables (source='logpush') from {events:,} exported events ({len(truth)} gzipped NDJSON objects "
             "over S3): DuckDB (its read_json, into Parquet) vs pandas",
        figure=f"{ours['seconds']:.1f} s, peak {ours['peak_bytes'] / 2**20:.0f} MiB",
        reference=reference,
        ratio=ratio,
        target=">= 5x pandas, < 60 s, < 1 GiB at 10M",
        met=met,
        notes=notes,
        data={"ours": ours, "pandas": pandas, "events": events, "pandas_extrapolated_s": pandas_s,
              "api_budget_s": api_s},
    )


if __name__ == "__main__":
    print(json.dumps(child(*sys.argv[1:7])))
