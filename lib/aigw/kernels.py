"""A kernel manager whose kernels talk over IPC sockets with a unique prefix each.

Kernels started in parallel over TCP race for ports (jupyter_client picks free ports, then the kernel
binds them later; nteract/papermill#511). IPC sockets need no ports. Each kernel gets its own socket
prefix in the temp folder: with a shared prefix, parallel kernels collide ("Invalid Signature").

``PreparedKernel`` starts the next notebook's kernel while the current one runs (``aigw run``): a kernel's
start is about a second of interpreter boot and imports, which then overlaps the previous notebook.

Every kernel file of a run, its IPC sockets and its connection file (jupyter_client would make that a
``tmpXXXX.json`` in the temp folder), lives in the run's own private folder ``<temp>/aigw-k-<pid>.<random>``
(``kernel_dir()``), removed when the process exits. A killed run cannot remove it: the next run does
(``clean_stale_kernel_files()``): a folder whose process is gone, and the loose ``aigw-k-*`` sockets and
connection files earlier versions left in the temp folder, once no kernel answers on them.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from queue import Empty
from typing import Any, Final

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import default

__all__ = ["KERNEL_FORKS_VAR", "ForkProvisioner", "ForkServer", "ForkedProcess", "IPCKernelManager", "PreparedKernel",
           "ReadyKernelClient", "clean_stale_kernel_files", "import_modules", "kernel_dir", "kernel_environment",
           "warm_up"]

_PREFIX: Final = "aigw-k-"
#: ``AIGW_KERNEL_FORKS=0``: no fork server, every kernel its own interpreter, as jupyter_client starts them (to
#: compare, or should a module misbehave after a fork). Read by the plan (``RunPlan.kernel_forks``).
KERNEL_FORKS_VAR: Final = "AIGW_KERNEL_FORKS"
#: How long ``ReadyKernelClient`` waits for its request's IOPub ``idle`` before asking again (a subscription
#: made just before the request can miss it; one made earlier sees it within milliseconds).
_IOPUB_WAIT_S: Final = 0.05
#: This process's kernel folder: ``aigw-k-<pid>.<random>``.
_OWN_FOLDER: Final = re.compile(r"^aigw-k-(\d+)\.[A-Za-z0-9_]+$")
_lock = threading.Lock()
_folder: Path | None = None


def kernel_dir() -> Path:
    """This process's private folder (0700) for its kernels' sockets and connection files, made once."""
    global _folder
    with _lock:
        if _folder is None or not _folder.is_dir():
            # Short on purpose: a Unix socket path is limited to ~107 bytes.
            _folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}."))
            atexit.register(shutil.rmtree, _folder, True)
        return _folder


@contextlib.contextmanager
def kernel_environment(values: Mapping[str, str], drop: Sequence[str] = ()) -> Iterator[None]:
    """``os.environ`` without ``drop`` and with ``values`` over it (the kernels inherit it), restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*drop, *values)}
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def _socket_is_dead(path: Path) -> bool:
    """True when nothing listens on the Unix socket ``path`` (a killed kernel's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:  # not a socket we can judge (another type, no permission): leave it
            return False
    return False


def _stale_connection_file(path: Path, temp: Path) -> bool:
    """A ``tmp*.json`` of an aigw kernel (ipc under ``temp/aigw-k-``) whose shell socket is dead."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(info, dict) or info.get("transport") != "ipc":
        return False
    ip = str(info.get("ip", ""))
    if not ip.startswith(str(temp / _PREFIX)):
        return False
    return _socket_is_dead(Path(f"{ip}-{info.get('shell_port', 1)}"))


def _is_stale_file(entry: Path, temp: Path) -> bool:
    """A loose socket of an earlier version's kernel, or its connection file, that no kernel answers on."""
    name = entry.name
    if name.startswith(_PREFIX) and entry.is_socket():
        return _socket_is_dead(entry)
    if name.startswith("tmp") and name.endswith(".json") and entry.is_file():
        return _stale_connection_file(entry, temp)
    return False


