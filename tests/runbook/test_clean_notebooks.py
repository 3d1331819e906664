"""Notebooks are committed clean by construction: `aigw setup` installs a git clean filter; a notebook saved
with outputs (Ctrl+S in JupyterLab) keeps them in the working file, and git stores none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from aigw.clean_notebooks import ATTRIBUTE, install_filter, strip_notebook_text

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
                               "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"})
    return done.stdout


def test_committed_notebooks_are_what_the_filter_makes() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert strip_notebook_text(text) == text, f"{path.name}: not clean (run aigw strip-notebook on it)"


def test_a_saved_notebook_with_outputs_is_committed_without_them(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    _git(repo, "init", "-q")
    done = install_filter(repo)
    assert any(".gitattributes" in line for line in done)
    assert install_filter(repo)[1:] == []  # idempotent: the attribute line is not added twice
    assert (repo / ".gitattributes").read_text().splitlines() == [ATTRIBUTE]
    notebook = repo / "notebooks" / "01_create_gateway.ipynb"
    shutil.copyfile(ROOT / "notebooks" / "01_create_gateway.ipynb", notebook)
    nb = nbformat.read(notebook, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="account 0123456789abcdef\n")]
    code.metadata["execution"] = {"iopub.status.idle": "2026-12-02T18:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, notebook)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "saved with outputs")
    stored = json.loads(_git(repo, "show", "HEAD:notebooks/01_create_gateway.ipynb"))
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in stored["cells"] if c["cell_type"] == "code")
    assert "widgets" not in stored["metadata"] and "0123456789abcdef" not in json.dumps(stored)
    assert "0123456789abcdef" in notebook.read_text()  # the operator's working file keeps its outputs
    assert _git(repo, "status", "--porcelain") == ""  # and git sees no change to commit


def test_strip_notebook_command_cleans_files_in_place(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    cell = nbformat.v4.new_code_cell("1", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    subprocess.run([sys.executable, "-m", "aigw", "strip-notebook", str(path)], check=True, capture_output=True)
    assert nbformat.read(path, as_version=4).cells[0].outputs == []
