"""A kernel manager whose kernels talk over IPC sockets with a unique prefix each.

Kernels started in parallel over TCP race for ports (jupyter_client picks free ports, then the kernel
binds them later; nteract/papermill#511). IPC sockets need no ports. Each kernel gets its own socket
prefix in the temp folder: with a shared prefix, parallel kernels collide ("Invalid Signature").
"""

from __future__ import annotations

import os
import tempfile
import uuid

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

__all__ = ["IPCKernelManager"]


class IPCKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` over ``ipc`` transport with a per-kernel socket prefix."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # Short on purpose: a Unix socket path is limited to ~107 bytes.
        return os.path.join(tempfile.gettempdir(), f"aigw-k-{uuid.uuid4().hex[:12]}")
