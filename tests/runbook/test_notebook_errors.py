"""An AigwError in a notebook cell shows as its one line; %tb still has the full traceback; other errors are unchanged.

Runs a real kernel (nbclient, the engine under papermill) on a notebook built here.
"""

from __future__ import annotations

import re

import nbformat
from aigw.errors import ConfigError
from aigw.notebook_errors import one_line_traceback
from nbclient import NotebookClient

_RAISE_AIGW = (
    "from aigw.errors import ConfigError\nraise ConfigError('Run notebook 01 first', hint='its gateway is missing')"
)


def _run(*sources: str) -> list[nbformat.NotebookNode]:
    nb = nbformat.v4.new_notebook()
    setup = "from aigw.notebook_errors import show_errors_as_one_line\nshow_errors_as_one_line()"
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (setup, *sources)]
    NotebookClient(nb, kernel_name="python3", timeout=60, allow_errors=True).execute()
    return list(nb.cells)


def _errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_one_line_traceback_names_the_class_and_keeps_the_fix() -> None:
    lines = one_line_traceback(ConfigError("Run notebook 01 first", hint="its gateway is missing"))
    assert lines[0] == "ConfigError: Run notebook 01 first. its gateway is missing"
    assert "%tb" in lines[1]


def test_aigw_error_is_one_line_in_the_notebook_and_tb_shows_the_frames() -> None:
    cells = _run(_RAISE_AIGW, "%tb", "raise ValueError('plain')")
    (aigw_error,) = _errors(cells[1])
    assert aigw_error.ename == "ConfigError"
    assert aigw_error.traceback[0] == "ConfigError: Run notebook 01 first. its gateway is missing"
    assert len(aigw_error.traceback) == 2
    tb_text = "".join(o.get("text", "") for o in cells[2].outputs) + "".join(
        "".join(o.get("traceback", [])) for o in _errors(cells[2]))
    plain_tb = re.sub(r"\x1b\[[0-9;]*m", "", tb_text)
    assert "raise ConfigError" in plain_tb, "%tb must show the full traceback of the AigwError"
    (plain,) = _errors(cells[3])
    assert plain.ename == "ValueError"
    assert len(plain.traceback) > 2, "other exceptions keep IPython's full traceback"
