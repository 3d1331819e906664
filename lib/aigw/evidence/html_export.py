"""A self-contained HTML export of an executed notebook: every cell carries an ``id="cell-N"`` anchor
(N = its index in the notebook); nothing is fetched from the network.

Both come from an nbconvert template, ``templates/offline_lab`` (it extends JupyterLab's ``lab``): it leaves
out the remote scripts (require.js, MathJax, mermaid, the widget renderer), keeps links out as text
(``data-href``) and writes each cell's id as its anchor. The folder ships as package data (pyproject.toml).
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Any, Final

from aigw.evidence.reading import load_notebook

__all__ = ["TEMPLATE", "TEMPLATES", "export_html", "export_run_html", "run_html_path"]

#: The folder of this package's nbconvert templates, and the one the evidence uses.
TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
TEMPLATE: Final = "offline_lab"
#: The exporter, made at the first export; the lock keeps one export at a time on it (it keeps state while it works).
_exporter: Any = None
_exporter_lock = threading.Lock()


def export_html(notebook: str | os.PathLike[str] | Any, destination: Path, *, title: str | None = None) -> Path:
    """A self-contained HTML export: every cell has ``id="cell-N"`` (N = its index in the notebook);
    nothing is fetched from the network (no require.js, MathJax, mermaid or widget scripts).
    """
    from nbconvert import HTMLExporter

    nb, _ = load_notebook(notebook)
    nb = copy.deepcopy(nb)
    # The template writes a cell's id as its anchor: the index is what SUMMARY.md links to.
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    if title:
        nb.metadata["title"] = title
    with _exporter_lock:
        global _exporter
        if _exporter is None:
            # One per process: a new exporter compiles its ten Jinja templates again (0.3 s an export, measured).
            _exporter = HTMLExporter(template_name=TEMPLATE,  # type: ignore[no-untyped-call]
                                     extra_template_basedirs=[str(TEMPLATES)])
        body, _resources = _exporter.from_notebook_node(nb)
    destination.write_text(body, encoding="utf-8")
    return destination


def run_html_path(folder: Path, notebook: str | os.PathLike[str]) -> Path:
    """Where a run folder keeps the HTML export of ``notebook``."""
    return folder / f"{Path(notebook).stem}.html"


def export_run_html(notebook: str | os.PathLike[str], folder: Path, run_id: str) -> Path:
    """The HTML export ``seal_bundle`` makes for an executed notebook of run ``run_id`` (``aigw run``
    makes it while the next notebook runs, and tells ``seal_bundle`` through ``exported``)."""
    path = Path(notebook)
    return export_html(path, run_html_path(folder, path), title=f"{path.stem} — run {run_id}")
