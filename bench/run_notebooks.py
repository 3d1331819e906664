"""Row ``run_notebooks``: ``aigw run --target twin``, the README's main command: the notebooks it runs by
default (the lifecycle, 01 to 05), evidence sealed and HTML written.

Reference, in the same run and environment: the papermill command line on an empty notebook, once per
notebook the run executes (each is a whole process: imports, a kernel, a notebook written). The
reference runs are split around the ``aigw run`` so that both sides see the same machine load.
``--quick`` runs notebook 01 only, against one empty papermill run.

The figure is the run against five times the median empty run: one empty run of the five often takes twice as
long as the others beside a run (papermill's kernel outlives its shutdown wait), and would flatter the ratio; the
plain sum stays in the notes. The notes also give the same run with the twin's emulated delays off
(``bench.undelayed_run``): what of the run is the runbook's own work, and what is waiting the twin emulates for
Cloudflare (02's pending secret, the logs 03 and 04 read).

Where the time goes inside 03 and 04: each code cell's duration from the executed notebook's papermill
metadata (``metadata.papermill.duration``), the slowest cells named by their first line.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from aigw.plan import select_notebooks

from bench.common import PYTHON, ROOT, Row, child_env, median, timed

PAPERMILL = str(Path(PYTHON).with_name("papermill"))
#: Issue 17's target: ``aigw run`` of 01-05 in at most 0.40 of five empty papermill runs (issue 8's was 1.0).
TARGET = 0.40


def _empty_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _papermill_once(folder: Path, i: int) -> float:
    cmd = [PAPERMILL, str(folder / "empty.ipynb"), str(folder / f"empty-out-{i}.ipynb")]
    _, took = timed(lambda: subprocess.run(cmd, env=child_env(), cwd=folder, check=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return took


#: The notebooks whose cells the notes break down: every one the run executes (03 and 04 wait for the
#: gateway and its logs; the others show what a notebook costs outside its cells).
PROFILED: tuple[str, ...] = ("01_", "02_", "03_", "04_", "05_")


def cell_profile(notebook: Path, top: int = 5) -> str:
    """``03_verify_endpoints: verify_rest 2.1 s, ...; 12 other cells 0.6 s`` from papermill's cell durations."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    timed: list[tuple[float, str]] = []
    for index, cell in enumerate(cells, start=1):
        duration = cell.metadata.get("papermill", {}).get("duration")
        if isinstance(duration, int | float):
            first = next((line.strip() for line in cell.source.splitlines() if line.strip()
                          and not line.lstrip().startswith("#")), "")
            # "rest = verify_endpoints.verify_rest(session, ...)" -> "verify_rest"; a cell without a call by number
            call = first.split("=", 1)[-1].strip().split("(", 1)[0].rsplit(".", 1)[-1] if "(" in first else ""
            timed.append((float(duration), call if call.isidentifier() else f"cell {index}"))
    timed.sort(reverse=True)
    shown = ", ".join(f"{name} {took:.2f} s" for took, name in timed[:top])
    rest = timed[top:]
    tail = f"; {len(rest)} other cells {sum(t for t, _ in rest):.2f} s" if rest else ""
    # Papermill's whole-notebook duration minus its cells': the kernel's start-up wait and the notebook writes.
    whole = nb.metadata.get("papermill", {}).get("duration")
    outside = (f"; outside cells {float(whole) - sum(t for t, _ in timed):.2f} s of {float(whole):.2f} s"
               if isinstance(whole, int | float) else "")
    return f"{notebook.stem} cells: {shown}{tail}{outside}"


