"""Row ``overhead``: notebook 03's overhead estimate against a known truth.

The twin (its own process) adds ``gateway_overhead_ms`` = 120 to every gateway request; the emulated
provider answers in 80 ms +/- 10 ms (uniform, independent per request), so the pairing has noise to
cancel. The estimate is ``GatewayProber.measure_overhead`` as notebook 03 calls it (10 interleaved pairs
after 2 warm-up pairs; ``--quick``: 5): the median of (through the gateway - straight to the provider).
Error = |estimate - 120|; the worst of 3 runs counts. The notes add a noisier provider (+/- 30 ms) at 10
and 20 pairs, to show how the estimate's spread depends on the provider's jitter and the pair count.
"""

from __future__ import annotations

from aigw.config import Secret
from aigw.gateway import GatewayProber
from aigw.twin_urls import TwinUrls

from bench.common import GATEWAY_ID, BenchTwin, Row

TRUTH_MS = 120.0
LATENCY_MS = 80.0


def _estimate(twin: BenchTwin, pairs: int) -> float:
    keys = {p: Secret(k, p) for p, k in twin.seed.provider_keys.items()}
    urls = TwinUrls.at(twin.url)
    with GatewayProber(gateway_base_url=urls.gateway, account_id=twin.account_id, gateway_id=GATEWAY_ID,
                       gateway_token=twin.aig_token, provider_keys=keys,
                       provider_base_url=urls.providers) as prober:
        result = prober.measure_overhead("openai", "gpt-4o-mini", n=pairs, max_tokens=8, warmup=2, prompt="ping")
    return result.median_ms


def run(quick: bool) -> Row:
    pairs = 5 if quick else 10
    repeats = 1 if quick else 3
    options = {"gateway_overhead_ms": TRUTH_MS, "provider_latency_ms": {"openai": LATENCY_MS},
               "provider_jitter_ms": 10}
    notes: list[str] = []
    with BenchTwin(options) as twin:
        twin.provision()
        estimates = [_estimate(twin, pairs) for _ in range(repeats)]
        if not quick:
            twin.configure({"provider_jitter_ms": 30})
            noisy = {n: _estimate(twin, n) for n in (10, 20)}
            notes.append("provider +/- 30 ms: " + ", ".join(f"{n} pairs -> {e:.1f} ms" for n, e in noisy.items()))
    worst = max(abs(e - TRUTH_MS) for e in estimates)
    notes.insert(0, f"worst error {worst:.1f} ms (a gateway hop on the twin itself costs ~1-2 ms on top of the 120)")
    return Row(
        "overhead", f"03's overhead estimate ({pairs} pairs, provider {LATENCY_MS:g} +/- 10 ms), {repeats} run(s)",
        "estimates " + ", ".join(f"{e:.1f}" for e in estimates) + " ms", f"truth {TRUTH_MS:g} ms",
        None, "within 10 ms", worst <= 10.0, notes, {"estimates_ms": estimates},
    )
