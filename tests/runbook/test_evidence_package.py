"""aigw.evidence as a package: a check's typed ``data`` round-trips, one status mark, the HTML template ships,
and no import cycle (evidence <-> session was one)."""

from __future__ import annotations

import fnmatch
import json
import secrets
import tomllib
from pathlib import Path
from typing import Any

import grimp
import nbformat
import pytest
from aigw import evidence, steps
from aigw.config import Secret
from aigw.errors import EvidenceError
from aigw.evidence import CHECK_MIMETYPE, Check, marks, read_checks
from aigw.evidence.html_export import TEMPLATE, TEMPLATES
from aigw.evidence.verifying import verify_evidence

from tests.steps_support import rehash_evidence

REPO = Path(__file__).resolve().parents[2]
STATS: dict[str, Any] = {"requests": 34, "retries": 2, "retries_by_reason": {"429": 2}, "recoveries": 0,
                         "recoveries_by_outcome": {}, "budget_waits": 1, "budget_wait_s": 0.25,
                         "data_plane": {"requests": 30, "retries": 0}}
SENTENCE = "34 requests (30 through the gateway), 2 (429 2) retried, 1 waits for the API budget (0.2 s)"


def _notebook_with(path: Path, *checks: Check) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("evidence.record_retries(session);")
    cell.outputs = [nbformat.v4.new_output("display_data", data={CHECK_MIMETYPE: c.payload(), "text/plain": c.line()})
                    for c in checks]
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}), cell]
    nbformat.write(nb, path)
    return path


def test_record_retries_keeps_the_figures_in_data_and_a_sentence_in_detail() -> None:
    check = evidence.record_retries(STATS)
    assert check.data == STATS
    assert check.detail == SENTENCE and "{" not in check.detail
    assert check.markdown().endswith(f"retries — {SENTENCE}")


def test_record_redacts_secret_values_inside_data() -> None:
    value = "canary-" + secrets.token_urlsafe(20)
    evidence.use_secrets([Secret(value, "CF_AIG_TOKEN")])
    check = evidence.record(None, "sent", "pass", data={"header": f"Bearer {value}", "tries": [value, 2]})
    assert check.data == {"header": "Bearer ***", "tries": ["***", 2]}


def test_a_check_without_data_reads_as_before() -> None:
    assert "data" not in Check(1, "gateway listed", "pass", "ok").payload()


def test_data_round_trips_through_notebook_evidence_json_and_verification(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _notebook_with(run / "01_demo.ipynb", Check(None, "retries", "pass", SENTENCE, data=STATS),
                   Check(1, "gateway listed", "pass", "ok"))
    read = read_checks(run / "01_demo.ipynb")
    assert read[0].data == STATS and read[1].data is None

    evidence.seal_bundle(run, run_id="run", target="twin", settings=None, parameters={},
                         notebooks=[run / "01_demo.ipynb"], status="completed", root=REPO)
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["retries"]["01_demo"] == STATS  # the figures, not text to parse
    assert doc["checks"][0]["data"] == STATS and "data" not in doc["checks"][1]
    assert SENTENCE in (run / "SUMMARY.md").read_text()
    verify_evidence(run)

    doc["checks"][0]["data"] = {**STATS, "requests": 3}
    (run / "evidence.json").write_text(json.dumps(doc, indent=2))
    rehash_evidence(run)
    with pytest.raises(EvidenceError, match=r"evidence\.json disagrees with 01_demo cell 1"):
        verify_evidence(run)


def test_one_status_mark_everywhere() -> None:
    assert steps.status_mark is marks.status_mark
    assert [marks.status_mark(s) for s in ("pass", "fail", "skip", "incomplete", "not run")] == [
        "✅ pass", "❌ fail", "⏭️ skip", "⚠️ incomplete", "⬜ not run"]
    assert marks.status_mark("unknown") == "unknown"
    assert Check(None, "note", "skip").line().startswith("⏭️ SKIP")


def test_the_html_template_is_package_data() -> None:
    """A normal install ships only what pyproject's package-data names: every template file must match."""
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = REPO / "lib" / "aigw"
    files = [p.relative_to(package).as_posix() for p in (TEMPLATES / TEMPLATE).rglob("*") if p.is_file()]
    assert {"conf.json", "index.html.j2"} <= {Path(f).name for f in files}
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in package_data["aigw"]), name


def test_no_import_cycle_in_aigw() -> None:
    graph = grimp.build_graph("aigw")
    cycles = sorted({f"{a} -> {b}" for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                     if graph.find_shortest_chain(importer=b, imported=a)})
    assert cycles == []