def clean_stale_kernel_files(temp: Path | None = None) -> list[Path]:
    """Remove what killed runs left in the temp folder; the paths removed. Live runs are never touched."""
    temp = Path(temp or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(temp.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        with contextlib.suppress(OSError):
            own = _OWN_FOLDER.match(name)
            if own is not None and entry.is_dir() and not entry.is_symlink():
                if int(own.group(1)) != os.getpid() and _process_is_gone(int(own.group(1))):
                    shutil.rmtree(entry)
                    removed.append(entry)
            elif _is_stale_file(entry, temp):
                entry.unlink()
                removed.append(entry)
    return removed


class ReadyKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` whose ``wait_for_ready`` ends when the kernel is seen ready, not 0.2 s later.

    jupyter_client's waits for ``kernel_info_reply``, then up to 0.2 s for an IOPub message (proof the IOPub
    subscription is live), then flushes IOPub until 0.2 s pass without a message: at least 0.2 s for a kernel
    that is long ready, once per notebook (docs/PERFORMANCE.md, round 4). This one has the same proof in
    a form it can recognise: the ``status: idle`` the kernel publishes on IOPub after answering a
    ``kernel_info_request``. It proves the subscription live, and IOPub keeps order, so everything published
    before it (the earlier requests' status messages) has been read by then. A subscription that was not live yet
    misses the messages of its request: the request is sent again after ``_IOPUB_WAIT_S``.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            msg_id = self.kernel_info()
            reply = await self._reply_to(msg_id, min(1.0, max(0.0, deadline - time.monotonic())))
            if reply is not None and await self._idle_after(msg_id):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _reply_to(self, msg_id: str, wait_s: float) -> dict[str, Any] | None:
        end = time.monotonic() + wait_s
        while (left := end - time.monotonic()) > 0:
            try:
                msg: dict[str, Any] = await self.shell_channel.get_msg(timeout=left)
            except Empty:
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "kernel_info_reply":
                return msg
        return None

    async def _idle_after(self, msg_id: str) -> bool:
        end = time.monotonic() + _IOPUB_WAIT_S
        while (left := end - time.monotonic()) > 0:
            try:
                msg: dict[str, Any] = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (msg["msg_type"] == "status" and msg.get("content", {}).get("execution_state") == "idle"
                    and msg.get("parent_header", {}).get("msg_id") == msg_id):
                return True
        return False


class IPCKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` over ``ipc`` transport with a per-kernel socket prefix, and ``ReadyKernelClient``.
    With ``fork_server`` set, its kernel is forked by that server (``ForkProvisioner``), having imported
    ``fork_warm``."""

    fork_server: ForkServer | None = None
    fork_warm: tuple[str, ...] = ()
    fork_nice: int = 0

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        if self.fork_server is not None and self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
            provisioner.server = self.fork_server
            provisioner.warm = self.fork_warm
            provisioner.nice = self.fork_nice
            self.provisioner = provisioner
        started: tuple[list[str], dict[str, Any]] = await super()._async_pre_start_kernel(**kw)
        return started

    @default("client_factory")
    def _default_client_factory(self) -> type[ReadyKernelClient]:
        return ReadyKernelClient

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        return str(kernel_dir() / f"k-{uuid.uuid4().hex[:12]}")

    @default("connection_file")
    def _default_connection_file(self) -> str:
        # Beside the sockets, not a tmpXXXX.json of the temp folder that a killed run leaves behind.
        return str(kernel_dir() / f"k-{uuid.uuid4().hex[:12]}.json")


# --- a kernel started ahead of its notebook ---------------------------------------------------------------


def import_modules(names: Sequence[str]) -> None:
    """Import ``names`` without httpx's command-line extras. A name that is not a module (``from m import func``)
    or a module that fails to import is left to the notebook, which reports it in its own cell."""
    import importlib

    from aigw.import_tax import HTTP_EXTRAS, without

    with without(HTTP_EXTRAS):  # the kernel boots on the run's critical path: 0.3 s of it (aigw.import_tax)
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                continue
        # Every notebook's first request made httpx's first client: ~0.3 s of imports and CA loading, in its cell.
        try:
            from aigw._http import warm_http

            warm_http()
        except Exception:  # the notebook's first request then meets (and reports) whatever failed here
            return


def warm_up(names: Sequence[str], nice: int = 0) -> None:
    """Run inside a starting kernel: lower its priority by ``nice``, then ``import_modules(names)`` (at once when
    the kernel was forked from the run's ``ForkServer``, which imported them)."""
    if nice > 0:
        os.nice(nice)
    import_modules(names)


# --- the run's fork server (aigw.kernel_zygote): kernels forked with their imports done --------------------------


class ForkServer:
    """The runner's side of ``aigw.kernel_zygote``: started once, in the kernels' environment (it and every kernel
    forked from it keep that environment's modules imported); ``launch`` asks it for a kernel. Linux only (fork,
    ``SCM``-free socketpair); ``start`` returns None where it cannot run, and kernels then start the usual way.

    A reader thread takes the server's lines: the pid of each kernel forked, and each kernel's exit code.
    """

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.process = process
        self._channel = channel
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, ForkedProcess] = {}
        self._by_pid: dict[int, ForkedProcess] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="aigw-kernel-forks", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls) -> ForkServer | None:
        if sys.platform != "linux" or not hasattr(os, "fork"):
            return None
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "aigw.kernel_zygote", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir(), start_new_session=True)
        except OSError:
            ours.close()
            return None
        finally:
            theirs.close()
        return cls(process, ours)

    def launch(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, warm: Sequence[str],
               nice: int = 0) -> ForkedProcess:
        """Ask for a kernel (``argv``: the arguments after ``-m ipykernel_launcher``) at priority ``nice``; returns at
        once, before the server has imported ``warm`` and forked it. ``OSError`` when the server has gone."""
        with self._lock:
            if self._closed:
                raise OSError("the kernel fork server has stopped")
            self._next_id += 1
            forked = ForkedProcess(self)
            self._pending[self._next_id] = forked
            request = {"id": self._next_id, "argv": list(argv), "env": dict(env), "cwd": cwd, "warm": list(warm),
                       "nice": nice}
            self._channel.sendall(json.dumps(request).encode() + b"\n")
        return forked

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError), self._channel.makefile("rb") as lines:
            for line in lines:
                message = json.loads(line)
                with self._lock:
                    if "exit" in message:
                        gone = self._by_pid.pop(int(message["exit"]), None)
                        if gone is not None:
                            gone._exited(int(message["code"]))
                    elif (forked := self._pending.pop(int(message["id"]), None)) is not None:
                        if "pid" in message:
                            self._by_pid[int(message["pid"])] = forked
                            forked._forked(int(message["pid"]))
                        else:
                            forked._exited(1)
        # The server has gone: its kernels go with it (they poll their parent); none is starting any more.
        with self._lock:
            self._closed = True
            for forked in [*self._pending.values(), *self._by_pid.values()]:
                forked._server_gone()
            self._pending.clear()
            self._by_pid.clear()

    def close(self) -> None:
        """Stop the server (its end of the socket closes; it exits, and so do kernels still running)."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._channel.shutdown(socket.SHUT_RDWR)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        self._channel.close()


class ForkedProcess:
    """A kernel forked by the ``ForkServer``, as much of ``subprocess.Popen`` as jupyter_client's provisioner uses.
    ``pid`` is None until the server has forked it."""

    stdin = stdout = stderr = None

    def __init__(self, server: ForkServer) -> None:
        self._server = server
        self._known = threading.Event()
        self._done = threading.Event()
        self.pid: int | None = None
        self.returncode: int | None = None
        self._early_signal: int | None = None

    def _forked(self, pid: int) -> None:
        self.pid = pid
        self._known.set()
        if self._early_signal is not None:  # stopped (or shut down) before it was forked
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, self._early_signal)

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._known.set()
        self._done.set()

    def _server_gone(self) -> None:
        if self.pid is not None and not _process_is_gone(self.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self._exited(-signal.SIGKILL if self.pid is not None else 1)

    def wait_forked(self, timeout: float) -> int | None:
        """The pid once the server has forked the kernel (None after ``timeout`` s, or when it never will)."""
        self._known.wait(timeout)
        return self.pid

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("kernel", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None:
            return
        if self.pid is None:
            self._early_signal = signum
            return
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, with the kernel forked by the run's ``ForkServer`` instead of started
    as a new interpreter. The kernel's pid and process group (it leads its own session) are known once forked."""

    server: ForkServer | None = None
    warm: Sequence[str] = ()
    nice: int = 0

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        assert self.server is not None
        # jupyter_client's command is [python, -m, ipykernel_launcher, -f, <file>, ...]; the server, this
        # interpreter, runs the rest. Another kernel (another interpreter, another launcher) starts as usual.
        if cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]:
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        forked: Any = self.server.launch(cmd[3:], env, str(kwargs.get("cwd") or os.getcwd()), self.warm, self.nice)
        self.process = forked
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info

    @property
    def pid(self) -> int | None:
        process: Any = self.process
        return process.pid if isinstance(process, ForkedProcess) else getattr(process, "pid", None)

    @pid.setter
    def pid(self, value: int | None) -> None:  # LocalProvisioner sets it for a kernel it started itself
        pass

    @property
    def pgid(self) -> int | None:
        # A forked kernel leads its own session, so its process group is its pid.
        process: Any = self.process
        if isinstance(process, ForkedProcess):
            return process.pid
        return self._pgid

    @pgid.setter
    def pgid(self, value: int | None) -> None:
        self._pgid = value

    _pgid: int | None = None


