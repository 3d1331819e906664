"""Executing one notebook with papermill: the engine (progress per cell, stop between cells), the kernel
prepared ahead, and what a failed notebook reports (``NotebookFailure``: notebook, cell, one line)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aigw.config import Secret, redact
from aigw.import_tax import PAPERMILL_REMOTE_IO, without
from aigw.progress import progress
from aigw.stop_signals import active_stop

__all__ = ["NotebookFailure", "caused_by_stop", "code_cells", "execute_notebook", "failed_cell",
           "mark_stopped_cell", "prepare_kernel", "register_engine", "unstarted_kernel"]

_ENGINE: Final = "aigw"
#: Papermill writes the whole output notebook at every cell's start and end (about 60 writes for 03, each
#: validated and deep-copied: seconds of a run). Between cells it is written at most this often; the
#: final write (the notebook's end, a failure or a stop included) always happens. Only a killed ``aigw``
#: (SIGKILL) leaves an output up to this much older than the kernel's state.
SAVE_EVERY_S: Final = 1.0


@dataclass(frozen=True)
class NotebookFailure:
    notebook: str
    cell: int | None
    error: str

    def __str__(self) -> str:
        where = f" cell {self.cell}" if self.cell is not None else ""
        return f"{self.notebook}{where}: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        """``evidence.json``'s ``failure``: the notebook, the index of its failed cell, the error line."""
        return {"notebook": self.notebook, "cell": self.cell, "error": self.error}



class _Stopped(Exception):
    """Raised by the per-cell hook when a stop came while the kernel sat between cells."""



def code_cells(notebook: Path) -> int:
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return 0
    return sum(1 for cell in cells if cell.get("cell_type") == "code")


def register_engine() -> None:
    """A papermill engine that moves the notebook's progress bar per cell (a line per cell with ``-v``).

    Papermill is imported here, the runner's first import of it, without the remote I/O backends it would load
    (``aigw.import_tax``): the runner reads and writes local notebooks only."""
    with without(PAPERMILL_REMOTE_IO):
        from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            name = Path(str(nb_man.nb.metadata.get("papermill", {}).get("input_path", "notebook"))).stem
            original = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **more: Any) -> Any:
                if cell.get("cell_type") == "code":
                    first = next((line for line in str(cell.get("source", "")).splitlines()
                                  if line.strip() and not line.lstrip().startswith("#")), "")
                    progress.cell(name, cell_index, first)
                started = original(cell, cell_index, **more)
                stop = active_stop()
                if stop is not None and stop.stopped():
                    # The cell is marked started, so the stopped notebook shows it as the one that failed.
                    raise _Stopped("the run was stopped before this cell")
                return started

            nb_man.cell_start = cell_start
            _throttle_saves(nb_man)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(_ENGINE, ProgressEngine)



def _throttle_saves(nb_man: Any) -> None:
    """``nb_man.save`` at most every ``SAVE_EVERY_S`` between cells; always from ``notebook_complete`` (which
    papermill calls in a ``finally``, after the last cell, a failure or a stop)."""
    save, complete = nb_man.save, nb_man.notebook_complete
    last = time.monotonic()  # papermill has just written the notebook (notebook_start)
    final = False

    def throttled_save(**kwargs: Any) -> Any:
        nonlocal last
        if not final and time.monotonic() - last < SAVE_EVERY_S:
            return None
        done = save(**kwargs)
        last = time.monotonic()
        return done

    def notebook_complete(**kwargs: Any) -> Any:
        nonlocal final
        final = True
        return complete(**kwargs)

    nb_man.save = throttled_save
    nb_man.notebook_complete = notebook_complete


def failed_cell(output: Path) -> int | None:
    """The index of the failed cell in the output notebook (what the HTML's ``#cell-N`` anchors use)."""
    import nbformat

    try:
        nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "failed":
            return index
    return None


