"""The twin: a local, stateful emulator of the parts of Cloudflare the runbook touches.

One Starlette app on one loopback port serves the v4 API (``/client/v4``), the gateway data plane
(``/v1``), the emulated providers (``/__providers__``) and, when enabled, the admin API
(``/__twin__``). State lives in SQLite (``aigw.twin.db``). Start one with ``TwinServer``
(a thread) or ``TwinProcess`` (a subprocess); ``aigw twin serve`` is the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["TwinContext", "TwinOptions", "TwinProcess", "TwinSeed", "TwinServer", "build_app"]

if TYPE_CHECKING:
    from aigw.twin.app import build_app
    from aigw.twin.context import TwinContext, TwinOptions
    from aigw.twin.seed import TwinSeed
    from aigw.twin.server import TwinProcess, TwinServer

_LAZY = {
    "build_app": "aigw.twin.app",
    "TwinContext": "aigw.twin.context",
    "TwinOptions": "aigw.twin.context",
    "TwinSeed": "aigw.twin.seed",
    "TwinServer": "aigw.twin.server",
    "TwinProcess": "aigw.twin.server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one service's models does not drag in uvicorn and every route.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aigw.twin' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
