"""The notebooks stand where the layers contract (pyproject.toml) puts them: on top of the steps, never on the runner.

import-linter sees lib/ only; the notebooks' imports are read here from their code cells, against the same
contract, so a notebook that reached for ``aigw.runner`` or ``aigw.cli`` (the run's entrance) fails a test.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _layers() -> list[set[str]]:
    contracts: list[dict[str, Any]] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers" and c.get("containers") == ["aigw"]]
    return [{tail.strip() for tail in re.split(r"[|:]", layer)} for layer in layers]


def _aigw_imports(notebook: Path) -> set[str]:
    """The top-level modules of aigw a notebook's code cells import (``from aigw import evidence`` is evidence)."""
    found: set[str] = set()
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython's magics and shell lines are not Python.
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("aigw.")}
                assert all(a.name != "aigw" for a in node.names), f"{notebook.name}: import the module, not aigw"
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                parts = node.module.split(".")
                if parts[0] != "aigw":
                    continue
                found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
    return found


def test_notebooks_import_only_the_steps_and_below() -> None:
    layers = _layers()
    steps = next(i for i, layer in enumerate(layers) if "steps" in layer)
    above = set().union(*layers[:steps])
    allowed = set().union(*layers[steps:])
    assert {"cli", "runner", "plan"} <= above
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        imported = _aigw_imports(notebook)
        assert imported, f"{notebook.name} imports nothing from aigw"
        assert imported <= allowed, f"{notebook.name} imports {sorted(imported - allowed)}, above the steps"
