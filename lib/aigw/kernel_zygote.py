"""A run's kernel fork server: one process that imports ipykernel and the notebooks' modules once, then forks
each kernel from itself (``python -m aigw.kernel_zygote FD``; the runner's side is ``aigw.kernels.ForkServer``).

A kernel started the usual way is a new interpreter that imports ipykernel (0.35 s), IPython and the notebook's
modules (aigw, pandas, matplotlib: up to 1.2 s) again: about 5 CPU seconds over a run's five kernels, on 2 cores
that the running notebook, the twin and the kernels started ahead share (docs/PERFORMANCE.md, round 5). A fork
copies what is imported, so each kernel only initialises itself.

The protocol, one JSON object a line over the socket ``FD`` (a ``socketpair`` end the runner passed):

* runner -> server: ``{"id": N, "argv": [...], "env": {...}, "cwd": "...", "warm": ["module", ...], "nice": n}``:
  lower this process to ``nice`` (the kernel's priority, inherited), import ``warm`` here (what is imported stays,
  for the next kernels), then fork a kernel that runs ipykernel with ``argv`` (the arguments after
  ``-m ipykernel_launcher``), in ``cwd``, with exactly ``env``.
* server -> runner: ``{"id": N, "pid": P}`` once forked (``{"id": N, "error": "..."}`` when the fork failed), and
  ``{"exit": P, "code": C}`` when kernel ``P`` has exited (the server is its parent and reaps it).

Each kernel leads its own session, as jupyter_client starts kernels (its interrupt signals the process group),
and polls its parent, this server, as ipykernel does (``JPY_PARENT_PID``). The server goes when the runner closes
its end of the socket (or dies), and ends (SIGKILL) and reaps the kernels still running first.

It starts no Python thread, so a child inherits no lock held by a thread it does not have. The libraries it imports
start native threads (OpenBLAS under numpy; jemalloc's background thread under pyarrow, which pandas imports); both
reset their state in the child through ``pthread_atfork`` handlers, as multiprocessing's fork start method needs.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["main"]

#: What ipykernel sets when ``MPLBACKEND`` is unset (``IPKernelApp.init_gui_pylab``): set here before matplotlib is
#: imported, so that a kernel forked from here has the backend a kernel started the usual way has.
_INLINE_BACKEND: Final = "module://matplotlib_inline.backend_inline"


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    line = json.dumps(message).encode() + b"\n"
    # SIGCHLD's handler sends too: blocked meanwhile, so that its line never lands inside this one.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        channel.sendall(line)
    except OSError:  # the runner has gone: nothing to tell
        pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


#: The kernels forked and not reaped yet.
_live: set[int] = set()


def _reap(channel: socket.socket, block: bool = False) -> None:
    """Reap every exited kernel and tell the runner its exit code (run from ``SIGCHLD``, in the main thread;
    ``block``: until none is left)."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _live.discard(pid)
        _send(channel, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _end_kernels(channel: socket.socket) -> None:
    """The runner has gone (or closed the socket): its kernels still running go too, and are reaped here, so that
    none is left to poll for a parent that no longer exists."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(_live):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _reap(channel, block=True)


def _import(names: Sequence[str]) -> None:
    from aigw.kernels import import_modules

    import_modules(names)


def _kernel(request: dict[str, Any], channel: socket.socket, reader: Any) -> int:
    """In the forked child: become the kernel jupyter_client would have started; its exit code."""
    reader.close()
    channel.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    os.chdir(str(request["cwd"]))
    env = {str(k): str(v) for k, v in dict(request["env"]).items()}
    env["JPY_PARENT_PID"] = str(os.getppid())  # this server: the parent the kernel polls
    os.environ.clear()
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # jupyter_client gives a kernel a closed pipe as stdin
    os.close(devnull)
    import ipykernel_launcher  # type: ignore[import-untyped]
    from ipykernel import kernelapp

    sys.argv = [str(ipykernel_launcher.__file__), *[str(a) for a in request["argv"]]]
    try:
        kernelapp.launch_new_instance()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _serve(channel: socket.socket) -> None:
    reader = channel.makefile("rb")
    signal.signal(signal.SIGCHLD, lambda *_: _reap(channel))
    for line in reader:
        request = json.loads(line)
        # Each later kernel runs lower (its place in the run: aigw.execution.NICE_PER_PLACE), and so do the imports
        # made for it, here: they overlap the notebooks before it. Places come in order, so this only ever lowers.
        nice = int(request.get("nice", 0))
        if nice > os.nice(0):
            os.nice(nice - os.nice(0))
        _import(list(request.get("warm", ())))
        # What the server imported is frozen before the fork (Python's advice for fork without exec): a kernel's
        # collections then skip those objects, and do not write to the pages it shares with the server.
        gc.freeze()
        # SIGCHLD waits until the pid is sent: a kernel that exits at once is reported after its pid, not before.
        unmasked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
        except OSError as exc:
            _send(channel, {"id": request["id"], "error": f"fork failed: {exc}"})
            signal.pthread_sigmask(signal.SIG_SETMASK, unmasked)
            continue
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, unmasked)
            code = 1
            try:
                code = _kernel(request, channel, reader)
            except BaseException:
                traceback.print_exc()
            finally:
                # The interpreter's own exit would return into this loop: run the exit handlers (IPython's among
                # them), flush, and leave.
                atexit._run_exitfuncs()
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
        _live.add(pid)
        _send(channel, {"id": request["id"], "pid": pid})
        signal.pthread_sigmask(signal.SIG_SETMASK, unmasked)
    _end_kernels(channel)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    channel = socket.socket(fileno=int(args[0]))
    # Like ipykernel_launcher: the folder it was started in is not an import path (IPython adds '' back itself).
    if sys.path and Path(sys.path[0] or ".").resolve() == Path.cwd().resolve():
        del sys.path[0]
    # The kernels' parent is this process: ipykernel reads JPY_PARENT_PID when its module is imported.
    os.environ["JPY_PARENT_PID"] = str(os.getpid())
    os.environ.setdefault("MPLBACKEND", _INLINE_BACKEND)
    import ipykernel.ipkernel  # noqa: F401 - what every kernel imports first, once for all of them
    from ipykernel import kernelapp  # noqa: F401

    _serve(channel)
    return 0


if __name__ == "__main__":
    from aigw.fast_exit import leaving

    raise SystemExit(leaving(main()))