def _stamp(text: object) -> float | None:
    """A papermill ``start_time``/``end_time`` (ISO 8601, UTC) as a Unix time; None when absent."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def run_edges(run_dir: Path, launched: float, ended: float) -> str:
    """How long the run took before its first cell and after its last: from the executed notebooks' papermill
    stamps and the process's launch and exit (Unix times, this machine's clock)."""
    cells = []
    for notebook in sorted(run_dir.glob("*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            stamps = cell.metadata.get("papermill", {})
            start, end = _stamp(stamps.get("start_time")), _stamp(stamps.get("end_time"))
            if cell.cell_type == "code" and start is not None and end is not None:
                cells.append((start, end))
    if not cells:
        return "no cell times in the executed notebooks"
    first, last = min(s for s, _ in cells), max(e for _, e in cells)
    return (f"start to the first cell {first - launched:.2f} s (process, plan, twin, first kernel); after the last "
            f"cell {ended - last:.2f} s (last export, seal, exit)")


def run(quick: bool) -> Row:
    notebooks = select_notebooks(ROOT / "notebooks", None, "twin")
    if quick:
        notebooks = notebooks[:1]
    count = len(notebooks)
    with tempfile.TemporaryDirectory(prefix="aigw-bench-run-") as tmp:
        folder = Path(tmp)
        _empty_notebook(folder / "empty.ipynb")
        reference = [_papermill_once(folder, i) for i in range(count // 2)]
        run_dir = folder / "run"
        args = ["run", "--target", "twin", *(["--notebooks", notebooks[0].name[:2]] if quick else [])]
        cmd = [PYTHON, "-m", "aigw", *args, "--out", str(run_dir)]
        launched = time.time()
        done, took = timed(lambda: subprocess.run(cmd, env=child_env(), cwd=ROOT, capture_output=True,
                                                  text=True))
        edges = run_edges(run_dir, launched, time.time())
        undelayed_cmd = [PYTHON, "-m", "bench.undelayed_run", *args, "--out", str(folder / "undelayed")]
        undelayed, undelayed_took = timed(lambda: subprocess.run(undelayed_cmd, env=child_env(), cwd=ROOT,
                                                                 capture_output=True, text=True))
        reference += [_papermill_once(folder, i) for i in range(count // 2, count)]
        notes: list[str] = []
        if done.returncode != 0:
            notes.append(f"aigw run exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
        html = sorted(p.name for p in run_dir.glob("*.html"))
        manifest = run_dir / "manifest.json"
        sealed = manifest.is_file() and "evidence.json" in json.loads(manifest.read_text())["files"]
        if len(html) != count or not sealed:
            notes.append(f"bundle incomplete: {len(html)} HTML of {count}, sealed={sealed}")
        per_notebook = [line.split("aigw: ", 1)[1] for line in done.stderr.splitlines()
                        if "done in" in line or "FAILED" in line]
        profiles = [cell_profile(nb) for nb in sorted(run_dir.glob("*.ipynb")) if nb.name.startswith(PROFILED)]
    total_ref = sum(reference)
    # One of the five often takes twice as long as the others beside a run (never in a loop of them alone):
    # five times the median run is the reference without that outlier.
    steady = count * median(reference)
    ratio = took / steady
    failed = len(notes)
    notes.append("per notebook: " + "; ".join(per_notebook) + f"; {edges}")
    notes.append("empty papermill runs: " + ", ".join(f"{t:.1f} s" for t in reference)
                 + f"; against their sum ({total_ref:.1f} s) the ratio is {took / total_ref:.2f}")
    # The same exit as the run (3, incomplete, for --quick's 01 alone), or its time says nothing.
    undelayed_note = (f"exited {undelayed.returncode} (the run {done.returncode}): not compared"
                      if undelayed.returncode != done.returncode else
                      f"{undelayed_took:.1f} s, ratio {undelayed_took / steady:.2f}; the delays (cftwin.timing) "
                      f"hold the run {took - undelayed_took:.1f} s")
    notes.append(f"the same run with the twin's emulated delays off (bench.undelayed_run): {undelayed_note}")
    notes.extend(profiles)
    return Row(
        "run_notebooks", f"aigw run --target twin, {count} notebook(s), bundle sealed with HTML",
        f"{took:.1f} s", f"{count} x median empty papermill CLI = {steady:.1f} s", ratio, f"<= {TARGET:.2f}x",
        ratio <= TARGET and done.returncode == 0 and failed == 0, notes,
        {"run_s": took, "reference_s": reference, "undelayed_s": undelayed_took},
    )
