"""`aigw run` resolves its settings once, into a frozen ``RunPlan``; the run below it reads no settings again."""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aigw.config import VARIABLES
from aigw.errors import ConfigError
from aigw.plan import plan_run
from aigw.runner import run_plan
from cftwin.seed import generated_seed

from tests.steps_support import work_elsewhere

REPO = Path(__file__).resolve().parents[2]
_CLEARED = (*VARIABLES, "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE", "AIGW_SIGNING_KEY")
#: Every way the runbook and the twin read settings from a file or look for one.
_READERS = ("read_env", "find_env_file", "load_settings", "dotenv_values", "seed_from_env_file")


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return work_elsewhere(monkeypatch, tmp_path, _CLEARED)


def _watch_reads(monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...] = ("aigw", "cftwin")) -> list[str]:
    """Record each call of a settings reader, wherever a loaded module of ``modules`` holds one."""
    calls: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name}({', '.join(map(str, args))})")
            return real(*args, **kwargs)
        return recorded

    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] not in modules:
            continue
        for name in _READERS:
            real = getattr(module, name, None)
            if callable(real):
                monkeypatch.setattr(module, name, spy(name, real))
    return calls


def _twin_env_file(path: Path) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in generated_seed().to_environ().items()))
    path.chmod(0o600)
    return path


def test_a_run_from_its_plan_reads_no_settings_and_no_env_file_again(
        elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = _twin_env_file(elsewhere / "twin.env")
    plan = plan_run(target="twin", notebooks=(), run_dir=elsewhere / "run", env_file=env_file, root=REPO)
    calls = _watch_reads(monkeypatch)
    env_file.unlink()  # a reread would now fail with "does not exist"
    result = run_plan(plan)
    assert calls == []
    assert result.bundle is not None and (plan.run_dir / "manifest.json").is_file()
    assert result.run_dir == plan.run_dir == (elsewhere / "run").resolve()


def test_planning_reads_the_settings_file_once(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = elsewhere / ".dev.vars"
    env_file.write_text(f"CLOUDFLARE_ACCOUNT_ID={secrets.token_hex(16)}\nCLOUDFLARE_API_TOKEN={secrets.token_hex(20)}\n"
                        f"CF_AIG_TOKEN={secrets.token_hex(20)}\n")
    calls = _watch_reads(monkeypatch, modules=("aigw",))
    # No --target: the target comes from the same reading of the file as the settings.
    plan = plan_run(notebooks="01", run_dir=elsewhere / "run", root=REPO)
    assert calls == [f"find_env_file({elsewhere})", f"read_env({env_file})", f"dotenv_values({env_file})"]
    assert plan.target == "cloudflare" and plan.settings is not None and plan.settings.env_file == env_file
    assert plan.hosts == {"API": "api.cloudflare.com", "gateway": "gateway.ai.cloudflare.com",
                          "providers": "api.anthropic.com, api.openai.com, generativelanguage.googleapis.com"}
    assert plan.kernel_env["AIGW_ENV_FILE"] == str(env_file)
    assert plan.kernel_env["AIGW_RUN_DIR"] == str(plan.run_dir) and plan.run_id == "run"


def test_a_plan_is_frozen_and_says_what_each_notebook_gets(elsewhere: Path) -> None:
    plan = plan_run(target="twin", notebooks="05", run_dir=elsewhere / "run", root=REPO,
                    parameters={"export_logs": False})
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.target = "cloudflare"  # type: ignore[misc]
    (notebook,) = plan.notebooks
    # The twin's settings hold its port: known once it serves.
    assert plan.twin_seed is not None and plan.settings is None
    assert set(plan.hosts.values()) == {"127.0.0.1"}
    assert plan.notebook_parameters(notebook) == {"confirm_delete": plan.twin_seed.gateway_id, "export_logs": False,
                                                  "run_id": "run", "run_dir": str(plan.run_dir)}
    assert not plan.run_dir.exists()  # --out is only checked; the runner makes it


def test_a_refused_plan_removes_the_folder_it_claimed(elsewhere: Path) -> None:
    root = elsewhere / "project"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / "03_verify_endpoints.ipynb", root / "notebooks")
    said: list[str] = []
    with pytest.raises(ConfigError, match="max_tokens is an int parameter"):
        plan_run(target="twin", root=root, notebooks="03", parameters={"max_tokens": "many"}, say=said.append)
    claimed = said[-1].rpartition("run folder ")[2]
    assert claimed.startswith(str(root / "outputs")) and not Path(claimed).exists()
    assert list((root / "outputs").iterdir()) == []
