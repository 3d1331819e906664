"""The runbook's source notebooks: committed clean, following the conventions, and passing nbval on a twin.

nbval runs in a child ``pytest --nbval-lax`` (the suite stays one ``pytest`` command; the notebooks live
outside ``tests/``), aimed at this module's twin through the environment, as ``aigw run`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from aigw.config import PROVIDER_KEY_VARS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MINE = [ROOT / "notebooks" / "01_create_gateway.ipynb", ROOT / "notebooks" / "02_provider_keys.ipynb"]


def test_the_notebooks_exist() -> None:
    assert set(MINE) <= set(NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{path.name}: a cell has outputs"
        assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
    assert "parameters" in code[0].metadata.get("tags", []), f"{path.name}: the first code cell is not `parameters`"
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    declared = papermill.inspect_notebook(str(path))
    assert {"run_id", "run_dir"} <= set(declared), f"{path.name}: declares {sorted(declared)}"
    assert "open_session(run_id=run_id, run_dir=run_dir)" in code[1].source


@pytest.mark.slow
def test_nbval_lax_on_the_twin(twin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    twin.reset()
    cleared = {"AIGW_ENV_FILE", "AIGW_RUN_ID", *PROVIDER_KEY_VARS.values()}
    env = {k: v for k, v in os.environ.items() if k not in cleared}
    env.update(twin.seed.to_environ(twin.server))
    env.update({"AIGW_TARGET": "twin", "AIGW_RUN_DIR": str(tmp_path / "run")})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q",
         *(str(p) for p in MINE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    secrets = [twin.seed.api_token, *twin.seed.provider_keys.values()]
    assert not any(value in done.stdout for value in secrets)
