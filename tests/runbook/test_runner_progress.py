"""`aigw run`'s progress: a line per finished notebook, per-cell lines only with -v; the help says the real
default; a twin run without 01 gets a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from aigw.cli import build_parser
from aigw.plan import twin_selection_hint
from aigw.progress import RunProgress


def test_a_line_per_notebook_and_per_cell_only_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    for verbose in (False, True):
        shown = RunProgress(verbose=verbose)
        shown.start("01_create_gateway", 3, "run_id=r")
        for index in range(3):
            shown.cell("01_create_gateway", index, "session = open_session()")
        shown.finish("01_create_gateway: done in 1.0 s")
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("aigw: ")]
        expected = ["aigw: 01_create_gateway: done in 1.0 s"]
        if verbose:
            expected = ["aigw: 01_create_gateway: running (run_id=r)",
                        *[f"aigw:   01_create_gateway cell {i}: session = open_session()" for i in range(3)], *expected]
        assert lines == expected


def test_help_names_the_real_defaults() -> None:
    parser = build_parser()
    run = next(a for a in parser._actions if a.dest == "command").choices["run"]  # type: ignore[union-attr]
    helps = {a.dest: a.help or "" for a in run._actions}
    assert "01-05 on the twin" in helps["notebooks"] and "(default: all)" not in helps["notebooks"]
    assert parser.parse_args(["run", "-v"]).verbose is True


def test_a_twin_run_without_01_gets_a_hint() -> None:
    keys, logs = Path("02_provider_keys.ipynb"), Path("04_logs_analysis.ipynb")
    hint = twin_selection_hint([keys], "twin", None)
    assert hint is not None and "include 01 (e.g. --notebooks 01,02)" in hint and "--twin-state" in hint
    assert twin_selection_hint([Path("01_create_gateway.ipynb"), keys], "twin", None) is None
    assert twin_selection_hint([keys, logs], "twin", "state.sqlite") is None  # the state is kept
    assert twin_selection_hint([keys], "cloudflare", None) is None
