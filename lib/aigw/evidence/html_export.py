"""A self-contained HTML export of an executed notebook: every cell carries an ``id="cell-N"`` anchor
(N = its index in the notebook); nothing is fetched from the network."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final

from aigw.evidence.reading import load_notebook

__all__ = ["export_html", "export_run_html", "run_html_path"]

_REMOTE_SCRIPT: Final = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?://[^>]*>\s*</script>", re.I | re.S)
_MODULE_SCRIPT: Final = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>",
                                   re.I | re.S)
_REMOTE_LINK: Final = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?https?://[^>]*>", re.I)
_REMOTE_CSS: Final = re.compile(r"@import\s+url\(\s*[\"']?https?://[^)]*\)\s*;?", re.I)
_CELL_ANCHOR: Final = re.compile(r'id="cell-id=cell-(\d+)"')
_REMOTE_ANCHOR: Final = re.compile(r"(<a\b[^>]*?)\bhref\s*=\s*([\"'])(https?://[^\"']*)\2", re.I)


def export_html(notebook: str | os.PathLike[str] | Any, destination: Path, *, title: str | None = None) -> Path:
    """A self-contained HTML export: every cell has ``id="cell-N"`` (N = its index in the notebook);
    nothing is fetched from the network (require.js, MathJax, mermaid and widget scripts are removed).
    """
    import copy

    from nbconvert import HTMLExporter

    nb, _ = load_notebook(notebook)
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab")  # type: ignore[no-untyped-call]
    body, _resources = exporter.from_notebook_node(nb)
    body = _CELL_ANCHOR.sub(r'id="cell-\1"', body)
    body = _REMOTE_SCRIPT.sub("", body)
    body = _MODULE_SCRIPT.sub("", body)
    body = _REMOTE_LINK.sub("", body)
    body = _REMOTE_CSS.sub("", body)
    # Links out are kept as text (data-href), so that nothing in the evidence points at the network.
    body = _REMOTE_ANCHOR.sub(r"\1data-href=\2\3\2", body)
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
