"""``cftwin``: the twin's command line (``cftwin serve``; ``aigw twin serve`` forwards here).

A bad setting prints as one line and exits 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from cftwin.accounts import created_at_for
from cftwin.adminauth import admin_token_path, write_admin_token
from cftwin.context import TwinContext, TwinOptions
from cftwin.db import Database
from cftwin.errors import TwinConfigError
from cftwin.faults import FaultInjector
from cftwin.seed import TwinSeed, seed_from_env_file
from cftwin.timing import NO_DELAYS, REALISTIC_DELAYS
from cftwin.validation import is_loopback_host

__all__ = ["account_options", "build_parser", "delay_options", "main", "serve_from_args"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what, and where the help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(prog: str = "cftwin") -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=prog, description="A local twin of the parts of Cloudflare an AI Gateway "
                                     "runbook touches: the v4 API, the gateway data plane, emulated providers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the twin over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--state", default=":memory:", help="SQLite file, or :memory:")
    serve.add_argument("--env-file", type=Path, default=None, help="seed account, tokens and keys from this file")
    serve.add_argument("--admin", action="store_true", help="enable the /__twin__ admin API (loopback only)")
    serve.add_argument("--admin-token-file", type=Path, default=None,
                       help="write the admin API's token here (mode 0600; default: STATE.admin-token)")
    serve.add_argument("--faults", default=None, help="fault injection spec (see docs/TWIN.md)")
    serve.add_argument("--ready-file", type=Path, default=None, help="write the base URL here once serving")
    serve.add_argument("--plan", choices=("free", "paid"), default=None,
                       help="the seeded account's plan (gateway and log limits); default free")
    serve.add_argument("--log-system", choices=("legacy", "observability"), default=None,
                       help="the seeded account's log system: legacy (created before 2026-09-24, the default) or "
                            "observability (created since: Logs powered by Workers Observability)")
    # Time on Cloudflare (cftwin.timing); the defaults are the realistic ones, --no-delays turns all off.
    serve.add_argument("--log-delay-s", type=float, default=None, metavar="S",
                       help=f"a log reaches the logs API S seconds after the request "
                            f"(default {REALISTIC_DELAYS['log_delay_s']:g})")
    serve.add_argument("--cache-write-delay-s", type=float, default=None, metavar="S",
                       help=f"a cached response is readable S seconds after the MISS that stored it "
                            f"(default {REALISTIC_DELAYS['cache_write_delay_s']:g})")
    serve.add_argument("--secret-pending-s", type=float, default=None, metavar="S",
                       help=f"a new secret is 'pending' for S seconds, then 'active' "
                            f"(default {REALISTIC_DELAYS['secret_pending_s']:g})")
    serve.add_argument("--no-delays", action="store_true",
                       help="no delays at all (everything visible at once; the options above still win)")
    return parser


def delay_options(args: argparse.Namespace) -> dict[str, float]:
    """The ``TwinOptions`` delays that ``serve``'s arguments ask for; a negative one is a TwinConfigError."""
    delays = dict(NO_DELAYS if args.no_delays else REALISTIC_DELAYS)
    for name in REALISTIC_DELAYS:
        value: float | None = getattr(args, name)
        if value is None:
            continue
        if value < 0:
            raise TwinConfigError(f"--{name.replace('_', '-')} is {value:g}, below 0",
                                  hint="Give a number of seconds, 0 or more (0: no delay)")
        delays[name] = value
    return delays


def account_options(seed: TwinSeed, args: argparse.Namespace) -> TwinSeed:
    """``seed`` with the plan and creation date that ``--plan`` / ``--log-system`` ask for."""
    plan = getattr(args, "plan", None) or seed.plan
    log_system = getattr(args, "log_system", None)
    created_at = created_at_for(log_system) if log_system else seed.created_at
    return dataclasses.replace(seed, plan=plan, created_at=created_at)


