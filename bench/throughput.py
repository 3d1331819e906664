"""Row ``throughput``: server CPU per request of the twin's compat endpoint with logging on, against a bare
Starlette JSON endpoint, each loaded from a separate process (issue 17 item 5: at most 1.5 times the bare cost).

The twin (``aigw twin serve``, its own process) has a gateway with ``collect_logs`` on and a BYOK key per
provider in Secrets Store (made through the v4 API), provider latency 0. The load generator
(``bench.loadgen``, httpx2 asyncio, its own process) posts OpenAI-format chat completions to
``/v1/{account}/{gateway}/compat/chat/completions`` with ``cf-aig-authorization`` and no provider key.
Reference, in the same run: a bare Starlette JSON endpoint on the same uvicorn settings
(``bench.bare_app``), loaded the same way.

The load generator, not the server, limits both request rates, so the figure is the server's CPU per request
(``/proc``, warm-up included), not its rate. Runs go in pairs, one twin run and one bare run back to back, the
side that goes first alternating; the ratio is the median of the pairs' ratios, so that a change of the
machine's load between pairs (it is shared) moves both sides of a pair alike. The rates stay in the notes.
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
    requests, pairs, concurrency = (500, 1, 16) if quick else (2500, 5, 16)
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
            for pair in range(pairs):
                for side in (("twin", "bare") if pair % 2 == 0 else ("bare", "twin")):
                    if side == "twin":
                        twin_runs.append(_load(twin_url, twin_headers, requests, concurrency, twin.pid))
                    else:
                        bare_runs.append(_load(f"{bare}/chat/completions", {}, requests, concurrency, bare_pid))
    cpu_ratios = [t["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"]
                  for t, b in zip(twin_runs, bare_runs, strict=True)]
    ratio = median(cpu_ratios)
    twin_cpu = median([r["server_cpu_ms_per_request"] for r in twin_runs])
    bare_cpu = median([r["server_cpu_ms_per_request"] for r in bare_runs])
    bad = [r["statuses"] for r in twin_runs + bare_runs if set(r["statuses"]) != {"200"}]
    notes = [
        f"{requests} requests per run after 100 warm-up, concurrency {concurrency}, {pairs} pair(s) of runs",
        "server CPU per request (ms), twin / bare per pair: " + ", ".join(
            f"{t['server_cpu_ms_per_request']:.2f} / {b['server_cpu_ms_per_request']:.2f}"
            for t, b in zip(twin_runs, bare_runs, strict=True)),
        "rates (req/s; the load generator, not the server, limits them): twin "
        + ", ".join(f"{r['rps']:.0f}" for r in twin_runs) + "; bare " + ", ".join(f"{r['rps']:.0f}" for r in bare_runs),
    ]
    if bad:
        notes.append(f"non-200 answers: {bad}")
    return Row(
        "throughput", "server CPU per request: twin compat/chat/completions, logging on, BYOK, loaded from another "
        "process, against a bare Starlette JSON endpoint",
        f"{twin_cpu:.2f} ms CPU/req", f"bare Starlette JSON {bare_cpu:.2f} ms", ratio, "<= 1.5x bare CPU",
        ratio <= 1.5 and not bad, notes, {"twin": twin_runs, "bare": bare_runs, "cpu_ratios": cpu_ratios},
    )
