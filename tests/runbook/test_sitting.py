"""One JupyterLab sitting, one run: notebooks share a run id and folder until a new sitting; a sitting seals
into a bundle like `aigw run`'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from aigw import cli
from aigw.errors import EvidenceError
from aigw.evidence import CHECK_MIMETYPE, verify_bundle
from aigw.session import open_session
from aigw.sitting import current_sitting, join_sitting, new_sitting, seal_sitting

_VARS = ("AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE", "AIGW_TARGET")


def test_notebooks_join_one_sitting_until_a_new_one(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    first = join_sitting(outputs, "twin")
    assert first.run_id.startswith("interactive-") and first.run_dir == outputs.resolve() / first.run_id
    assert join_sitting(outputs, "twin") == first
    fresh = new_sitting(outputs)
    assert fresh.run_id != first.run_id and join_sitting(outputs, "twin").run_id == fresh.run_id
    other = join_sitting(outputs, "cloudflare")  # one sitting's evidence is of one target
    assert other.run_id != fresh.run_id and other.target == "cloudflare"


def test_sessions_without_run_ids_share_the_sitting(twin: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in twin.seed.to_environ(twin.server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIGW_TARGET", "twin")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    sessions = [open_session(run_id="", run_dir="") for _ in range(3)]
    assert len({s.run_id for s in sessions}) == 1 and len({s.run_dir for s in sessions}) == 1
    assert sessions[0].run_dir.parent == (tmp_path / "outputs").resolve()
    assert [p.name for p in (tmp_path / "outputs").iterdir() if p.is_dir()] == [sessions[0].run_id]
    assert cli.main(["session", "new"]) == 0
    assert open_session().run_id != sessions[0].run_id
    explicit = open_session(run_id="r1", run_dir=str(tmp_path / "r1"))  # aigw run passes both: no sitting
    assert explicit.run_id == "r1"
    for session in sessions:
        session.close()


def _saved_notebook(path: Path, run_id: str) -> None:
    cell = nbformat.v4.new_code_cell("session", execution_count=3)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": f"| run | `{run_id}` |"}),
        nbformat.v4.new_output("display_data", data={
            CHECK_MIMETYPE: {"criterion": 1, "check": "gateway listed", "status": "pass", "detail": "",
                             "time": "t"}, "text/plain": "PASS"}),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_a_sitting_seals_into_a_verified_bundle_marked_interactive(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    (tmp_path / "notebooks").mkdir()
    sitting = join_sitting(outputs, "twin")
    _saved_notebook(tmp_path / "notebooks" / "01_create_gateway.ipynb", sitting.run_id)
    _saved_notebook(tmp_path / "notebooks" / "02_provider_keys.ipynb", "interactive-another-sitting")
    bundle = seal_sitting(sitting.run_dir, root=tmp_path)
    doc = json.loads((sitting.run_dir / "evidence.json").read_text())
    assert doc["parameters"] == {"interactive": True} and doc["target"] == "twin"
    assert [n["name"] for n in doc["notebooks"]] == ["01_create_gateway"]
    assert {c.number: c.status for c in bundle.criteria}[1] == "pass"
    assert "01_create_gateway.html" in verify_bundle(sitting.run_dir)
    assert current_sitting(outputs) is None  # sealed: the next notebook starts a new sitting
    with pytest.raises(EvidenceError, match="sealed already"):
        seal_sitting(sitting.run_dir, root=tmp_path)
    empty = new_sitting(outputs)
    with pytest.raises(EvidenceError, match="no saved notebook"):
        seal_sitting(empty.run_dir, root=tmp_path)
