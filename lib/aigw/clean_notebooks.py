"""Notebooks are committed clean by construction: a git ``clean`` filter strips outputs on ``git add``.

``aigw setup`` installs it in this checkout (``git config filter.aigw-notebook.*`` and the
``.gitattributes`` line for ``notebooks/*.ipynb``), in the manner of nbstripout: Ctrl+S in JupyterLab keeps
the outputs in the working file (the operator still sees them), and what git stores has none, so no
account id, run id or check reaches a commit. ``aigw strip-notebook`` is the filter itself (stdin to
stdout), or cleans the named files in place.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

__all__ = ["ATTRIBUTE", "FILTER", "install_filter", "strip_notebook_text"]

FILTER: Final = "aigw-notebook"
ATTRIBUTE: Final = f"notebooks/*.ipynb filter={FILTER}"
#: Cell and notebook metadata a run leaves behind (papermill's timings, widget state, execution times).
_RUN_METADATA: Final = ("papermill", "execution", "widgets", "collapsed", "scrolled")


def _clean(nb: dict[str, Any]) -> dict[str, Any]:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for name in _RUN_METADATA:
            cell.get("metadata", {}).pop(name, None)
    for name in ("papermill", "widgets"):
        nb.get("metadata", {}).pop(name, None)
    return nb


def strip_notebook_text(text: str) -> str:
    """The notebook without outputs, execution counts or run metadata, written as nbformat writes it
    (indent 1, a final newline); text that is not a notebook is returned unchanged (git must not fail)."""
    try:
        nb = json.loads(text)
    except ValueError:
        return text
    if not isinstance(nb, dict) or "cells" not in nb:
        return text
    return json.dumps(_clean(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True)


def install_filter(root: Path) -> list[str]:
    """Configure the filter in ``root``'s git config and make sure ``.gitattributes`` names it. Idempotent;
    returns what it did, one line each."""
    from aigw.errors import ConfigError

    if not (root / ".git").exists():
        raise ConfigError(f"{root} is not a git checkout", hint="Run aigw setup from the repository's root")
    command = f"{shlex.quote(sys.executable)} -m aigw strip-notebook"
    _git(root, "config", f"filter.{FILTER}.clean", command)
    _git(root, "config", f"filter.{FILTER}.smudge", "cat")
    _git(root, "config", f"filter.{FILTER}.required", "true")
    done = [f"git filter {FILTER}: outputs are stripped from notebooks/*.ipynb when they are added"]
    attributes = root / ".gitattributes"
    lines = attributes.read_text(encoding="utf-8").splitlines() if attributes.is_file() else []
    if ATTRIBUTE not in lines:
        attributes.write_text("\n".join([*lines, ATTRIBUTE]) + "\n", encoding="utf-8")
        done.append(f".gitattributes: added '{ATTRIBUTE}'")
    return done
