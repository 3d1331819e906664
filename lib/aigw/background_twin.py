"""The twin the runbook runs for itself: its whole lifecycle (start, find, check it is ours, stop), in one place.

Two kinds, one owner of each:

* **A run's twin** (``aigw run --target twin``): a ``TwinServer`` thread of the runner's process on a free
  loopback port, seeded from ``--env-file`` or with generated credentials, and (for notebook 07) a local
  S3 bucket standing in for R2; ``serve_for_run`` starts them and stops both when the run ends.
* **A sitting's twin** (a notebook opened in JupyterLab without ``aigw run``): a detached
  ``python -m cftwin serve`` on ``127.0.0.1:$AIGW_TWIN_PORT`` (8787) that outlives the kernel, with its state,
  seed (mode 0600) and admin token in ``cache_dir()``; ``ensure_background_twin`` finds it or starts it,
  and restarts it for a new seed only when it is ours (``is_twin_process``).

This module and the ``aigw twin`` alias are the runbook's only ways into ``cftwin`` (import-linter checks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets as _random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from aigw.config import PROVIDER_KEY_VARS, PROVIDERS, read_env
from aigw.errors import ConfigError
from aigw.hosts import count_url
from aigw.paths import cache_dir
from aigw.twin_urls import TwinUrls

if TYPE_CHECKING:
    # Re-exported for the plan's annotations: the plan holds a seed, and only this module reaches cftwin.
    from cftwin.seed import TwinSeed as TwinSeed

__all__ = [
    "DEFAULT_TWIN_PORT",
    "RunTwin",
    "check_faults",
    "ensure_background_twin",
    "is_twin_process",
    "is_twin_serving",
    "rehearsal_seed",
    "serve_for_run",
    "start_background_twin",
    "stop_background_twin",
    "twin_admin_headers",
    "twin_environ",
]

DEFAULT_TWIN_PORT: Final = 8787
_TWIN_START_TIMEOUT_S: Final = 30.0
_TWIN_STOP_TIMEOUT_S: Final = 10.0


def twin_environ(base_url: str) -> dict[str, str]:
    """The URL variables that aim the settings at a twin served at ``base_url``."""
    urls = TwinUrls.at(base_url)
    return {
        "CLOUDFLARE_API_BASE_URL": urls.api,
        "CLOUDFLARE_GATEWAY_BASE_URL": urls.gateway,
        "AIGW_PROVIDER_BASE_URL": urls.providers,
    }


def twin_admin_headers() -> dict[str, str]:
    """The admin token header of the twin the session talks to; {} when there is none.

    The one place the runbook reads it: from ``$AIGW_TWIN_ADMIN_TOKEN_FILE`` (a twin served by hand with
    ``--admin-token-file``), else beside the background twin's state. A twin writes a new token, mode
    0600, each time it starts.
    """
    from cftwin.adminauth import admin_headers, admin_token_path, read_admin_token

    configured = os.environ.get("AIGW_TWIN_ADMIN_TOKEN_FILE")
    path = Path(configured) if configured else admin_token_path(cache_dir() / "twin.sqlite")
    token = read_admin_token(path) if path is not None else None
    return admin_headers(token) if token else {}


# --- a sitting's twin: a detached process ---------------------------------------------------------------


def is_twin_serving(base_url: str) -> bool:
    """True when a twin answers its health check at ``base_url`` (ours or one started by hand)."""
    count_url(base_url)
    try:
        health = httpx.get(TwinUrls.at(base_url).admin("health"), headers=twin_admin_headers(), timeout=2.0)
        return health.status_code == 200
    except httpx.HTTPError:
        return False


def is_twin_process(pid: int, port: int) -> bool:
    """True when ``pid`` is a twin serving ``port``: its command line (``/proc/PID/cmdline``) runs
    ``cftwin serve`` with ``--port PORT``. A pid file outlives its process, and by now the number may
    be anyone's: only a process that passes this check is ever signalled."""
    if pid <= 1:  # 0, -1 and 1 would signal the process group, every process, init
        return False
    try:
        words = [w.decode(errors="replace") for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        # ASSUMPTION: without /proc (not Linux) or once the process is gone, nothing can be told: no signal.
        return False
    cftwin = any(w == "cftwin" or w.endswith("/cftwin") for w in words)
    ports = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "--port"}
    ports |= {w.removeprefix("--port=") for w in words if w.startswith("--port=")}
    return cftwin and "serve" in words and str(port) in ports


def stop_background_twin(pid_file: Path, port: int) -> bool:
    """Stop the twin ``pid_file`` names when it is ours (``is_twin_process``) and wait until it is gone;
    True when nothing serves ``port`` any more. A pid that is not that twin (stale file, number reused) is
    never signalled: the file is dropped and a twin still serving is left as one started by hand."""
    base_url = f"http://127.0.0.1:{port}"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    if not is_twin_process(pid, port):
        pid_file.unlink(missing_ok=True)
        return not is_twin_serving(base_url)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _TWIN_STOP_TIMEOUT_S
    while is_twin_serving(base_url) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not is_twin_serving(base_url)


