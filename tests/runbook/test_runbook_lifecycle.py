"""The README's main command: `aigw run` on the twin runs the whole lifecycle, 01 to 05.

Every criterion passes (6 from this repository's docs), the manifest verifies, and after 05 the
gateway is gone from the twin while the rollback snapshot holds its settings and logs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from aigw.evidence import verify_bundle
from cftwin.seed import generated_seed
from test_runner_e2e import _aigw, _env_file, _evidence

pytestmark = pytest.mark.slow


def test_the_default_run_on_the_twin_is_the_whole_lifecycle(tmp_path: Path) -> None:
    seed = generated_seed()
    state = tmp_path / "twin.sqlite"
    out = tmp_path / "run"
    env_file = _env_file(tmp_path / "twin.env", seed)
    done = _aigw("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", str(state), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]

    doc = _evidence(out)
    assert [n["name"] for n in doc["notebooks"]] == [
        "01_create_gateway", "02_provider_keys", "03_verify_endpoints", "04_logs_analysis", "05_rollback"]
    assert {c["number"]: c["status"] for c in doc["criteria"]} == {n: "pass" for n in range(1, 7)}
    # On the twin every criterion passing is a rehearsal, never production evidence (issue 11: was "passed").
    assert doc["status"] == "rehearsal-passed" and doc["production_evidence"] is False
    assert doc["failure"] is None and doc["why"] is None
    summary = (out / "SUMMARY.md").read_text()
    assert summary.splitlines()[2].startswith("**Status: REHEARSAL-PASSED**") and "**Why:**" not in summary
    overhead = next(line for line in summary.splitlines() if "gateway overhead within" in line)
    assert "rehearsal: shows the measurement works" in overhead
    # Issue 13: the REST API beside compat, its own row under the criteria (paid by the stored keys here).
    parity = next(line for line in summary.splitlines() if line.startswith("| — | REST API parity"))
    assert "✅ pass" in parity and "03_verify_endpoints" in parity, parity
    rest = [c for c in doc["checks"] if c["check"].startswith("REST API parity")]
    assert len(rest) == 3 and all(c["status"] == "pass" and "paid by byok" in c["detail"] for c in rest), rest
    assert verify_bundle(out)

    # Rolled back for real: the runner confirmed 05 on the disposable twin.
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM gateways").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM provider_configs").fetchone() == (0,)
    snapshot = out / "05_rollback_snapshot"
    gateway = json.loads((snapshot / "gateway.json").read_text())
    assert gateway["id"] == seed.gateway_id and gateway["authentication"] is True
    logs = pd.read_parquet(snapshot / "logs.parquet")
    assert len(logs) > 0 and set(logs["provider"]) == {"google-ai-studio", "openai", "anthropic"}