def _write_ready_file(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(url + "\n")
    os.replace(tmp, path)


def _admin_token_file(args: argparse.Namespace) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """``--admin-token-file``, else beside the state, else (``:memory:``) in a private temporary folder."""
    if args.admin_token_file is not None:
        return Path(args.admin_token_file), None
    beside = admin_token_path(str(args.state))
    if beside is not None:
        return beside, None
    folder = tempfile.TemporaryDirectory(prefix="cftwin-admin-")  # mode 0700
    return Path(folder.name) / "admin-token", folder


def _check_listen(host: str, port: int) -> None:
    """One line for a port out of range, a host that does not resolve, or an address in use (uvicorn
    would log it in a thread and leave a traceback); the socket is closed again at once."""
    if not 0 <= port <= 65535:
        raise TwinConfigError(f"--port {port} is not a port", hint="Give 0 (a free one) to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TwinConfigError(f"--host {host!r} does not resolve ({exc})", hint="Use 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: a port whose last connections sit in TIME_WAIT (a twin just restarted) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TwinConfigError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                  hint="Choose another --port (0: a free one), or stop what is using it") from None


def serve_from_args(args: argparse.Namespace) -> int:
    """``cftwin serve``: serve until SIGINT/SIGTERM; 0 on a clean stop."""
    # The server (uvicorn, Starlette) is imported only to serve: `cftwin --help` and a bad setting stay quick.
    from cftwin.server import TwinServer

    host: str = args.host
    options = TwinOptions(admin_enabled=bool(args.admin))
    options.update(delay_options(args))
    try:
        faults = FaultInjector(args.faults) if args.faults else FaultInjector()
    except ValueError as exc:
        raise TwinConfigError(str(exc), hint="Fix --faults (grammar: docs/TWIN.md)") from None
    # Every setting is checked before the state file is opened (and so created): a bad one leaves nothing.
    seed = seed_from_env_file(args.env_file) if args.env_file is not None else None
    if seed is not None and seed.aig_token is None:
        print(f"cftwin: warning: {args.env_file} sets no CF_AIG_TOKEN; CLOUDFLARE_API_TOKEN holds AI Gateway Read, "
              "Write and Secrets Store Write but not Run, so the data plane answers it 401 / 2009, as Cloudflare "
              "would", file=sys.stderr)
    if seed is not None:
        seed = account_options(seed, args)
    elif args.plan or args.log_system:
        raise TwinConfigError("--plan and --log-system describe the seeded account",
                              hint="Add --env-file, or create the account through the admin API")
    _check_listen(host, int(args.port))
    if args.ready_file is not None and not Path(args.ready_file).parent.is_dir():
        raise TwinConfigError(f"--ready-file {str(args.ready_file)!r} is in a folder that does not exist",
                              hint="Create the folder first, or give a path in an existing one")
    if not is_loopback_host(host):
        print(f"cftwin: warning: the twin is serving on non-loopback host {host!r}; anyone who can reach it "
              "can use its tokens", file=sys.stderr)
    context = TwinContext(db=Database(str(args.state)), options=options, faults=faults)
    server = TwinServer(context, host=host, port=int(args.port), seed=seed, allow_non_loopback=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, on_signal)
    token_file: Path | None = None
    token_dir: tempfile.TemporaryDirectory[str] | None = None
    try:
        server.start()
        if args.admin:
            token_file, token_dir = _admin_token_file(args)
            write_admin_token(token_file, context.admin_token)
        if args.ready_file is not None:
            _write_ready_file(Path(args.ready_file), server.url)
        where = f"seeded from {args.env_file}" if seed is not None else "not seeded (use --env-file or the admin API)"
        admin = f"; admin token in {token_file}" if token_file is not None else ""
        print(f"cftwin: twin serving at {server.url} ({where}; state {args.state}{admin})", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        context.db.close()
        # The token dies with the twin: a stale file would only mislead a client.
        if token_file is not None:
            token_file.unlink(missing_ok=True)
        if token_dir is not None:
            token_dir.cleanup()
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "cftwin") -> int:
    args = build_parser(prog).parse_args(argv)
    # Apart from aigw.cli's alike error exit on purpose: the twin imports nothing from aigw (docs/ARCHITECTURE.md).
    try:
        return serve_from_args(args)
    except TwinConfigError as exc:
        if args.debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
