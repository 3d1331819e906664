"""Row ``throughput``: the twin's compat endpoint with logging on, under load from a separate process.

The twin (``aigw twin serve``, its own process) has a gateway with ``collect_logs`` on and a BYOK key per
provider in Secrets Store (made through the v4 API), provider latency 0. The load generator
(``bench.loadgen``, httpx2 asyncio, its own process) posts OpenAI-format chat completions to
``/v1/{account}/{gateway}/compat/chat/completions`` with ``cf-aig-authorization`` and no provider key.
Reference, in the same run: a bare Starlette JSON endpoint on the same uvicorn settings
(``bench.bare_app``), loaded the same way. Runs alternate; medians are compared.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aigw.twin_urls import TwinUrls

from bench.common import GATEWAY_ID, PYTHON, BenchTwin, Row, child_env, cpu_seconds, median, served

BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 8}


def _load(url: str, headers: dict[str, str], requests: int, concurrency: int, server_pid: int) -> dict[str, Any]:
    spec = {"url": url, "headers": headers, "body": BODY, "requests": requests, "warmup": 100,
            "concurrency": concurrency, "time_limit_s": 60}
    cpu_before = cpu_seconds(server_pid)
    done = subprocess.run([PYTHON, "-m", "bench.loadgen"], input=json.dumps(spec), env=child_env(),
                          capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # Warm-up included: what the server spent per request answered (the client is the bottleneck here).
    result["server_cpu_ms_per_request"] = 1000 * (cpu_seconds(server_pid) - cpu_before) / (requests + 100)
    return result


def run(quick: bool) -> Row:
    requests, repeats, concurrency = (500, 1, 16) if quick else (3000, 3, 16)
    options = {"provider_latency_ms": {"openai": 0, "anthropic": 0, "google-ai-studio": 0},
               "provider_jitter_ms": 0, "gateway_overhead_ms": 0}
    twin_runs: list[dict[str, Any]] = []
    bare_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aigw-bench-bare-") as tmp, BenchTwin(options) as twin:
        twin.provision(collect_logs=True)
        twin_url = f"{TwinUrls.at(twin.url).gateway}/{twin.account_id}/{GATEWAY_ID}/compat/chat/completions"
        twin_headers = {"cf-aig-authorization": f"Bearer {twin.aig_token.reveal()}"}
        ready = Path(tmp) / "ready"
        with served([PYTHON, "-m", "bench.bare_app", str(ready)], ready) as (bare, bare_pid):
            for _ in range(repeats):
                twin_runs.append(_load(twin_url, twin_headers, requests, concurrency, twin.pid))
                bare_runs.append(_load(f"{bare}/chat/completions", {}, requests, concurrency, bare_pid))
    twin_rps = median([r["rps"] for r in twin_runs])
    bare_rps = median([r["rps"] for r in bare_runs])
    ratio = twin_rps / bare_rps
    bad = [r["statuses"] for r in twin_runs + bare_runs if set(r["statuses"]) != {"200"}]
    twin_each = ", ".join(f"{r['rps']:.0f}" for r in twin_runs)
    bare_each = ", ".join(f"{r['rps']:.0f}" for r in bare_runs)
    notes = [f"{requests} requests per run after 100 warm-up, concurrency {concurrency}, {repeats} run(s) each; "
             f"twin {twin_each} req/s, bare {bare_each} req/s"]
    twin_cpu = median([r["server_cpu_ms_per_request"] for r in twin_runs])
    bare_cpu = median([r["server_cpu_ms_per_request"] for r in bare_runs])
    notes.append(f"server CPU per request: twin {twin_cpu:.2f} ms, bare {bare_cpu:.2f} ms (capacity ratio "
                 f"{bare_cpu / twin_cpu:.2f}: the load generator, not the server, limits both rates here)")
    if bad:
        notes.append(f"non-200 answers: {bad}")
    return Row(
        "throughput", "twin compat/chat/completions, logging on, BYOK, loaded from another process",
        f"{twin_rps:.0f} req/s", f"bare Starlette JSON {bare_rps:.0f} req/s", ratio, ">= 0.5x the bare rate",
        ratio >= 0.5 and not bad, notes, {"twin": twin_runs, "bare": bare_runs},
    )
