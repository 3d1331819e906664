"""The run folder of ``aigw run``: new or empty before the run (``check_run_folder``), claimed under a
fresh name (``claim_run_dir``), released when nothing was written, and what a stopped run says about it
(sealed only when it verifies)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from pathlib import Path

from aigw.errors import AigwError, ConfigError

__all__ = ["check_run_folder", "claim_run_dir", "release_if_empty", "report_stop", "say", "sealed_status"]


def say(message: str) -> None:
    """One line of ``aigw run``'s own, to stderr."""
    print(f"aigw: {message}", file=sys.stderr, flush=True)


def check_run_folder(run_dir: Path, *, twin_state: str | None = None) -> None:
    """The run folder must be new or empty: sealing lists, scans and (on a secret hit) deletes what the
    run wrote there, so a user's files or an earlier run's must not be in it. Checked before anything runs."""
    if run_dir.exists() or run_dir.is_symlink():
        hint = "Choose a new or empty folder, or leave --out out for a fresh outputs/<UTC time>-<target>"
        if not run_dir.is_dir():
            raise ConfigError(f"--out {str(run_dir)!r} is not a folder", hint=hint)
        try:
            entries = sum(1 for _ in run_dir.iterdir())
        except OSError as exc:
            raise ConfigError(f"--out {str(run_dir)!r} cannot be read ({exc.strerror})", hint=hint) from None
        if entries:
            raise ConfigError(f"--out {str(run_dir)!r} is not empty ({entries} entries): the run would seal "
                              "them into its evidence", hint=hint)
    if twin_state and twin_state != ":memory:" and Path(twin_state).resolve().is_relative_to(run_dir.resolve()):
        raise ConfigError(f"--twin-state {twin_state!r} is inside the run folder (the twin's state would be "
                          "sealed into the evidence)", hint="Keep the state file outside --out")



def sealed_status(run_dir: Path) -> str | None:
    """The status of ``run_dir``'s evidence when the folder is sealed (it verifies against its
    manifest); None when it is not."""
    from aigw.evidence import verify_bundle

    try:
        verify_bundle(run_dir)
        status = json.loads((run_dir / "evidence.json").read_text(encoding="utf-8"))["status"]
    except (AigwError, OSError, ValueError, KeyError, TypeError):
        return None
    return str(status)


def report_stop(run_dir: Path | None) -> None:
    """What a stopped run says: sealed only when the folder verifies (never on the sealer's word)."""
    again = "run the same command again to finish: the notebooks converge on the same state"
    if run_dir is None or not run_dir.exists():
        say(f"stopped before the run folder was made: nothing ran, nothing to seal; {again}")
        return
    print(f"run folder: {run_dir}")
    status = sealed_status(run_dir)
    if status is None:
        say(f"stopped: {run_dir} is NOT sealed (the stop came before its evidence was complete); "
                  "do not use it as evidence; " + again)
    else:
        say(f"stopped: what ran is sealed as {status} in {run_dir} (SUMMARY.md shows where); {again}")


def claim_run_dir(stamp_dir: Path) -> Path:
    """Create the run folder ``stamp_dir`` (or ``stamp_dir-2``, ``-3``, ...) exclusively, and return it.

    ``mkdir`` without ``exist_ok`` is atomic: of two runs started in the same second, one gets the
    name and the other the next suffix, so no two runs ever share a folder (and one lose its evidence).
    """
    stamp_dir.parent.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count(1):
        candidate = stamp_dir if suffix == 1 else stamp_dir.with_name(f"{stamp_dir.name}-{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends


def release_if_empty(run_dir: Path) -> None:
    """Remove a claimed run folder that nothing was written to (a refusal before the run): no empty trace."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()

