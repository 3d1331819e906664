"""Row ``rate_budget``: reading logs under Cloudflare's API budget, scaled down in time.

The twin enforces ``B`` requests per ``W`` seconds per token (Cloudflare: 1,200 per 300 s; here 120 per
30 s, or 20 per 4 s with ``--quick``); the client gets the same budget (``RequestBudget(B, W)``: no
header tells a client the window). It reads ``kB - 1`` pages (k = 3, or 2 with ``--quick``), which
with the closing empty page are exactly ``kB`` requests: the least time that can take is ``k - 1`` windows.

Budget used = requests / what a sliding window allows in the elapsed time ``T`` (first request sent to
last request sent), ``B * (1 + floor(T / W))``. Any 429 the twin answers is counted at the transport.
"""

from __future__ import annotations

import math
import threading
import time

import httpx
from aigw.cloudflare import CloudflareClient, RequestBudget
from aigw.config import Secret

from bench.common import GATEWAY_ID, BenchTwin, Row

PER_PAGE = 50


class CountingTransport(httpx.HTTPTransport):
    """Real HTTP; counts requests and 429 answers and notes when each request was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []
        self.statuses: dict[int, int] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(time.monotonic())
        response = super().handle_request(request)
        with self._lock:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response


def run(quick: bool) -> Row:
    budget, window, windows = (20, 4.0, 2) if quick else (120, 30.0, 3)
    pages = windows * budget - 1
    with BenchTwin() as twin:
        twin.provision()
        twin.seed_logs(pages * PER_PAGE)
        # A fresh read-only token: the provisioning requests above are not in its window.
        with httpx.Client(base_url=twin.process.admin_url, headers=twin.process.admin_headers, timeout=60) as admin:
            answer = admin.post("/tokens", json={"account_id": twin.account_id, "permissions": ["ai_gateway:read"]})
            answer.raise_for_status()
            token = Secret(answer.json()["value"], "CLOUDFLARE_API_TOKEN")
        twin.configure({"api_budget_requests": budget, "api_budget_window_s": window})
        transport = CountingTransport()
        with CloudflareClient(base_url=twin.api_base_url, api_token=token, account_id=twin.account_id,
                              budget=RequestBudget(budget, window), transport=transport,
                              deadline=10 * window) as cf:
            columns = cf.fetch_logs(GATEWAY_ID, per_page=PER_PAGE)
            retries = cf.stats.snapshot()
    requests = len(transport.sent)
    elapsed = transport.sent[-1] - transport.sent[0]
    allowed = budget * (1 + math.floor(elapsed / window))
    used = requests / allowed
    too_many = transport.statuses.get(429, 0)
    notes = [f"{requests} requests in {elapsed:.1f} s (window {window:g} s, budget {budget}); "
             f"{columns.rows:,} logs; statuses {dict(sorted(transport.statuses.items()))}"]
    if columns.rows != pages * PER_PAGE:
        notes.append(f"read {columns.rows} logs, expected {pages * PER_PAGE}")
    return Row(
        "rate_budget", f"read logs under a {budget} per {window:g} s budget enforced by the twin",
        f"{used:.0%} used, {too_many} x 429", f"budget {budget}/{window:g} s", used,
        ">= 90% used, no 429", used >= 0.9 and too_many == 0 and columns.rows == pages * PER_PAGE, notes,
        {"sent": transport.sent, "statuses": transport.statuses, "stats": retries},
    )
