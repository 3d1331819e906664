"""``cftwin``: the twin's command line (``cftwin serve``; ``aigw twin serve`` forwards here).

A bad setting prints as one line and exits 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cftwin.accounts import created_at_for
from cftwin.errors import TwinConfigError
from cftwin.seed import TwinSeed
from cftwin.timing import NO_DELAYS, REALISTIC_DELAYS

__all__ = ["account_options", "build_parser", "delay_options", "main"]


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


def main(argv: Sequence[str] | None = None, *, prog: str = "cftwin") -> int:
    args = build_parser(prog).parse_args(argv)
    # Apart from aigw.cli's alike error exit on purpose: the twin imports nothing from aigw (docs/ARCHITECTURE.md).
    try:
        from cftwin.server import serve_from_args

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