class PreparedKernel:
    """A kernel started (and importing its notebook's modules) while the previous notebook runs.

    The kernel inherits this process's environment and ``cwd`` at ``start()``: start it only once both
    are what its notebook must see. Hand ``manager`` to papermill (``km=``); ``shutdown()`` afterwards
    (papermill does not stop a kernel it did not start).
    """

    def __init__(self, cwd: Path, warm_imports: Sequence[str] = (), kernel_name: str = "python3", *,
                 nice: int = 0, fork_server: ForkServer | None = None) -> None:
        self.cwd = cwd
        self.warm_imports = tuple(warm_imports)
        self.nice = nice
        self.manager = IPCKernelManager(kernel_name=kernel_name)
        self.manager.fork_server = fork_server
        self.manager.fork_warm = self.warm_imports
        self.manager.fork_nice = nice

    def start(self) -> PreparedKernel:
        from jupyter_core.utils import run_sync

        extra: list[str] = []
        # A forked kernel has its priority from the server (and its imports done there).
        nice = 0 if self.manager.fork_server is not None else self.nice
        if self.warm_imports or nice:
            # Run by the kernel while it initialises (before it answers papermill's kernel_info), with
            # store_history=False: no execution count, no output, and no name left in the namespace.
            line = (f"__import__({__name__!r}, fromlist=['warm_up']).warm_up({list(self.warm_imports)!r}, "
                    f"{nice})")
            extra.append(f"--IPKernelApp.exec_lines={line}")
        # start_kernel returns once the process is launched; its interpreter boots in parallel.
        run_sync(self.manager.start_kernel)(cwd=str(self.cwd), extra_arguments=extra)
        return self

    def send_signal(self, signum: int) -> bool:
        """Send ``signum`` to the kernel's process group (Jupyter's interrupt sends SIGINT there); False
        when no kernel process runs. No I/O and no event loop: safe inside a signal handler."""
        provisioner = getattr(self.manager, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        pgid = getattr(provisioner, "pgid", None)
        if not isinstance(pid, int) or pid <= 1:
            return False
        try:
            # The kernel leads its own session (jupyter_client starts it so); never signal our own group.
            if isinstance(pgid, int) and pgid > 1 and pgid != os.getpgrp():
                os.killpg(pgid, signum)
            else:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        if self.manager.has_kernel:
            run_sync(self.manager.shutdown_kernel)(now=False)
