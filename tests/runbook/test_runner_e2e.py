"""`aigw run` end to end on the twin: real CLI, papermill kernels, bundle, idempotent re-run, failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aigw.cli import main
from aigw.config import PROVIDER_KEY_VARS
from aigw.evidence import verify_bundle
from aigw.runner import EXIT_INCOMPLETE
from aigw.secrets_scan import scan_paths
from cftwin.seed import TwinSeed, generated_seed

pytestmark = pytest.mark.slow

_CLEARED = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
            *PROVIDER_KEY_VARS.values(), "CLOUDFLARE_API_BASE_URL", "CLOUDFLARE_GATEWAY_BASE_URL",
            "AIGW_PROVIDER_BASE_URL", "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE")


def _env_file(path: Path, seed: TwinSeed, *, drop: tuple[str, ...] = ()) -> Path:
    lines = [f"{k}={v}\n" for k, v in seed.to_environ().items() if k not in drop]
    path.write_text("".join(lines))
    path.chmod(0o600)
    return path


def _aigw(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return subprocess.run([sys.executable, "-m", "aigw", *args], capture_output=True, text=True, env=env,
                          timeout=240, check=False)


def _evidence(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "evidence.json").read_text())
    return doc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("runs")
    seed = generated_seed()
    env_file = _env_file(base / "twin.env", seed)
    state = str(base / "twin.sqlite")
    common = ("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", state, "--notebooks", "01,02")
    first = _aigw(*common, "-v", "--out", str(base / "first"))
    second = _aigw(*common, "--out", str(base / "second"))
    return {"base": base, "seed": seed, "state": state, "first": first, "second": second}


def test_first_run_passes_criteria_1_and_2_and_verifies(runs: dict[str, Any]) -> None:
    done = runs["first"]
    # 01,02 only: criteria 3-5 not run, so the bundle is incomplete: exit 3 (issue 11: was 0).
    assert done.returncode == EXIT_INCOMPLETE, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("aigw: incomplete: criterion 3 not run")
    run_dir = runs["base"] / "first"
    doc = _evidence(run_dir)
    criteria = {c["number"]: c["status"] for c in doc["criteria"]}
    assert criteria[1] == "pass" and criteria[2] == "pass"
    assert criteria[3] == "not run"
    assert doc["target"] == "twin" and doc["account_id"] == runs["seed"].account_id
    assert doc["retries"]["01_create_gateway"]["requests"] > 0
    assert f"run folder: {run_dir}" in done.stdout and "1  pass" in done.stdout
    assert re.search(r"01_create_gateway cell \d+: preflight = create_gateway\.preflight\(session\)", done.stderr)
    quiet = runs["second"].stderr  # without -v: a line per finished notebook, none per cell
    assert re.search(r"01_create_gateway: done in [\d.]+ s", quiet) and not re.search(r" cell \d+: ", quiet)
    # Issue 11 adds where the requests went (hosts.json) and the provenance (provenance.dsse.json).
    assert len(verify_bundle(run_dir)) == 8
    assert {p.name for p in run_dir.iterdir()} == {
        "01_create_gateway.ipynb", "01_create_gateway.html", "02_provider_keys.ipynb", "02_provider_keys.html",
        "evidence.json", "SUMMARY.md", "manifest.json", "hosts.json", "provenance.dsse.json"}
    changes = {c["check"]: c["detail"] for c in doc["checks"] if "change" in c["check"]}
    assert changes["gateway change"] == "created"
    assert changes["openai key change"] == "secret created, provider config created"


def test_second_run_on_the_same_state_changes_nothing(runs: dict[str, Any]) -> None:
    assert runs["second"].returncode == EXIT_INCOMPLETE, runs["second"].stderr[-2000:]
    doc = _evidence(runs["base"] / "second")
    changes = {c["check"]: c["detail"] for c in doc["checks"] if "change" in c["check"]}
    assert set(changes.values()) == {"no change"}
    assert len(changes) == 4
    assert {c["number"]: c["status"] for c in doc["criteria"]}[2] == "pass"


def test_no_planted_secret_in_any_file_of_the_runs(runs: dict[str, Any]) -> None:
    seed: TwinSeed = runs["seed"]
    planted = [seed.api_token, seed.aig_token or "", *seed.provider_keys.values()]
    for name in ("first", "second"):
        run_dir = runs["base"] / name
        assert scan_paths([run_dir], planted, shapes=False) == []
        for path in run_dir.rglob("*"):
            data = path.read_bytes()
            assert not any(value.encode() in data for value in planted if value), path


def test_a_tampered_file_fails_verify_evidence(runs: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs["base"] / "first", copy)
    notebook = copy / "01_create_gateway.ipynb"
    notebook.write_text(notebook.read_text().replace('"status": "fail"', '"status": "pass"') + " ")
    done = _aigw("verify-evidence", str(copy))
    assert done.returncode == 1
    assert "changed: 01_create_gateway.ipynb" in done.stderr
    assert _aigw("verify-evidence", str(runs["base"] / "first")).returncode == 0


def test_a_failing_notebook_names_its_cell_and_keeps_the_evidence(runs: dict[str, Any]) -> None:
    env_file = _env_file(runs["base"] / "no-openai.env", runs["seed"], drop=("OPENAI_API_KEY",))
    out = runs["base"] / "failed"
    done = _aigw("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", runs["state"],
                 "--notebooks", "02", "--out", str(out))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("aigw: error: 02_provider_keys cell ")
    assert ": ConfigError: OPENAI_API_KEY is not set. Put it in .dev.vars" in last
    cell = int(last.split(" cell ")[1].split(":")[0])
    doc = _evidence(out)
    assert doc["status"] == "failed"
    error = last.split(f" cell {cell}: ", 1)[1]
    assert doc["failure"] == {"notebook": "02_provider_keys", "cell": cell, "error": error}
    assert doc["notebooks"][0]["status"] == "failed"
    assert (out / "02_provider_keys.ipynb").is_file() and verify_bundle(out)
    assert f'id="cell-{cell}"' in (out / "02_provider_keys.html").read_text()


def test_parameters_are_checked_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_like = "sk-" + generated_seed().api_token
    out = tmp_path / "never"
    assert main(["run", "--target", "twin", "--notebooks", "01", "--out", str(out),
                 "-p", "gateway_id", key_like]) == 1
    err = capsys.readouterr().err
    assert "looks like a key" in err and key_like not in err
    assert main(["run", "--target", "twin", "--notebooks", "01", "--out", str(out), "-p", "nope", "1"]) == 1
    assert "no selected notebook declares a parameter 'nope'" in capsys.readouterr().err
    assert main(["run", "--target", "twin", "--notebooks", "09", "--out", str(out)]) == 1
    assert "'09' names no notebook" in capsys.readouterr().err
    assert not out.exists()
