"""The Ctrl-C / SIGTERM drill: ``aigw run`` stopped at varied moments is sealed every time, and says
it was sealed only when the folder verifies.

The trial's finding: Ctrl-C sealed 6 runs of 10 while printing "what ran is sealed as failed" every
time (the KeyboardInterrupt landed in ``kernel.shutdown()`` in a ``finally``); SIGTERM sealed none.

Each run is a real ``aigw run --target twin --notebooks 01,02`` subprocess; the signal is sent when a
chosen progress line appears on its stderr (a cell starting, or a notebook done), so the moments differ
from run to run without timing anything. ``AIGW_SIGNAL_DRILL_RUNS`` (default 3) sets the runs per
signal (10 gives the 20-run drill of docs/RELIABILITY.md); ``AIGW_SIGNAL_DRILL_REPORT=FILE`` writes the
counts as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import pytest
from aigw.run_folder import sealed_status
from cftwin.seed import generated_seed
from reliability_support import clean_env, last_line, write_env_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("01_create_gateway", "02_provider_keys")
RUNS = int(os.environ.get("AIGW_SIGNAL_DRILL_RUNS", "3"))


def _code_cells() -> int:
    return sum(sum(1 for c in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells  # type: ignore[no-untyped-call]
                   if c.cell_type == "code") for name in NOTEBOOKS)


def _moments(runs: int, shift: float = 0.0) -> list[str]:
    """Where each run is stopped: once right after 01 is done (between notebooks), the others at the
    k-th cell line, spread evenly over both notebooks (``shift``, a fraction of a step, moves them so
    that SIGINT and SIGTERM land at different cells). Never at the last two cells, which may finish
    before the signal lands (the run would then be complete, not stopped)."""
    last = _code_cells() - 2
    spread = max(1, runs - 2)
    cells = [1 + round((i + shift) * (last - 1) / spread) for i in range(runs - 1)]
    return ["between-notebooks", *(f"cell-{min(last, k)}" for k in cells)][:runs]


@dataclass(frozen=True)
class DrillRun:
    signal: str
    moment: str
    exit_code: int
    sealed_status: str | None
    claimed_sealed: bool
    last_line: str
    traceback: bool


def _drill_once(tmp_path: Path, env_file: Path, signum: int, moment: str, n: int) -> DrillRun:
    out = tmp_path / f"run-{signal.Signals(signum).name}-{n}"
    process = subprocess.Popen(
        # -v: the per-cell lines the drill times its signals by.
        [sys.executable, "-m", "aigw", "run", "-v", "--target", "twin", "--env-file", str(env_file), "--notebooks",
         ",".join(NOTEBOOKS), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path)
    assert process.stderr is not None and process.stdout is not None
    seen: list[str] = []
    cells_started = 0
    sent = False
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith("aigw:   ") and " cell " in line:
                cells_started += 1
            hit = (moment == "between-notebooks" and line.startswith(f"aigw: {NOTEBOOKS[0]}: done in")) or (
                moment == f"cell-{cells_started}" and line.startswith("aigw:   ") and " cell " in line)
            if hit:
                process.send_signal(signum)
                sent = True
                break
        drain = threading.Thread(target=lambda: seen.extend(process.stderr or []), daemon=True)
        drain.start()
        process.wait(timeout=180)
        drain.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert sent, f"moment {moment} never came: {''.join(seen)[-2000:]}"
    stderr = "".join(seen)
    return DrillRun(signal=signal.Signals(signum).name, moment=moment, exit_code=process.returncode,
                    sealed_status=sealed_status(out) if out.exists() else None,
                    claimed_sealed=f"stopped: what ran is sealed as failed in {out} " in stderr,
                    last_line=last_line(stderr), traceback="Traceback" in stderr)


def test_sigint_and_sigterm_at_varied_moments_seal_every_run(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "twin.env", generated_seed())
    runs = [_drill_once(tmp_path, env_file, signum, moment, n)
            for signum, shift in ((signal.SIGINT, 0.0), (signal.SIGTERM, 0.5))
            for n, moment in enumerate(_moments(RUNS, shift))]
    report = {"runs": len(runs), "sealed": sum(r.sealed_status is not None for r in runs),
              "claimed_and_sealed": sum(r.claimed_sealed and r.sealed_status is not None for r in runs),
              "detail": [asdict(r) for r in runs]}
    if os.environ.get("AIGW_SIGNAL_DRILL_REPORT"):
        Path(os.environ["AIGW_SIGNAL_DRILL_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    for run in runs:
        expected_last = "aigw: interrupted" if run.signal == "SIGINT" else "aigw: stopped by SIGTERM"
        assert run.exit_code == 128 + signal.Signals[run.signal].value, run
        assert run.last_line == expected_last, run
        assert not run.traceback, run
        # Sealed (it verifies against its manifest), failed (not every notebook finished), and said so.
        assert run.sealed_status == "failed" and run.claimed_sealed, run
    assert report["sealed"] == len(runs) == 2 * RUNS


def test_a_stop_before_the_run_folder_exists_claims_no_seal(tmp_path: Path) -> None:
    """A stopped run prints "sealed" only when the folder verifies: with no folder, it says so."""
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "aigw", "run", "--target", "twin", "--notebooks", "01", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path)
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("aigw: target twin;"):  # the first line, before the twin or the folder
            process.send_signal(signal.SIGTERM)
            break
    seen.extend(process.stderr)
    process.wait(timeout=120)
    stderr = "".join(seen)
    # The runner handles the signal from its first line on (exit 143, its own last line, no traceback).
    assert process.returncode == 143, stderr
    assert last_line(stderr) == "aigw: stopped by SIGTERM" and "Traceback" not in stderr, stderr
    if out.exists():  # only on a very slow machine: the folder was made before the signal came
        assert sealed_status(out) == "failed" and f"stopped: what ran is sealed as failed in {out} " in stderr
    else:
        assert "sealed as" not in stderr, stderr
        assert "stopped before the run folder was made: nothing ran, nothing to seal" in stderr, stderr


class _Kernel:
    """Stands in for the running notebook's kernel: records what it is sent (unit test of the handler)."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.killed = threading.Event()

    def send_signal(self, signum: int) -> bool:
        self.sent.append(signum)
        if signum == signal.SIGKILL:
            self.killed.set()
        return True


@pytest.mark.parametrize("how", ["grace", "second-signal"])
def test_a_kernel_that_does_not_stop_is_killed(how: str) -> None:
    from aigw.stop_signals import StopSignals

    kernel = _Kernel()
    previous = signal.getsignal(signal.SIGTERM)
    with StopSignals(grace_s=0.2 if how == "grace" else 600) as stop:
        stop.kernel = kernel
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (the main) thread, never raised
        if how == "second-signal":
            os.kill(os.getpid(), signal.SIGINT)
        assert kernel.killed.wait(60)
        assert stop.signum == signal.SIGTERM  # the first signal is the one reported
    assert kernel.sent == [signal.SIGINT, signal.SIGKILL]
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored
