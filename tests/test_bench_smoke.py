"""The benchmark command runs (``--quick``, two cheap rows) and prints its table. No figure is asserted:
benchmarks measure, tests do not time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "logs_fetch,throughput"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| bench ") and "ratio" in lines[0]
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"bench", "logs_fetch", "throughput"}
    for name in ("logs_fetch", "throughput"):
        cells = [c.strip() for c in rows[name].strip("|").split("|")]
        assert float(cells[3]) > 0  # a ratio was measured
        assert cells[5] in {"yes", "NO"}


def test_undelayed_run_turns_the_twins_delays_off(tmp_path: Path) -> None:
    """``bench.undelayed_run``'s twin has no pending second: 02 finds each new secret active at its first read
    (with the delays on it reports the reads it took: tests/runbook cover that side)."""
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "bench.undelayed_run", "run", "--target", "twin", "--notebooks", "01,02",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 3, done.stderr[-2000:]  # incomplete: 03 and 04 did not run
    text = (out / "02_provider_keys.ipynb").read_text()
    assert text.count("key stored and active") >= 3
    assert "reads of the store" not in text
