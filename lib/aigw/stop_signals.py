"""Stop signals of ``aigw run``: SIGINT and SIGTERM handled once, in one place, from the run's first line to
its last, so that what ran is always sealed before the stop goes on (``RunInterrupted``)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from aigw.evidence import Bundle

__all__ = ["RunInterrupted", "StopSignals", "active_stop", "stop_signals"]


class RunInterrupted(KeyboardInterrupt):
    """``aigw run`` was stopped by SIGINT (Ctrl-C) or SIGTERM; raised once what ran is sealed.

    ``signum``: the first signal; ``bundle``: the sealed bundle, None when nothing was sealed (the stop
    came before the run folder was made, or the sealing itself failed)."""

    def __init__(self, signum: int, bundle: Bundle | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.bundle = bundle



class StopSignals:
    """SIGINT and SIGTERM for the whole of a run, handled once and only here.

    The handler never raises: an exception raised from a signal handler lands wherever the main thread
    happens to be (papermill's event loop, a kernel's shutdown in a ``finally``, the sealing) and skipped
    the sealing of 4 Ctrl-Cs in 10. It records the first signal and interrupts the running notebook's
    kernel as Jupyter does (SIGINT to its process group): the cell stops with ``KeyboardInterrupt``,
    papermill returns, and the runner seals what ran. Between cells, the per-cell hook stops papermill
    before the next one. A kernel still running ``GRACE_S`` after the signal, or at a second signal, is
    killed: the notebook then fails as a dead kernel, sealed all the same.
    """

    GRACE_S: Final = 10.0

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self.signum: int | None = None
        #: The kernel of the notebook that runs now (a ``PreparedKernel``), None between notebooks.
        self.kernel: Any = None
        self._saved: dict[int, Any] = {}
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._watchdog = threading.Thread(target=self._kill_after_grace, name="aigw-stop", daemon=True)

    def stopped(self) -> bool:
        """A method, not a property: the signal handler changes it behind the type checker's back."""
        return self.signum is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
            self._watchdog.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous)
        self._closed.set()
        self._wake.set()

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None:
            self._kill()
            return
        self.signum = signum
        # os.write, not print: the main thread may be inside a print to the same stream.
        with contextlib.suppress(OSError):
            os.write(2, f"aigw: {signal.Signals(signum).name}: stopping the running notebook, then sealing what "
                        "ran\n".encode())
        kernel = self.kernel
        if kernel is not None:
            kernel.send_signal(signal.SIGINT)
        self._wake.set()

    def _kill(self) -> None:
        kernel = self.kernel
        if kernel is not None:
            kernel.send_signal(signal.SIGKILL)

    def _kill_after_grace(self) -> None:
        self._wake.wait()
        if not self._closed.wait(self.grace_s):
            self._kill()


#: The stop of the run in progress in this thread (the per-cell hook of the papermill engine reads it).
_current = threading.local()


def active_stop() -> StopSignals | None:
    stop: StopSignals | None = getattr(_current, "stop", None)
    return stop


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """The run's ``StopSignals``: installed by the outermost caller (``aigw run``'s entrance in ``cli``, before its
    first line, or ``run_plan`` called on its own), shared by the inner one."""
    active = active_stop()
    if active is not None:
        yield active
        return
    with StopSignals() as stop:
        _current.stop = stop
        try:
            yield stop
        finally:
            _current.stop = None

