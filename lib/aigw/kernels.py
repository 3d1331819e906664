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
import socket
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
from traitlets import default

__all__ = ["IPCKernelManager", "PreparedKernel", "ReadyKernelClient", "clean_stale_kernel_files", "kernel_dir",
           "kernel_environment", "warm_up"]

_PREFIX: Final = "aigw-k-"
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
    """``AsyncKernelManager`` over ``ipc`` transport with a per-kernel socket prefix, and ``ReadyKernelClient``."""

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


def warm_up(names: Sequence[str], nice: int = 0) -> None:
    """Import ``names`` (run inside a starting kernel), then ``aigw._http.warm_http``. A name that is not a
    module (``from m import func``) or a module that fails to import is left to the notebook, which reports it
    in its own cell."""
    import importlib

    from aigw.import_tax import HTTP_EXTRAS, without

    if nice > 0:
        os.nice(nice)

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


class PreparedKernel:
    """A kernel started (and importing its notebook's modules) while the previous notebook runs.

    The kernel inherits this process's environment and ``cwd`` at ``start()``: start it only once both
    are what its notebook must see. Hand ``manager`` to papermill (``km=``); ``shutdown()`` afterwards
    (papermill does not stop a kernel it did not start).
    """

    def __init__(self, cwd: Path, warm_imports: Sequence[str] = (), kernel_name: str = "python3", *,
                 nice: int = 0) -> None:
        self.cwd = cwd
        self.warm_imports = tuple(warm_imports)
        self.nice = nice
        self.manager = IPCKernelManager(kernel_name=kernel_name)

    def start(self) -> PreparedKernel:
        from jupyter_core.utils import run_sync

        extra: list[str] = []
        if self.warm_imports or self.nice:
            # Run by the kernel while it initialises (before it answers papermill's kernel_info), with
            # store_history=False: no execution count, no output, and no name left in the namespace.
            line = (f"__import__({__name__!r}, fromlist=['warm_up']).warm_up({list(self.warm_imports)!r}, "
                    f"{self.nice})")
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
