"""HTML exports in a process of their own, for ``aigw run``.

``aigw run`` exports each notebook while the next one runs. In the runner's process that export (nbconvert:
pure Python, 0.4-0.6 s a notebook, 1.4 s more for its first import) held the GIL against the run's twin, a
thread of the same process: every API and gateway request of the next notebook waited behind it, and 03's
overhead pairs were measured through it (docs/PERFORMANCE.md, round 4). A worker process, started at the first
export, has its own interpreter; it runs at a lower priority, so it also yields the CPU to the kernels.

The protocol is one JSON line each way: ``{"notebook", "folder", "run_id"}`` in, ``{"html"}`` or ``{"error"}``
out. The worker is given the environment the runner had before the kernels' (no twin token in it) and ends at
end of input, so a runner that dies takes it along.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Final

from aigw.errors import EvidenceError

__all__ = ["ExportWorker", "serve"]

#: How much lower the worker's priority is than the runner's (``nice``): below every kernel (at most 8,
#: ``aigw.execution``) and the twin; once the last notebook is done nothing else wants the CPU.
_NICE: Final = 10
_CLOSE_TIMEOUT_S: Final = 10.0


class ExportWorker:
    """``export_run_html`` in a worker process (started on the first ``export``); ``close()`` stops it.

    ``export`` may be called from any thread; calls are served one at a time, in order.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__], env=self._environ, text=True, bufsize=1,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        return self._process

    def export(self, notebook: Path, folder: Path, run_id: str) -> Path:
        """The HTML of ``notebook`` in ``folder`` (``export_run_html``); ``EvidenceError`` when the worker
        could not make it (the seal then exports the notebook itself)."""
        request = json.dumps({"notebook": str(notebook), "folder": str(folder), "run_id": run_id})
        with self._lock:
            process = self._started()
            stdin, stdout = _pipes(process)
            try:
                stdin.write(request + "\n")
                stdin.flush()
                line = stdout.readline()
            except OSError as exc:
                raise EvidenceError(f"the HTML export worker stopped ({exc.strerror or exc})") from None
        if not line:
            raise EvidenceError(f"the HTML export worker stopped (exit {process.poll()})")
        answer = json.loads(line)
        if "html" not in answer:
            raise EvidenceError(f"HTML export of {notebook.name} failed: {answer.get('error', 'no answer')}")
        return Path(answer["html"])

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # a worker that died has closed its end already
                process.stdin.close()
        try:
            process.wait(timeout=_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _pipes(process: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    assert process.stdin is not None and process.stdout is not None  # Popen was given both pipes
    return process.stdin, process.stdout


def serve() -> int:
    """The worker: one export per input line, one answer line each, until end of input."""
    from aigw.import_tax import skip_unused_import_tax

    skip_unused_import_tax()
    # Ctrl-C reaches the whole process group: the runner decides what a stop means, and closes the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(_NICE)
    from aigw.evidence.html_export import export_run_html

    for line in sys.stdin:
        try:
            request = json.loads(line)
            html = export_run_html(Path(request["notebook"]), Path(request["folder"]), str(request["run_id"]))
            answer = {"html": str(html)}
        except Exception as exc:  # one line back; the seal exports that notebook itself and reports it
            answer = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    from aigw.fast_exit import leaving

    sys.exit(leaving(serve()))
