"""The twin: a local, stateful emulator of the parts of Cloudflare the runbook touches.

One Starlette app on one loopback port serves the v4 API (``/client/v4``), the gateway data plane
(``/v1``), the emulated providers (``/__providers__``) and, when enabled, the admin API
(``/__twin__``). State lives in SQLite (``cftwin.db``). Start one with ``TwinServer``
(a thread) or ``TwinProcess`` (a subprocess); ``aigw twin serve`` is the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["TwinContext", "TwinOptions", "TwinProcess", "TwinSeed", "TwinServer", "build_app"]

if TYPE_CHECKING:
    from cftwin.app import build_app
    from cftwin.context import TwinContext, TwinOptions
    from cftwin.seed import TwinSeed
    from cftwin.server import TwinProcess, TwinServer

_LAZY = {
    "build_app": "cftwin.app",
    "TwinContext": "cftwin.context",
    "TwinOptions": "cftwin.context",
    "TwinSeed": "cftwin.seed",
    "TwinServer": "cftwin.server",
    "TwinProcess": "cftwin.server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one service's models does not drag in uvicorn and every route.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cftwin' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
