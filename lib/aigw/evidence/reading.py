"""Reading an executed notebook back: its recorded checks (with their cell) and whether it finished."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aigw.evidence.checks import CHECK_MIMETYPE, Check, Status

__all__ = ["load_notebook", "notebook_status", "read_checks"]


def load_notebook(notebook: Any) -> tuple[Any, str | None]:
    """``(NotebookNode, its stem)`` of a path; a NotebookNode as it is, with no name."""
    import nbformat

    if isinstance(notebook, str | os.PathLike):
        path = Path(notebook)
        return nbformat.read(path, as_version=4), path.stem  # type: ignore[no-untyped-call]
    return notebook, None


def read_checks(notebook: str | os.PathLike[str] | Any) -> list[Check]:
    """The checks recorded in a notebook (a path or a NotebookNode), in order, with their cell index."""
    nb, name = load_notebook(notebook)
    checks: list[Check] = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(CHECK_MIMETYPE) if output.get("output_type") in {
                "display_data", "execute_result"} else None
            if not isinstance(payload, Mapping):
                continue
            raw_status = payload.get("status")
            status: Status = raw_status if raw_status in ("pass", "skip") else "fail"
            subject = payload.get("subject")
            data = payload.get("data")
            checks.append(Check(
                criterion=payload.get("criterion"),
                check=str(payload.get("check", "")),
                status=status,
                detail=str(payload.get("detail", "")),
                time=str(payload.get("time", "")),
                notebook=name,
                cell=index,
                prompt=cell.get("execution_count"),
                subject=str(subject) if subject is not None else None,
                data=data if isinstance(data, Mapping) else None,
            ))
    return checks


def notebook_status(nb: Any) -> str:
    """``failed`` (a cell failed or shows an error), ``not finished`` (a cell pending or running), else
    ``completed``."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "failed":
            return "failed"
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return "failed"
    statuses = {c.get("metadata", {}).get("papermill", {}).get("status") for c in nb.cells if c.cell_type == "code"}
    return "not finished" if statuses & {"pending", "running"} else "completed"
