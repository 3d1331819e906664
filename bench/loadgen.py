"""A load generator in its own process: ``python -m bench.loadgen`` reads a JSON spec on stdin
(``url``, ``headers``, ``body``, ``requests``, ``warmup``, ``concurrency``, ``time_limit_s``; headers
may hold a token, so they never go on the command line) and prints one JSON line: answers by status,
seconds, requests per second. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    host = urlsplit(spec["url"]).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        raise SystemExit(f"loadgen: {host!r} is not loopback")
    body = json.dumps(spec["body"]).encode()
    headers = {"content-type": "application/json", **spec.get("headers", {})}
    concurrency = int(spec.get("concurrency", 16))
    statuses: dict[int, int] = {}
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:

        async def worker(todo: list[int], deadline: float, count: bool) -> None:
            while todo and time.monotonic() < deadline:
                todo.pop()
                answer = await client.post(spec["url"], content=body, headers=headers)
                await answer.aread()
                if count:
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        warm = list(range(int(spec.get("warmup", 0))))
        await asyncio.gather(*(worker(warm, time.monotonic() + 30, False) for _ in range(concurrency)))
        todo = list(range(int(spec["requests"])))
        started = time.monotonic()
        deadline = started + float(spec.get("time_limit_s", 60))
        await asyncio.gather(*(worker(todo, deadline, True) for _ in range(concurrency)))
        took = time.monotonic() - started
    done = sum(statuses.values())
    return {"statuses": statuses, "requests": done, "seconds": took, "rps": done / took if took else 0.0}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_load(json.loads(sys.stdin.read())))))
