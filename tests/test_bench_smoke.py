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


def test_run_edges_reads_the_first_and_last_cell_stamps(tmp_path: Path) -> None:
    import nbformat

    from bench.run_notebooks import run_edges

    for name, (start, end) in {"01_a.ipynb": ("2026-12-06T10:00:01.000000Z", "2026-12-06T10:00:02.000000Z"),
                               "02_b.ipynb": ("2026-12-06T10:00:03.000000Z", "2026-12-06T10:00:04.500000Z")}.items():
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("1")
        cell.metadata["papermill"] = {"start_time": start, "end_time": end}
        nb.cells = [nbformat.v4.new_markdown_cell("text"), cell]
        nbformat.write(nb, tmp_path / name)
    launched = 1796551200.0  # 2026-12-06T10:00:00Z
    text = run_edges(tmp_path, launched, launched + 5.0)
    assert text.startswith("start to the first cell 1.00 s")
    assert "after the last cell 0.50 s" in text
    assert run_edges(tmp_path / "none", 0.0, 1.0) == "no cell times in the executed notebooks"
