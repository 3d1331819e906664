"""Notebooks 03, 04 and 05 on a twin: nbval (lax) on the source notebooks, then papermill runs of 05.

The state they need (a gateway with three BYOK keys) is made first with the library steps of 01 and 02.
nbval runs in a child ``pytest --nbval-lax`` aimed at the twin through the environment, as ``aigw run`` does;
the three notebooks share one run id and run folder, so 04 finds 03's probes in the logs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import papermill
import pytest
from aigw.config import PROVIDER_KEY_VARS, Secret
from aigw.evidence import read_checks
from aigw.kernels import IPCKernelManager
from aigw.steps import provider_keys

from tests.steps_support import gateway_with_keys, twin_session

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MINE = [NOTEBOOKS / "03_verify_endpoints.ipynb", NOTEBOOKS / "04_logs_analysis.ipynb", NOTEBOOKS / "05_rollback.ipynb"]

pytestmark = pytest.mark.slow


def _gateway_with_keys(twin: Any, run_dir: Path) -> None:
    """Notebooks 01 and 02, through their library steps: the authenticated gateway and its three keys."""
    session = twin_session(twin, run_dir, "setup")
    try:
        gateway_with_keys(session)
    finally:
        session.close()


def _environ(twin: Any, run_dir: Path, run_id: str, env_file: Path) -> dict[str, str]:
    cleared = {"AIGW_ENV_FILE", "AIGW_RUN_ID", "AIGW_RUN_DIR", *PROVIDER_KEY_VARS.values()}
    env = {k: v for k, v in os.environ.items() if k not in cleared}
    env.update(twin.seed.to_environ(twin.server))
    # An empty env file: a developer's own .dev.vars must not leak into the test's settings.
    env.update({"AIGW_TARGET": "twin", "AIGW_RUN_ID": run_id, "AIGW_RUN_DIR": str(run_dir),
                "AIGW_ENV_FILE": str(env_file)})
    return env


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "empty.dev.vars"
    path.write_text("")
    return path


def test_nbval_lax_03_04_05_on_the_twin(twin: Any, tmp_path: Path, env_file: Path) -> None:
    twin.reset(gateway_overhead_ms=120)
    run_dir = tmp_path / "run"
    _gateway_with_keys(twin, run_dir)
    env = _environ(twin, run_dir, "nbval-run", env_file)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", *(str(p) for p in MINE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    secrets = [twin.seed.api_token, *twin.seed.provider_keys.values()]
    if twin.seed.aig_token:
        secrets.append(twin.seed.aig_token)
    assert not any(value in done.stdout + done.stderr for value in secrets)

    # 03 saved its probes, 04 exported the window, 05 (defaults: a dry run) snapshotted and deleted nothing.
    probes = json.loads((run_dir / "03_probes.json").read_text())
    assert probes["run_id"] == "nbval-run"
    assert {p["status"] for p in probes["steps"]["unified"]} == {200}
    assert probes["steps"]["overhead"]["median_ms"] >= 100  # the twin was told to add 120 ms
    exported = pd.read_parquet(run_dir / "04_logs.parquet")
    assert set(probes_log_ids(probes)) <= set(exported["id"])
    assert (run_dir / "05_rollback_snapshot" / "gateway.json").is_file()
    session = twin_session(twin, run_dir, "setup")
    try:
        assert session.client.find_gateway(session.settings.gateway_id) is not None
        assert len(session.client.list_provider_configs(session.settings.gateway_id)) == 3
    finally:
        session.close()


def probes_log_ids(probes: dict[str, Any]) -> list[str]:
    return [p["log_id"] for step in probes["steps"].values() if isinstance(step, list) for p in step if p["log_id"]]


@pytest.fixture
def kernel_env(twin: Any, tmp_path: Path, env_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment a papermill kernel inherits: this module's twin, one run folder."""
    run_dir = tmp_path / "run"
    for name, value in _environ(twin, run_dir, "rollback-run", env_file).items():
        monkeypatch.setenv(name, value)
    for name in PROVIDER_KEY_VARS.values():
        if name not in twin.seed.to_environ(twin.server):
            monkeypatch.delenv(name, raising=False)
    yield run_dir


def _run_05(run_dir: Path, out: Path, **parameters: Any) -> list[Any]:
    papermill.execute_notebook(
        str(NOTEBOOKS / "05_rollback.ipynb"), str(out), parameters={"run_dir": str(run_dir), **parameters},
        cwd=str(NOTEBOOKS), progress_bar=False, kernel_manager_class=IPCKernelManager,
    )
    return read_checks(out)


def _stdout(path: Path) -> str:
    import nbformat

    book = nbformat.read(path, as_version=4)
    texts: list[str] = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts.append(str(data.get("text/markdown", "")) + str(data.get("text/plain", "")) + output.get("text", ""))
    return "\n".join(texts)


def test_rollback_dry_run_then_confirmed_then_nothing_to_delete(twin: Any, kernel_env: Path, tmp_path: Path) -> None:
    twin.reset()
    run_dir = kernel_env
    _gateway_with_keys(twin, run_dir)
    session = twin_session(twin, run_dir, "setup")
    gateway_id = session.settings.gateway_id
    # A few logs for the snapshot, and a secret of another gateway in the same store that must survive.
    probe = session.prober.probe_unified("openai/gpt-4o-mini", "hello", max_tokens=8)
    assert probe.ok, probe
    store = provider_keys.ensure_store(session).store
    other = session.client.create_secret(store.id, f"{gateway_id}2_openai_default",
                                         Secret(secrets.token_hex(16), "another gateway's key"))

    try:
        checks = _run_05(run_dir, tmp_path / "dry.ipynb", confirm_delete="")
        assert {c.check: c.status for c in checks}["rollback"] == "skip"
        assert "Dry run" in _stdout(tmp_path / "dry.ipynb")
        assert session.client.find_gateway(gateway_id) is not None
        assert len(session.client.list_provider_configs(gateway_id)) == 3
        assert len(session.client.list_secrets(store.id)) == 4

        checks = _run_05(run_dir, tmp_path / "real.ipynb", confirm_delete=gateway_id)
        statuses = {c.check: c.status for c in checks}
        assert statuses["rollback"] == "pass"
        assert statuses["gateway API answers not found"] == "pass"
        assert statuses["gateway endpoint no longer serves requests"] == "pass"
        assert session.client.find_gateway(gateway_id) is None
        assert [s.name for s in session.client.list_secrets(store.id)] == [other.name]
        assert [s.id for s in session.client.list_stores()] == [store.id]  # not empty: kept
        snapshot = run_dir / "05_rollback_snapshot"
        saved = json.loads((snapshot / "gateway.json").read_text())
        assert saved["id"] == gateway_id and saved["authentication"] is True
        configs = json.loads((snapshot / "provider_configs.json").read_text())
        assert sorted(c["provider_slug"] for c in configs) == ["anthropic", "google-ai-studio", "openai"]
        assert all("secret_preview" not in c for c in configs)
        logs = pd.read_parquet(snapshot / "logs.parquet")
        assert probe.log_id in set(logs["id"])

        checks = _run_05(run_dir, tmp_path / "again.ipynb", confirm_delete=gateway_id)
        assert {c.check: c.status for c in checks}["rollback"] == "pass"
        assert "Nothing to delete" in _stdout(tmp_path / "again.ipynb")
        assert json.loads((snapshot / "gateway.json").read_text())["id"] == gateway_id  # the first snapshot stays
    finally:
        session.close()
