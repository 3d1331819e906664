"""Run folders (issue 14, item 8): two runs started in the same second never share one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aigw.paths import repo_root
from aigw.run_folder import claim_run_dir
from reliability_support import clean_env


def test_a_claimed_name_is_never_handed_out_twice(tmp_path: Path) -> None:
    stamp = tmp_path / "outputs" / "20261202T120000Z-twin"
    claimed = [claim_run_dir(stamp) for _ in range(3)]
    assert [p.name for p in claimed] == [stamp.name, f"{stamp.name}-2", f"{stamp.name}-3"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in claimed)


def test_a_run_refused_before_it_starts_leaves_no_claimed_folder(tmp_path: Path) -> None:
    before = set((repo_root() / "outputs").iterdir())
    done = subprocess.run([sys.executable, "-m", "aigw", "run", "--target", "twin", "--notebooks", "01",
                           "--faults", "control.5xx=7"], capture_output=True, text=True, env=clean_env(),
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert set((repo_root() / "outputs").iterdir()) == before


@pytest.mark.slow
def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    outputs = repo_root() / "outputs"
    before = set(outputs.iterdir())
    # Start both just after a second begins, so that on a busy machine they still share its stamp.
    while time.time() % 1 > 0.05:
        time.sleep(0.01)
    runs = [subprocess.Popen([sys.executable, "-m", "aigw", "run", "--target", "twin", "--notebooks", "01"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path)
            for _ in range(2)]
    made: list[Path] = []
    try:
        for run in runs:
            stdout, stderr = run.communicate(timeout=600)
            assert run.returncode == 3, stderr[-2000:]  # 01 alone: incomplete, sealed
            line = next(x for x in stdout.splitlines() if x.startswith("run folder: "))
            made.append(Path(line.removeprefix("run folder: ")))
        assert made[0] != made[1]
        assert set(outputs.iterdir()) - before == set(made)
        for folder in made:
            evidence = json.loads((folder / "evidence.json").read_text())
            assert evidence["run_id"] == folder.name
    finally:
        for folder in set(outputs.iterdir()) - before:
            shutil.rmtree(folder, ignore_errors=True)