def mark_stopped_cell(output: Path, failure: NotebookFailure) -> NotebookFailure:
    """A notebook stopped from outside (kernel died, run interrupted): papermill then marks every cell
    "completed". Mark the cell that was running (the last one started) failed, with the failure as its
    error output, so that the evidence and the HTML show where the notebook stopped."""
    import nbformat

    if failure.cell is not None or not output.is_file():
        return failure
    try:
        nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        return failure
    started = [i for i, c in enumerate(nb.cells)
               if c.cell_type == "code" and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return failure
    cell = nb.cells[started[-1]]
    cell.metadata.setdefault("papermill", {})["status"] = "failed"
    ename, _, evalue = failure.error.partition(": ")
    cell.setdefault("outputs", []).append(nbformat.v4.new_output(  # type: ignore[no-untyped-call]
        "error", ename=ename, evalue=evalue, traceback=[failure.error]))
    nbformat.write(nb, output)  # type: ignore[no-untyped-call]
    return NotebookFailure(failure.notebook, started[-1], failure.error)


#: How much lower each later notebook's kernel runs (``nice``), by its place in the run, up to ``_MAX_NICE``:
#: kernels started ahead boot beside the notebook that runs, on the same cores, and took the CPU it needed
#: (03's kernel was still importing 2 s after 02 ended: docs/PERFORMANCE.md, round 4). With its rank in the
#: niceness, the running notebook's kernel comes first and the later kernels boot on what it leaves.
NICE_PER_PLACE: Final = 2
_MAX_NICE: Final = 8


def prepare_kernel(notebook: Path, place: int = 0, forks: Any = None) -> Any:
    """Start ``notebook``'s kernel now (it boots and imports while the previous notebook runs); None
    when that fails, and papermill then starts one itself. ``place``: the notebook's index in the run;
    ``forks``: the run's ``aigw.kernels.ForkServer``, which forks it (None: a new interpreter)."""
    from aigw.kernels import PreparedKernel
    from aigw.notebook_source import notebook_imports

    kernel = PreparedKernel(notebook.parent, notebook_imports(notebook),
                            nice=min(NICE_PER_PLACE * place, _MAX_NICE), fork_server=forks)
    try:
        return kernel.start()
    except Exception:  # papermill's own start reports whatever is wrong, in the notebook's terms
        with contextlib.suppress(Exception):
            kernel.shutdown()
        return None


def caused_by_stop(failure: NotebookFailure) -> bool:
    """True when ``failure`` is what a stop does to a notebook: the interrupted cell, the per-cell hook, or
    the kernel killed after the grace."""
    ename = failure.error.partition(":")[0]
    return ename in {"KeyboardInterrupt", "_Stopped", "DeadKernelError"} or "Kernel died" in failure.error


def unstarted_kernel(notebook: Path) -> Any:
    """A kernel manager papermill starts itself (when the one prepared ahead failed to start): made here,
    so that the runner can interrupt its kernel and shut it down like a prepared one."""
    from aigw.kernels import PreparedKernel

    return PreparedKernel(notebook.parent)


def execute_notebook(notebook: Path, output: Path, parameters: Mapping[str, Any], cwd: Path,
             secrets: Sequence[Secret], kernel: Any = None) -> NotebookFailure | None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from aigw.kernels import IPCKernelManager

    extra: dict[str, Any] = {"km": kernel.manager} if kernel is not None else {}
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=dict(parameters), engine_name=_ENGINE, kernel_name="python3",
            progress_bar=False, cwd=str(cwd), kernel_manager_class=IPCKernelManager, start_timeout=120, **extra,
        )
    except PapermillExecutionError as exc:
        evalue = " ".join(str(exc.evalue).split())
        return NotebookFailure(notebook.stem, failed_cell(output), redact(f"{exc.ename}: {evalue}", secrets))
    except Exception as exc:  # the kernel died, a timeout, a broken notebook: still a failed notebook
        text = " ".join(str(exc).split())[:300]
        if type(exc).__name__ == "DeadKernelError":
            text += " (killed, or out of memory); run aigw run again: it converges on the same state"
        return NotebookFailure(notebook.stem, failed_cell(output), redact(f"{type(exc).__name__}: {text}", secrets))
    return None

