"""Where things are: the operator's project root (``.dev.vars`` / ``pyproject.toml``), this checkout, and
the user cache the background twin keeps its state in.

Its own module so that ``session``, ``sitting`` and ``evidence`` can all ask without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from aigw.config import ENV_FILE_NAME

__all__ = ["cache_dir", "project_root", "repo_root"]


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``.dev.vars`` or ``pyproject.toml`` above ``start``; else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ENV_FILE_NAME).is_file():
            return folder
    return here


def repo_root() -> Path:
    """The checkout this library runs from (where notebooks/ and docs/ are)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    # A normal (non-editable) install has no checkout around it: the operator's project stands in.
    return project_root()


def cache_dir() -> Path:
    """Where the interactive twin keeps its state and seed (never under outputs/)."""
    configured = os.environ.get("AIGW_CACHE_DIR")
    if configured:
        path = Path(configured)
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("aigw"))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkdir's mode applies only to a folder it creates: an existing one (made by hand, or by an older
    # version) is made private here too, since it holds the twin's state, seed and admin token.
    path.chmod(0o700)
    return path
