"""A sitting: one operator's JupyterLab session, one run id and one ``outputs/interactive-<UTC>/`` folder.

Every notebook opened without ``aigw run`` joins the current sitting, named in ``outputs/.sitting.json``
(run id, folder, target; no secret), so 04 finds the probes 03 saved and one folder holds the sitting's
files. ``aigw session new`` starts a new sitting; ``aigw seal outputs/interactive-…`` seals one into a
bundle with ``evidence.seal_bundle``, as ``aigw run`` does: the notebooks saved in ``notebooks/`` whose
outputs belong to the sitting are copied in, then exported, scanned for secrets and hashed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aigw.config import find_env_file, read_env
from aigw.errors import ConfigError, EvidenceError
from aigw.evidence import Bundle, read_checks, seal_bundle
from aigw.text import utc_stamp

__all__ = ["SITTING_FILE", "Sitting", "current_sitting", "join_sitting", "new_sitting", "seal_sitting"]

SITTING_FILE: Final = ".sitting.json"
_PREFIX: Final = "interactive-"


@dataclass(frozen=True)
class Sitting:
    run_id: str
    run_dir: Path
    target: str | None = None


def _file(outputs: Path) -> Path:
    return outputs / SITTING_FILE


def _write(outputs: Path, sitting: Sitting) -> None:
    outputs.mkdir(parents=True, exist_ok=True)
    data = {"run_id": sitting.run_id, "run_dir": str(sitting.run_dir), "target": sitting.target}
    partial = _file(outputs).with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    partial.replace(_file(outputs))


def current_sitting(outputs: Path) -> Sitting | None:
    """The sitting ``outputs/.sitting.json`` names, while its folder exists and is not sealed yet."""
    try:
        data: Any = json.loads(_file(outputs).read_text(encoding="utf-8"))
        sitting = Sitting(str(data["run_id"]), Path(data["run_dir"]), data.get("target"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not sitting.run_dir.is_dir() or (sitting.run_dir / "manifest.json").is_file():
        return None
    return sitting


def new_sitting(outputs: Path) -> Sitting:
    """A new sitting (folder made), named as the current one."""
    run_id = f"{_PREFIX}{utc_stamp()}"
    folder = outputs / run_id
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = outputs / f"{run_id}-{suffix}"
    folder.mkdir(parents=True)
    sitting = Sitting(folder.name, folder.resolve())
    _write(outputs, sitting)
    return sitting


def join_sitting(outputs: Path, target: str) -> Sitting:
    """The current sitting for a notebook on ``target``; a new one when there is none, or when the
    target changed (one sitting's evidence is of one target)."""
    sitting = current_sitting(outputs)
    if sitting is None or (sitting.target is not None and sitting.target != target):
        sitting = new_sitting(outputs)
    if sitting.target != target:
        sitting = Sitting(sitting.run_id, sitting.run_dir, target)
        _write(outputs, sitting)
    return sitting


def _belongs(notebook: Path, run_id: str) -> bool:
    """True when the saved notebook ran in this sitting: its outputs name the sitting's run id."""
    try:
        text = notebook.read_text(encoding="utf-8")
    except OSError:
        return False
    return run_id in text and bool(read_checks(notebook))


def seal_sitting(folder: Path, *, root: Path) -> Bundle:
    """Seal a sitting's folder like ``aigw run`` seals a run: the saved notebooks of ``root/notebooks``
    that ran in it are copied in, and ``seal_bundle`` does the rest (parameters say ``interactive``)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", hint="Name a sitting's folder, e.g. outputs/interactive-…")
    if (folder / "manifest.json").is_file():
        raise EvidenceError(f"{folder} is sealed already", hint="Check it with `aigw verify-evidence`")
    run_id = folder.name
    recorded = current_sitting(folder.parent)
    target = recorded.target if recorded is not None and recorded.run_dir == folder else None
    notebooks = [p for p in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")) if _belongs(p, run_id)]
    if not notebooks:
        raise EvidenceError(f"no saved notebook in {root / 'notebooks'} ran in sitting {run_id}",
                            hint="Save the notebooks in JupyterLab (Ctrl+S) after running them, then seal again")
    copies = []
    for notebook in notebooks:
        copy = folder / notebook.name
        shutil.copyfile(notebook, copy)
        copies.append(copy)
    env = read_env(find_env_file(root))
    twin_seed = _twin_seed_values()
    from aigw.secrets_scan import secrets_from_environ

    bundle = seal_bundle(folder, run_id=run_id, target=target or _target_from(notebooks), settings=None,
                         parameters={"interactive": True}, notebooks=copies, status="completed", root=root,
                         secrets=[*secrets_from_environ(env), *secrets_from_environ(twin_seed)])
    if recorded is not None and recorded.run_dir == folder:
        _file(folder.parent).unlink(missing_ok=True)  # sealed: the next notebook starts a new sitting
    return bundle


def _twin_seed_values() -> dict[str, str]:
    from aigw.paths import cache_dir

    seed = cache_dir() / "twin.env"
    return read_env(seed, environ={}) if seed.is_file() else {}


def _target_from(notebooks: list[Path]) -> str:
    text = " ".join(p.read_text(encoding="utf-8") for p in notebooks)
    return "cloudflare" if "Target: Cloudflare" in text else "twin"
