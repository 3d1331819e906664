"""A kernel manager whose kernels talk over IPC sockets with a unique prefix each.

Kernels started in parallel over TCP race for ports (jupyter_client picks free ports, then the kernel
binds them later; nteract/papermill#511). IPC sockets need no ports. Each kernel gets its own socket
prefix in the temp folder: with a shared prefix, parallel kernels collide ("Invalid Signature").

``PreparedKernel`` starts the next notebook's kernel while the current one runs (``aigw run``): a kernel's
start is about a second of interpreter boot and imports, which then overlaps the previous notebook.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

__all__ = ["IPCKernelManager", "PreparedKernel", "notebook_imports", "warm_up"]


class IPCKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` over ``ipc`` transport with a per-kernel socket prefix."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # Short on purpose: a Unix socket path is limited to ~107 bytes.
        return os.path.join(tempfile.gettempdir(), f"aigw-k-{uuid.uuid4().hex[:12]}")


# --- a kernel started ahead of its notebook ---------------------------------------------------------------


def notebook_imports(notebook: Path) -> list[str]:
    """The modules a notebook's code cells import at top level (``from aigw import evidence`` gives
    ``aigw.evidence`` and ``aigw``), in order; cells that do not parse (magics) are skipped."""
    import ast
    import json

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    found: dict[str, None] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse("".join(source) if isinstance(source, list) else str(source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found[node.module] = None
                found.update(dict.fromkeys(f"{node.module}.{alias.name}" for alias in node.names))
    return list(found)


def warm_up(names: Sequence[str]) -> None:
    """Import ``names`` (run inside a starting kernel). A name that is not a module (``from m import
    func``) or a module that fails to import is left to the notebook, which reports it in its own cell."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            continue


class PreparedKernel:
    """A kernel started (and importing its notebook's modules) while the previous notebook runs.

    The kernel inherits this process's environment and ``cwd`` at ``start()``: start it only once both
    are what its notebook must see. Hand ``manager`` to papermill (``km=``); ``shutdown()`` afterwards
    (papermill does not stop a kernel it did not start).
    """

    def __init__(self, cwd: Path, warm_imports: Sequence[str] = (), kernel_name: str = "python3") -> None:
        self.cwd = cwd
        self.warm_imports = tuple(warm_imports)
        self.manager = IPCKernelManager(kernel_name=kernel_name)

    def start(self) -> PreparedKernel:
        from jupyter_core.utils import run_sync

        extra: list[str] = []
        if self.warm_imports:
            # Run by the kernel while it initialises (before it answers papermill's kernel_info), with
            # store_history=False: no execution count, no output, and no name left in the namespace.
            line = f"__import__({__name__!r}, fromlist=['warm_up']).warm_up({list(self.warm_imports)!r})"
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
