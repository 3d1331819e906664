"""Serve the twin over real HTTP: ``TwinServer`` (a uvicorn thread), ``TwinProcess`` (a subprocess); ``cftwin
serve`` (``cftwin.cli.serve_from_args``; ``aigw twin serve`` is an alias) serves one with a ``TwinServer``.

The twin binds to loopback. ``TwinServer`` refuses another host unless ``allow_non_loopback=True``;
``cftwin serve --host H`` with a non-loopback ``H`` serves there (the flag is explicit) and warns.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

import uvicorn

from cftwin.adminauth import admin_headers, read_admin_token
from cftwin.app import build_app
from cftwin.context import TwinContext, TwinOptions
from cftwin.db import Database
from cftwin.errors import TwinConfigError
from cftwin.faults import FaultInjector
from cftwin.seed import TwinSeed, apply_seed
from cftwin.validation import is_loopback_host

__all__ = ["TwinProcess", "TwinServer", "is_loopback_host"]

_START_TIMEOUT_S = 30.0
#: How long an idle HTTP/1.1 connection stays open: 400 s between client and Cloudflare (cloudflare-docs
#: fundamentals/reference/connection-limits, "Connection Keep-Alive HTTP/1.1"). uvicorn's own default, 5 s,
#: equals httpx's pool expiry, so a burst's client reused connections the server was closing (ReadError).
KEEP_ALIVE_S: Final = 400


def _make_context(
    context_or_options: TwinContext | TwinOptions | None, state: str, faults: str | None
) -> TwinContext:
    if isinstance(context_or_options, TwinContext):
        context = context_or_options
    else:
        context = TwinContext(db=Database(state), options=context_or_options or TwinOptions())
    if context.faults is None:
        context.faults = FaultInjector(faults)
    elif faults is not None:
        context.faults.set_spec(faults)
    return context


class _Urls:
    url: str

    @property
    def admin_token(self) -> str:
        raise NotImplementedError

    @property
    def admin_headers(self) -> dict[str, str]:
        """The header every admin API request carries (``cftwin.adminauth``)."""
        return admin_headers(self.admin_token)

    @property
    def api_base_url(self) -> str:
        return self.url + "/client/v4"

    @property
    def gateway_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def provider_base_url(self) -> str:
        return self.url + "/__providers__"

    @property
    def admin_url(self) -> str:
        return self.url + "/__twin__"


class TwinServer(_Urls):
    """The twin in a daemon thread of this process.

    **Parameters:**
    * context_or_options - a ``TwinContext`` to serve, or ``TwinOptions`` for a new one (default options).
    * host, port - where to listen; port 0 picks a free one (read ``.url`` after ``start()``).
    * state - SQLite file or ``":memory:"`` (only when a new context is made).
    * seed - applied before serving.
    * faults - a fault spec string (``cftwin.faults``).
    * sock - a socket already bound (to a loopback address), to listen on instead of ``host``/``port``: for a
      caller that must hand out the twin's URL before it serves.
    """

    def __init__(
        self,
        context_or_options: TwinContext | TwinOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: str = ":memory:",
        seed: TwinSeed | None = None,
        faults: str | None = None,
        allow_non_loopback: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        if sock is not None:
            host, port = sock.getsockname()[:2]
        if not is_loopback_host(host) and not allow_non_loopback:
            raise TwinConfigError(
                f"the twin binds to loopback only, not {host!r}",
                hint="Use 127.0.0.1, or pass allow_non_loopback=True if you really mean it",
            )
        self.context = _make_context(context_or_options, state, faults)
        self.host = host
        self.port = port
        self.seed = seed
        self._sock = sock
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def admin_token(self) -> str:
        return self.context.admin_token

    def start(self) -> TwinServer:
        """Serve; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("this TwinServer is already started")
        if self.seed is not None:
            apply_seed(self.context, self.seed)
        self.context.stopping.clear()
        app = build_app(self.context)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, timeout_keep_alive=KEEP_ALIVE_S,
        )
        server = uvicorn.Server(config)
        sockets = {"sockets": [self._sock]} if self._sock is not None else {}
        thread = threading.Thread(target=server.run, kwargs=sockets, name=f"cftwin-{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the twin failed to start on {self.host}:{self.port} (see the log above)")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the twin did not start within {_START_TIMEOUT_S:g} s")
            time.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown_host}:{port}"
        self.port = port
        self.context.options.gateway_base_url = self.gateway_base_url
        self._server, self._thread = server, thread
        return self

    def begin_stop(self) -> None:
        """Ask the server to stop, without waiting for it (``stop()`` waits): a caller with other work to do
        meanwhile (``aigw run`` seals its bundle) does not wait for uvicorn's shutdown first."""
        if self._server is not None:
            self.context.stopping.set()
            self._server.should_exit = True

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.begin_stop()
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def close(self) -> None:
        """Stop, and close the state database."""
        self.stop()
        self.context.db.close()

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class TwinProcess(_Urls):
    """The twin in a subprocess (``python -m cftwin serve``), e.g. to restart it on the same state file.

    **Parameters:**
    * state - SQLite file (``":memory:"`` dies with the process).
    * env_file - seed from this file (``--env-file``).
    * admin - enable the admin API.
    * faults - fault spec.
    * env - the child's environment (default: this process's).
    * delays - ``TwinOptions`` delays by name (``cftwin.timing``; e.g. ``NO_DELAYS``); unnamed ones keep
      ``cftwin serve``'s realistic defaults.
    """

    def __init__(
        self,
        *,
        state: str | Path = ":memory:",
        env_file: Path | str | None = None,
        admin: bool = False,
        faults: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        env: dict[str, str] | None = None,
        delays: Mapping[str, float] | None = None,
    ) -> None:
        self.state = str(state)
        self.delays = dict(delays or {})
        self.env_file = Path(env_file) if env_file is not None else None
        self.admin = admin
        self.faults = faults
        self.host = host
        self.port = port
        self.env = env
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def command(self, ready_file: Path) -> list[str]:
        cmd = [sys.executable, "-m", "cftwin", "serve", "--host", self.host, "--port", str(self.port),
               "--state", self.state, "--ready-file", str(ready_file)]
        if self.env_file is not None:
            cmd += ["--env-file", str(self.env_file)]
        if self.admin:
            cmd += ["--admin", "--admin-token-file", str(ready_file.with_name("admin-token"))]
        if self.faults is not None:
            cmd += ["--faults", self.faults]
        for name, seconds in self.delays.items():
            cmd += [f"--{name.replace('_', '-')}", f"{float(seconds)!r}"]
        return cmd

    def start(self, timeout_s: float = _START_TIMEOUT_S) -> TwinProcess:
        if self._proc is not None:
            raise RuntimeError("this TwinProcess is already started")
        self._tmp = tempfile.TemporaryDirectory(prefix="cftwin-")
        ready = Path(self._tmp.name) / "ready"
        self._proc = subprocess.Popen(self.command(ready), env=self.env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while True:
            if ready.is_file():
                text = ready.read_text().strip()
                if text:
                    self.url = text
                    return self
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise RuntimeError(f"cftwin serve exited with code {code} before serving (see its stderr)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cftwin serve did not start within {timeout_s:g} s")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def admin_token(self) -> str:
        token = read_admin_token(Path(self._tmp.name) / "admin-token") if self._tmp is not None else None
        if token is None:
            raise RuntimeError("this TwinProcess serves no admin API (start it with admin=True)")
        return token

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def __enter__(self) -> TwinProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
