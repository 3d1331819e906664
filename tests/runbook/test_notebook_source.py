"""``aigw.notebook_source``: the plan's reading of a notebook's parameters equals papermill's, without papermill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from aigw.notebook_source import notebook_imports, notebook_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebooks_parameters_read_as_papermill_reads_them(notebook: Path) -> None:
    declared = notebook_parameters(notebook)
    assert declared, "each runbook notebook has a parameters cell"
    assert declared == papermill.inspect_notebook(str(notebook))


def _notebook(tmp_path: Path, parameters: str, *more: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell(src) for src in more[:1]] + [cell]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in more[1:]]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    return path


def test_annotations_defaults_and_help_as_papermill_gives_them(tmp_path: Path) -> None:
    path = _notebook(tmp_path, '# a comment line\n\nname: str = "x"  # the name\ncount = 3\n'
                               'ratio: float = 0.5\nitems: list[str] = ["a", "b"]  # two\nflag: bool = False\n')
    assert notebook_parameters(path) == papermill.inspect_notebook(str(path))
    assert notebook_parameters(path)["count"]["inferred_type_name"] == "None"
    assert notebook_parameters(path)["items"] == {"name": "items", "inferred_type_name": "list[str]",
                                                  "default": '["a", "b"]', "help": "two"}


def test_no_parameters_cell_or_one_that_does_not_parse_declares_nothing(tmp_path: Path) -> None:
    assert notebook_parameters(_notebook(tmp_path, "x = (\n")) == {}
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "plain.ipynb")
    assert notebook_parameters(tmp_path / "plain.ipynb") == {}
    assert notebook_parameters(tmp_path / "missing.ipynb") == {}


def test_top_level_imports_in_order_magics_skipped(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "x = 1", "import os\nfrom aigw import evidence", "%matplotlib inline",
                     "def f():\n    import json\nfrom pandas import DataFrame")
    assert notebook_imports(path) == ["os", "aigw", "aigw.evidence", "pandas", "pandas.DataFrame"]


def test_the_plan_reads_parameters_without_importing_papermill() -> None:
    # The point of the module: papermill's import stays off the run's path until the first kernel is booting.
    code = ("import sys; from pathlib import Path; from aigw.plan import declared_parameters; "
            f"declared_parameters(Path({str(NOTEBOOKS[0])!r})); print('papermill' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
