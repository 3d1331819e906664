"""Notebook 07 as an operator runs it: `aigw run --notebooks 01,02,07` on the twin, with the run's own
local bucket (moto's S3 API) standing in for R2: the canary is delivered and decrypts; then, on the kept
twin state, `aigw run --notebooks 05` deletes the job 07 made (a run orders its notebooks, so 05 would
otherwise come before 07)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aigw.config import PROVIDER_KEY_VARS
from aigw.evidence import verify_bundle
from aigw.logpush import LOGPUSH_VARIABLES
from aigw.runner import EXIT_INCOMPLETE
from cftwin.seed import generated_seed

pytestmark = pytest.mark.slow

_CLEARED = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
            *PROVIDER_KEY_VARS.values(), "CLOUDFLARE_API_BASE_URL", "CLOUDFLARE_GATEWAY_BASE_URL",
            "AIGW_PROVIDER_BASE_URL", "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE",
            *LOGPUSH_VARIABLES)


def _checks(run_dir: Path, notebook: str) -> dict[str, dict[str, Any]]:
    doc = json.loads((run_dir / "evidence.json").read_text())
    return {c["check"]: c for c in doc["checks"] if c.get("notebook") == notebook}


def _aigw(tmp_path: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return subprocess.run([sys.executable, "-m", "aigw", "run", "--target", "twin", "--env-file", str(env_file),
                           "--twin-state", str(tmp_path / "twin.sqlite"), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False, cwd=tmp_path)


def test_aigw_run_01_02_07_delivers_and_decrypts_then_05_deletes_the_job(tmp_path: Path) -> None:
    env_file = tmp_path / "twin.vars"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in generated_seed().to_environ().items()))
    env_file.chmod(0o600)
    run_dir = tmp_path / "run"
    done = _aigw(tmp_path, env_file, "--notebooks", "01,02,07", "--out", str(run_dir))
    assert done.returncode == EXIT_INCOMPLETE, done.stderr[-3000:]  # criteria 3-5 not run
    assert "07_logpush_export: done" in done.stderr
    checks = _checks(run_dir, "07_logpush_export")
    for name in ("Logpush destination is valid", "gateway exports with this key pair",
                 "Logpush job enabled for ai_gateway_events", "canary delivered by Logpush",
                 "Metadata decrypts (RSA-OAEP-SHA256 + AES-GCM)", "RequestBody decrypts", "ResponseBody decrypts",
                 "plain fields match the request"):
        assert checks[name]["status"] == "pass", (name, checks[name]["detail"])
    assert ".log.gz" in checks["canary delivered by Logpush"]["detail"]
    assert "07_logpush_export.html" in verify_bundle(run_dir)
    # The rehearsal's private key stayed outside the run folder; no PEM private key reached an output.
    assert not any("PRIVATE KEY-----" in p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file())

    rolled = tmp_path / "rollback"
    done = _aigw(tmp_path, env_file, "--notebooks", "05", "--out", str(rolled))
    assert done.returncode == EXIT_INCOMPLETE, done.stderr[-3000:]
    rollback = _checks(rolled, "05_rollback")["rollback"]
    assert rollback["status"] == "pass" and "logpush_job aigw-" in rollback["detail"]
