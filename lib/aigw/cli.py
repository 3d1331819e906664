"""`aigw`: argument parsing, and the adapters (``*_from_args``) from parsed arguments to the library's
typed functions; the library never sees an ``argparse.Namespace``.

Errors that aigw raises on purpose print as one line and exit 1; a traceback only with ``--debug``.
``aigw run`` exits 0 only for a ``passed`` / ``rehearsal-passed`` bundle, 3 for an ``incomplete`` one
(``aigw.runner.EXIT_CODES``). ``aigw run`` is the run's entrance: ``run_from_args`` resolves everything
once into a ``RunPlan`` (``aigw.plan.plan_run``) and hands it to ``aigw.runner.run_plan``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aigw.errors import AigwError

__all__ = ["build_parser", "main", "run_from_args", "scan_from_args", "seal_from_args", "session_new_from_args",
           "setup_from_args", "strip_from_args", "verify_from_args"]


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
    if args.command == "verify-evidence":
        return verify_from_args(args)
    adapters = {"run": run_from_args, "keygen": _keygen, "seal": seal_from_args, "session": session_new_from_args,
                "setup": setup_from_args, "strip-notebook": strip_from_args, "scan-secrets": scan_from_args}
    adapter = adapters.get(args.command)
    if adapter is None:
        raise AssertionError(f"unhandled command {args.command}")
    return adapter(args)


def run_from_args(args: argparse.Namespace) -> int:
    """``aigw run``: plan once, run the plan, print the run folder and the criteria table (``aigw.runner``)."""
    from aigw.import_tax import HTTP_EXTRAS, without

    with without(HTTP_EXTRAS):  # the runner imports httpx (its twin's client): 0.06 s of its start before the plan
        from aigw import runner
    from aigw.errors import RunError
    from aigw.plan import RunPlan, plan_run
    from aigw.progress import progress
    from aigw.run_folder import release_if_empty, report_stop, say
    from aigw.stop_signals import stop_signals

    progress.verbose = bool(getattr(args, "verbose", False))
    out: Path | None = args.out
    # A refused --out (not empty, not a folder) is the user's: never named as this run's folder.
    try:
        ours = out is None or not out.exists() or (out.is_dir() and not any(out.iterdir()))
    except OSError:
        ours = False
    plan: RunPlan | None = None
    # From the first line on, a SIGINT or SIGTERM is the runner's to handle (aigw.stop_signals).
    with stop_signals():
        try:
            plan = plan_run(
                target=args.target, notebooks=args.notebooks, run_dir=out, env_file=args.env_file,
                parameters={name: _parameter_value(value) for name, value in (args.parameter or [])},
                faults=args.faults, twin_state=getattr(args, "twin_state", None),
                twin_account={k: v for k in ("plan", "log_system")
                              if (v := getattr(args, f"twin_{k}", None)) is not None},
                allow_custom_endpoints=bool(getattr(args, "allow_custom_endpoints", False)),
                signing_key=getattr(args, "signing_key", None), say=say,
            )
            result = runner.run_plan(plan)
        except (AigwError, KeyboardInterrupt) as stop:
            # A refused plan removed the folder it claimed itself; a refused or stopped run's is removed here
            # while empty. --out is named as the operator wrote it (the plan holds it resolved).
            if plan is not None and plan.claimed:
                release_if_empty(plan.run_dir)
            run_dir = out or (plan.run_dir if plan is not None else None)
            shown = run_dir if ours and run_dir is not None and run_dir.exists() else None
            if isinstance(stop, KeyboardInterrupt):
                report_stop(shown)
            elif shown is not None:
                print(f"run folder: {shown}")
            raise
    print(f"run folder: {result.run_dir}")
    if result.bundle is not None:
        print(f"status: {result.bundle.status}")
        print(result.bundle.table())
    if result.failure is not None:
        raise RunError(str(result.failure), notebook=result.failure.notebook, cell=result.failure.cell)
    if result.bundle is None:
        return runner.EXIT_FAILED
    status = result.bundle.status
    if status in {"failed", "incomplete"}:
        # One line, to stderr as every error: what is missing and why (SUMMARY.md's "Why:" line).
        print(f"aigw: {status}: {result.bundle.why}", file=sys.stderr)
    return runner.EXIT_CODES.get(status, runner.EXIT_FAILED)


def _parameter_value(text: str) -> object:
    from aigw.plan import parse_parameter_value

    return parse_parameter_value(text)


def seal_from_args(args: argparse.Namespace) -> int:
    """``aigw seal FOLDER``: prints the folder, its status and the criteria, as ``aigw run`` does."""
    from aigw.paths import project_root
    from aigw.sitting import seal_sitting

    folder = Path(args.folder).resolve()
    # The sitting's project is the folder that holds its outputs/ (the notebooks it ran are there).
    root = folder.parent.parent if folder.parent.name == "outputs" else project_root(Path.cwd())
    bundle = seal_sitting(folder, root=root)
    print(f"run folder: {bundle.run_dir}")
    print(f"status: {bundle.status}")
    print(bundle.table())
    return 0


def session_new_from_args(args: argparse.Namespace) -> int:
    """``aigw session new``."""
    from aigw.paths import project_root
    from aigw.sitting import new_sitting

    sitting = new_sitting(project_root(Path(getattr(args, "root", None) or Path.cwd())) / "outputs")
    print(f"aigw: new sitting {sitting.run_id}: notebooks opened from now on write to {sitting.run_dir}")
    return 0


def verify_from_args(args: argparse.Namespace) -> int:
    """``aigw verify-evidence RUN_DIR [--key PUB]``: what was checked, then what the bundle says of itself."""
    from aigw.evidence import verify_evidence
    from aigw.signing import load_public_key

    key_path = getattr(args, "key", None)
    public_key = load_public_key(key_path) if key_path is not None else None
    for line in verify_evidence(args.run_dir, public_key).lines(args.run_dir):
        print(line)
    print(f"aigw: {_sealed_status(Path(args.run_dir))}")
    return 0


def _sealed_status(folder: Path) -> str:
    """What the sealed bundle says of itself: its status, production or rehearsal, and why (an intact
    bundle may still be a failed or incomplete one: integrity is not approval)."""
    import json

    try:
        doc = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "status unknown: evidence.json is missing or unreadable"
    status = str(doc.get("status", "unknown"))
    kind = "production evidence" if doc.get("production_evidence") else "rehearsal: not production evidence"
    why = f"; why: {doc['why']}" if doc.get("why") else ""
    return f"status {status} ({kind}){why}"


def setup_from_args(args: argparse.Namespace) -> int:
    """``aigw setup``."""
    from aigw.clean_notebooks import install_filter
    from aigw.paths import repo_root

    for line in install_filter(repo_root()):
        print(f"aigw: {line}")
    return 0


def strip_from_args(args: argparse.Namespace) -> int:
    """``aigw strip-notebook [FILE...]``: the git filter (stdin to stdout), or the files cleaned in place."""
    from aigw.clean_notebooks import strip_notebook_text

    if not args.paths:
        sys.stdout.write(strip_notebook_text(sys.stdin.read()))
        return 0
    for path in args.paths:
        text = path.read_text(encoding="utf-8")
        cleaned = strip_notebook_text(text)
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8")
            print(f"aigw: {path}: outputs stripped")
    return 0


def scan_from_args(args: argparse.Namespace) -> int:
    """``aigw scan-secrets PATH... [--env-file F]``: print findings; 1 when there are any."""
    from aigw.config import find_env_file, read_env
    from aigw.secrets_scan import scan_paths, secrets_from_environ

    env_file = getattr(args, "env_file", None) or find_env_file()
    secrets = secrets_from_environ(read_env(env_file))
    findings = scan_paths(args.paths, secrets)
    for finding in findings:
        print(finding)
    checked = f"{len(secrets)} configured secret value(s) and key shapes"
    if findings:
        print(f"aigw: {len(findings)} finding(s); checked {checked}")
        return 1
    print(f"aigw: no secrets found; checked {checked}")
    return 0


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


def entry() -> int:
    """The ``aigw`` command: ``main``, with the process's exit spared the collection of its heap
    (``aigw.fast_exit``; not in ``main``, which tests call in their own process)."""
    from aigw.fast_exit import leaving

    return leaving(main())


if __name__ == "__main__":
    sys.exit(entry())
