"""What a notebook declares, read from its JSON source: its parameters and the modules it imports.

Neither needs papermill or a kernel. The plan reads every selected notebook's parameters before anything
starts, and importing papermill for that (``papermill.inspect_notebook``) cost about a second on the run's
critical path, before the first kernel could boot (docs/PERFORMANCE.md, round 4). The reading follows
papermill's for the cells the runbook writes (``name: type = value  # help``, one per line, as
``aigw.session`` documents); ``tests/runbook/test_notebook_source.py`` holds it equal to papermill's on
every notebook of ``notebooks/``.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path
from typing import Any

__all__ = ["code_sources", "notebook_imports", "notebook_parameters"]


def code_sources(notebook: Path) -> list[tuple[list[str], str]]:
    """Each code cell's tags and source, in order; [] for a file that is not a notebook."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    found: list[tuple[list[str], str]] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        tags = cell.get("metadata", {}).get("tags", [])
        found.append(([str(t) for t in tags] if isinstance(tags, list) else [],
                      "".join(source) if isinstance(source, list) else str(source)))
    return found


def _comments(source: str) -> dict[int, str]:
    """The comment ending each line, by line number (1-based), without its ``#``."""
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string[1:].strip()
    except (tokenize.TokenError, SyntaxError):
        return {}
    return comments


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The parameters of the cell tagged ``parameters``, by name, as ``papermill.inspect_notebook`` gives
    them: ``{"name", "inferred_type_name", "default", "help"}`` (the annotation's text, ``"None"`` when
    there is none; the value's source; the trailing comment). {} when there is no such cell, or it does not
    parse (papermill then reports it when it runs the notebook)."""
    source = next((src for tags, src in code_sources(notebook) if "parameters" in tags), None)
    if source is None:
        return {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    comments = _comments(source)
    declared: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation, value = node.target.id, ast.get_source_segment(source, node.annotation), node.value
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name)):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            continue
        default = ast.get_source_segment(source, value) or ""
        declared[name] = {"name": name, "inferred_type_name": (annotation or "None").strip("'\" "),
                          "default": " ".join(default.split()) if "\n" in default else default,
                          "help": comments.get(node.end_lineno or node.lineno, "")}
    return declared


def notebook_imports(notebook: Path) -> list[str]:
    """The modules a notebook's code cells import at top level (``from aigw import evidence`` gives
    ``aigw.evidence`` and ``aigw``), in order; cells that do not parse (magics) are skipped."""
    found: dict[str, None] = {}
    for _, source in code_sources(notebook):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found[node.module] = None
                found.update(dict.fromkeys(f"{node.module}.{alias.name}" for alias in node.names))
    return list(found)
