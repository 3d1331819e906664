"""Row ``logs_fetch``: 20,000 logs from the twin (in its own process) into a DataFrame.

Figure: the runbook's path, ``CloudflareClient.fetch_logs`` (concurrent pages parsed straight into
columns) then ``logs_frame.build_frame``. Reference, in the same run against the same twin: the
official ``cloudflare`` SDK's auto-pagination (``ai_gateway.logs.list``) into ``pd.DataFrame``.
Both read 50 logs a page (Cloudflare's maximum); the runs alternate, the medians are compared.
"""

from __future__ import annotations

from typing import Any

import cloudflare
import pandas as pd
from aigw.logs_frame import build_frame

from bench.common import GATEWAY_ID, BenchTwin, Row, median, timed

PER_PAGE = 50


def _ours(twin: BenchTwin) -> pd.DataFrame:
    with twin.client() as cf:
        columns = cf.fetch_logs(GATEWAY_ID, per_page=PER_PAGE)
    return build_frame(columns)


def _sdk(twin: BenchTwin) -> pd.DataFrame:
    with cloudflare.Cloudflare(api_token=twin.api_token.reveal(), base_url=twin.api_base_url,
                               max_retries=0) as sdk:
        logs = sdk.ai_gateway.logs.list(GATEWAY_ID, account_id=twin.account_id, per_page=PER_PAGE)
        return pd.DataFrame([log.model_dump() for log in logs])


def run(quick: bool) -> Row:
    count = 2_000 if quick else 20_000
    repeats = 1 if quick else 3
    # No API budget in the way: this row measures reading speed (row rate_budget measures the budget).
    with BenchTwin({"api_budget_requests": 1_000_000}) as twin:
        twin.provision()
        twin.seed_logs(count)
        ours: list[float] = []
        sdk: list[float] = []
        rows: dict[str, Any] = {}
        for _ in range(repeats):
            frame, took = timed(lambda: _ours(twin))
            ours.append(took)
            rows["ours"] = len(frame)
            reference, took = timed(lambda: _sdk(twin))
            sdk.append(took)
            rows["sdk"] = len(reference)
    mine, theirs = median(ours), median(sdk)
    ratio = theirs / mine
    notes = [] if rows["ours"] == rows["sdk"] == count else [f"row counts differ: {rows} (expected {count})"]
    return Row(
        "logs_fetch", f"fetch {count:,} logs into a DataFrame (twin in a subprocess)",
        f"{mine:.2f} s", f"SDK auto-pagination {theirs:.2f} s", ratio, ">= 3x faster", ratio >= 3.0 and not notes,
        notes, {"ours_s": ours, "sdk_s": sdk, "rows": rows},
    )