def start_background_twin(folder: Path, port: int, seed_file: Path) -> int:
    """Start ``cftwin serve`` detached on ``port`` (state and log in ``folder``), wait until it answers,
    record its pid in ``folder/twin.pid`` and return it."""
    ready = folder / f"twin.ready.{_random.token_hex(4)}"
    log = open(folder / "twin.log", "ab")  # noqa: SIM115 - handed to the detached process
    process = subprocess.Popen(
        [sys.executable, "-m", "cftwin", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--state", str(folder / "twin.sqlite"), "--env-file", str(seed_file), "--admin",
         "--ready-file", str(ready)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
    )
    log.close()
    (folder / "twin.pid").write_text(str(process.pid))
    deadline = time.monotonic() + _TWIN_START_TIMEOUT_S
    while not is_twin_serving(f"http://127.0.0.1:{port}"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise ConfigError(
                f"the local twin did not start on port {port}",
                hint=f"See {folder / 'twin.log'}; set AIGW_TWIN_PORT to use another port",
            )
        time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    return process.pid


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _seed_environ(env_file_values: Mapping[str, str], seed_file: Path) -> dict[str, str]:
    """The twin's seed: kept values, generated where missing, the operator's values (``.dev.vars`` and
    the environment, as ``read_env`` merges them) over them."""
    from cftwin.seed import generated_seed

    kept = read_env(seed_file, environ={}) if seed_file.is_file() else {}
    seed = {k: v for k, v in generated_seed().to_environ().items() if not k.endswith("_BASE_URL")}
    seed.update(kept)
    for name in list(seed):
        if env_file_values.get(name) and not name.endswith("_BASE_URL"):
            seed[name] = env_file_values[name]
    return seed


def ensure_background_twin(env_file_values: Mapping[str, str] | None = None, *,
                           withhold_missing_keys: bool = False) -> dict[str, str]:
    """Start (or reuse) the detached twin for interactive rehearsal; its environment for the settings.

    The twin listens on ``127.0.0.1:$AIGW_TWIN_PORT`` (8787), keeps its state in
    ``<cache>/twin.sqlite`` and its seed in ``<cache>/twin.env`` (mode 0600). A running twin whose
    seed changed (new ``.dev.vars`` values) is restarted when this process family started it.

    ``withhold_missing_keys`` (the operator has a ``.dev.vars``): a provider key the operator's values
    leave out is not handed to the settings, so notebook 02 asks for it; the twin still accepts the
    rehearsal key it generated for that provider (in ``twin.env``), and nothing else.
    """
    port = int(os.environ.get("AIGW_TWIN_PORT", DEFAULT_TWIN_PORT))
    base_url = f"http://127.0.0.1:{port}"
    folder = cache_dir()
    seed_file, pid_file = folder / "twin.env", folder / "twin.pid"
    seed = _seed_environ(env_file_values or {}, seed_file)
    previous = read_env(seed_file, environ={}) if seed_file.is_file() else {}
    changed = {k: v for k, v in previous.items() if not k.endswith("_BASE_URL")} != seed
    if changed:
        _write_private(seed_file, "".join(f"{k}={_quote(v)}\n" for k, v in sorted(seed.items())))
    alive = is_twin_serving(base_url)
    if alive and changed and pid_file.is_file():
        # ASSUMPTION: a twin we started (pid recorded) may be restarted to pick up a new seed; one
        # started by hand is left alone and keeps its own seed.
        alive = not stop_background_twin(pid_file, port)
    if not alive:
        start_background_twin(folder, port, seed_file)
    given = {name: value for name, value in seed.items()
             if not (withhold_missing_keys and name in PROVIDER_KEY_VARS.values()
                     and not (env_file_values or {}).get(name))}
    return {**given, **twin_environ(base_url)}


# --- a run's twin: a thread of the runner ---------------------------------------------------------------


def check_faults(spec: str) -> None:
    """A bad ``--faults`` is one line before anything starts (the twin's parser says what is wrong)."""
    from cftwin.faults import parse_fault_spec

    try:
        parse_fault_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}", hint="Fix the spec (grammar: docs/TWIN.md#fault-injection)") from None


def rehearsal_seed(env_file: Path | None, *, gateway_id: str, twin_state: str | None,
                   account: Mapping[str, str]) -> TwinSeed:
    """What a run's twin knows: ``env_file``'s credentials, else generated ones for ``gateway_id`` (in the
    account a ``twin_state`` file keeps); with the plan and log system of ``account`` (``--twin-plan``,
    ``--twin-log-system``). The caller keeps the environment's settings out of the twin's reading of the file."""
    from cftwin.accounts import created_at_for
    from cftwin.errors import TwinConfigError
    from cftwin.seed import generated_seed, kept_seed_account, seed_from_env_file

    try:
        # A state file keeps its seed's account: a re-run converges on what a killed run half-made.
        kept_account = kept_seed_account(twin_state) if twin_state else None
        seed = (seed_from_env_file(env_file) if env_file is not None
                else generated_seed(gateway_id, account_id=kept_account))
    except TwinConfigError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from None
    changes: dict[str, Any] = {}
    if "plan" in account:
        changes["plan"] = account["plan"]
    if "log_system" in account:
        changes["created_at"] = created_at_for(account["log_system"])  # type: ignore[arg-type]
    return dataclasses.replace(seed, **changes) if changes else seed


def _create_private(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 before SQLite does, with the runbook's own line for a folder
    that does not exist. The twin then makes any state file 0600, an existing one too (cftwin.db)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"--twin-state {str(path)!r}: cannot create it ({exc.strerror})",
                          hint="Choose a file in a folder that exists and that you can write") from None


@dataclass
class RunTwin:
    """A run's twin: where it serves and the variables that aim a kernel at it, known from the moment its port
    is bound; ``serve()`` then starts it. The runner launches the first kernels in between, so that their boot
    overlaps the twin's import and start (they reach the twin only once their notebook runs)."""

    url: str
    #: The seed's credentials and the twin's URLs, plus 07's bucket settings when the run has a bucket.
    environ: Mapping[str, str]
    #: The request budget the twin enforces, as ``AIGW_API_BUDGET`` writes it (``REQUESTS/SECONDS``).
    api_budget: str
    bucket_url: str | None = None
    _serve: Callable[[], None] | None = dataclasses.field(default=None, repr=False)
    _stop_soon: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    def serve(self) -> None:
        """Start serving (returns once the twin answers)."""
        if self._serve is not None:
            start, self._serve = self._serve, None
            start()

    def begin_stop(self) -> None:
        """Tell the twin to stop serving (it is waited for when the block ends): once no notebook will call it."""
        if self._stop_soon is not None:
            self._stop_soon()


def _loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, for the twin to listen on (the port is the kernels' URL)."""
    # IPPROTO_TCP said, not left 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # Nagle's algorithm and delayed ACKs held each answer about 40 ms (03's pairs took 70 ms instead of 30).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def serve_for_run(seed: TwinSeed, *, state: str | None, faults: str | None, with_bucket: bool) -> Iterator[RunTwin]:
    """A run's twin (and, ``with_bucket``, a local S3 bucket for Logpush), stopped when the block ends. The
    port is bound and the bucket serves on entry; the twin itself serves from ``RunTwin.serve()``."""
    from cftwin.context import TwinOptions

    # The rehearsal's providers take 25 +/- 10 ms, so that 03's and 04's latency figures are not all 0.
    options = TwinOptions(provider_latency_ms=dict.fromkeys(PROVIDERS, 25.0), provider_jitter_ms=10.0)
    if state and state != ":memory:":
        _create_private(Path(state))
    with contextlib.ExitStack() as stack:
        bucket_env: dict[str, str] = {}
        bucket_url: str | None = None
        if with_bucket:
            bucket_env, bucket_url = _rehearsal_bucket(stack)
            options.r2_endpoint_url = bucket_url
        # The state is opened now, before any kernel starts: a file that is not the twin's is one line, and
        # nothing was launched for it.
        context = _run_context(options, state or ":memory:", faults)
        stack.callback(context.db.close)
        sock = stack.enter_context(_loopback_socket())
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        def start() -> None:
            from cftwin.server import TwinServer

            twin = TwinServer(context, seed=seed, sock=sock).start()
            stack.callback(twin.stop)
            run_twin._stop_soon = twin.begin_stop

        run_twin = RunTwin(url=url, environ={**seed.to_environ(url), **bucket_env},
                           api_budget=f"{options.api_budget_requests}/{options.api_budget_window_s:g}",
                           bucket_url=bucket_url, _serve=start)
        yield run_twin


def _run_context(options: Any, state: str, faults: str | None) -> Any:
    """The run's twin context (its state open, its fault injector set); ``ConfigError`` for a state file that
    is not the twin's."""
    from cftwin.context import TwinContext
    from cftwin.db import Database
    from cftwin.errors import TwinConfigError
    from cftwin.faults import FaultInjector

    try:
        context = TwinContext(db=Database(state), options=options)
    except TwinConfigError as exc:  # a state file that is not the twin's: one line
        raise ConfigError(exc.message, hint=exc.hint) from None
    context.faults = FaultInjector(faults)
    return context


def _rehearsal_bucket(stack: contextlib.ExitStack) -> tuple[dict[str, str], str]:
    """A local S3 bucket standing in for the operator's R2 bucket, and 07's settings for it. The rehearsal's
    private key goes to a temporary folder outside the run folder (the bundle never holds it)."""
    from cftwin.logpush.bucket import LocalBucket

    bucket = LocalBucket("aigw-rehearsal").start()
    stack.callback(bucket.stop)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="aigw-logpush-"))
    env = {
        "AIGW_LOGPUSH_BUCKET": bucket.bucket,
        "AIGW_LOGPUSH_ACCESS_KEY_ID": bucket.access_key_id,
        "AIGW_LOGPUSH_SECRET_ACCESS_KEY": bucket.secret_access_key,
        "AIGW_LOGPUSH_ENDPOINT": bucket.url,
        "AIGW_LOGPUSH_PRIVATE_KEY_FILE": str(Path(folder) / "logpush.pem"),
    }
    return env, bucket.url
