"""`aigw`: argument parsing only. Each command calls one library function.

Errors that aigw raises on purpose print as one line and exit 1; a traceback only with ``--debug``.
``aigw run`` exits 0 only for a ``passed`` / ``rehearsal-passed`` bundle, 3 for an ``incomplete`` one
(``aigw.runner.EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aigw.errors import AigwError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aigw", description="Stand up a Cloudflare AI Gateway as a runbook, on evidence."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="execute the runbook notebooks with papermill into a run folder",
        description="Execute the runbook notebooks into a sealed run folder. Status and exit code: passed "
                    "(Cloudflare) or rehearsal-passed (twin): 0; failed: 1; incomplete (a criterion not run, "
                    "skipped or missing a provider): 3.")
    run.add_argument("--target", choices=["twin", "cloudflare"], default=None,
                     help="default: cloudflare when .dev.vars or the environment holds real credentials, else twin")
    run.add_argument("--env-file", type=Path, default=None, help="settings file (default: .dev.vars upwards)")
    run.add_argument("--notebooks", default=None,
                     help="comma-separated prefixes, e.g. 01,02 (default: the lifecycle, 01-05 on the twin and "
                     "01-04 on cloudflare; 06_rotate_keys, and 05 on cloudflare, only when named)")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="a line per cell and each notebook's parameters (default: a bar and a line per notebook)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="papermill parameter for every notebook that declares it (never a secret)")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: outputs/<UTC time>-<target>)")
    run.add_argument("--faults", default=None, help="twin only: fault injection spec (see docs/TWIN.md)")
    run.add_argument("--twin-state", default=None, metavar="FILE",
                     help="twin only: SQLite state file to keep between runs (default: in memory)")
    run.add_argument("--twin-log-system", choices=("legacy", "observability"), default=None,
                     help="twin only: the rehearsal account's log system (default legacy: created before "
                          "2026-09-24; observability: Logs powered by Workers Observability)")
    run.add_argument("--twin-plan", choices=("free", "paid"), default=None,
                     help="twin only: the rehearsal account's plan (default free)")

    run.add_argument("--allow-custom-endpoints", action="store_true",
                     help="cloudflare only: allow URLs that are not Cloudflare's (recorded in the evidence)")
    run.add_argument("--signing-key", type=Path, default=None, metavar="FILE",
                     help="sign the provenance with this Ed25519 key (default: $AIGW_SIGNING_KEY, else unsigned)")

    verify = commands.add_parser(
        "verify-evidence", help="check a run folder: signature, files, and what it says against its notebooks")
    verify.add_argument("run_dir", type=Path)
    verify.add_argument("--key", type=Path, default=None, metavar="PUB",
                        help="the signer's public key (PEM): check the signature too (authenticity)")

    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signing bundles")
    keygen.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="private key file (mode 0600; the public key goes to FILE.pub); "
                             "default: the user config folder's aigw/signing-key.pem")

    seal = commands.add_parser("seal", help="seal a JupyterLab sitting's folder into a bundle, as aigw run does")
    seal.add_argument("folder", type=Path, metavar="FOLDER", help="the sitting's folder, outputs/interactive-<UTC>")

    session = commands.add_parser("session", help="JupyterLab sittings: `aigw session new` starts a new one")
    session.add_argument("action", choices=["new"], help="new: notebooks opened from now on get a new run folder")

    commands.add_parser("setup", help="install the git filter that commits notebooks/*.ipynb without outputs")
    strip = commands.add_parser("strip-notebook", help="a notebook without outputs: stdin to stdout (the git "
                                "filter), or the named files in place")
    strip.add_argument("paths", type=Path, nargs="*", metavar="FILE")

    scan = commands.add_parser("scan-secrets", help="look for secret values and key shapes in files")
    scan.add_argument("paths", type=Path, nargs="+")
    scan.add_argument("--env-file", type=Path, default=None)

    # The twin is its own package with its own command line (cftwin); this is only a forwarding alias.
    twin = commands.add_parser("twin", help="the local twin of Cloudflare (same as the cftwin command)",
                               add_help=False)
    twin.add_argument("twin_args", nargs=argparse.REMAINDER, metavar="serve ...")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "twin":
        from cftwin.cli import main as twin_main

        return twin_main([*(["--debug"] if args.debug else []), *args.twin_args], prog="aigw twin")
    if args.command == "run":
        from aigw.runner import run_from_args

        return run_from_args(args)
    if args.command == "verify-evidence":
        from aigw.evidence import verify_from_args

        return verify_from_args(args)
    if args.command == "keygen":
        return _keygen(args)
    if args.command == "seal":
        from aigw.sitting import seal_from_args

        return seal_from_args(args)
    if args.command == "session":
        from aigw.sitting import new_from_args

        return new_from_args(args)
    if args.command == "setup":
        from aigw.clean_notebooks import setup_from_args

        return setup_from_args(args)
    if args.command == "strip-notebook":
        from aigw.clean_notebooks import strip_from_args

        return strip_from_args(args)
    if args.command == "scan-secrets":
        from aigw.secrets_scan import scan_from_args

        return scan_from_args(args)
    raise AssertionError(f"unhandled command {args.command}")


def _keygen(args: argparse.Namespace) -> int:
    from aigw.signing import generate_key_pair

    path: Path | None = args.out
    if path is None:
        import platformdirs

        path = Path(platformdirs.user_config_dir("aigw")) / "signing-key.pem"
    pair = generate_key_pair(path)
    print(f"private key: {pair.private} (mode 0600; keep it out of outputs/ and out of git)")
    print(f"public key:  {pair.public} (give it to approvers: aigw verify-evidence DIR --key {pair.public})")
    print(f"key id:      {pair.key_id}")
    print(f"sign runs:   export AIGW_SIGNING_KEY={pair.private}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except AigwError as exc:
        if args.debug:
            raise
        print(f"aigw: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        # The runner's RunInterrupted says which signal; a bare KeyboardInterrupt is Ctrl-C.
        signum = int(getattr(stop, "signum", signal.SIGINT))
        print("aigw: interrupted" if signum == signal.SIGINT else f"aigw: stopped by {signal.Signals(signum).name}",
              file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
