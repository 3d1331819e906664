"""Kernel files of killed runs (issue 14, item 9): a run keeps its kernels' sockets and connection files in
its own temp folder, removes it when it ends, and the next run removes what a killed run left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import aigw, clean_env


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _dead_socket(path: Path) -> Path:
    """A Unix socket file nothing listens on any more (what a SIGKILLed kernel leaves)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    return path


def _kernel_leftovers(temp: Path) -> set[str]:
    return {p.name for p in temp.iterdir() if p.name.startswith("aigw-k-") or
            (p.name.startswith("tmp") and p.name.endswith(".json"))}


def test_a_run_removes_what_killed_runs_left_and_leaves_nothing_itself(tmp_path: Path) -> None:
    temp = tmp_path / "t"
    temp.mkdir()
    dead_folder = temp / f"aigw-k-{_dead_pid()}.abc123"
    dead_folder.mkdir()
    _dead_socket(dead_folder / "k-0123456789ab-1")
    (dead_folder / "k-0123456789ab.json").write_text("{}")
    legacy = _dead_socket(temp / "aigw-k-0123456789ab-1")
    (temp / "tmpk1legacy.json").write_text(json.dumps({"transport": "ipc", "ip": str(temp / "aigw-k-0123456789ab"),
                                                       "shell_port": 1}))
    # What must stay: a live run's folder (this process is alive), a socket something listens on, a
    # connection file that is not an aigw kernel's.
    live_folder = temp / f"aigw-k-{os.getpid()}.live12"
    live_folder.mkdir()
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(temp / "aigw-k-livelive-1"))
    listening.listen()
    (temp / "tmpother.json").write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1", "shell_port": 5}))
    try:
        done = aigw("run", "--target", "twin", "--notebooks", "01", "--out", str(tmp_path / "run"), cwd=tmp_path,
                    env=clean_env(TMPDIR=str(temp)))
        assert done.returncode == 3, done.stderr[-2000:]  # 01 alone: incomplete, sealed
        assert not dead_folder.exists() and not legacy.exists() and not (temp / "tmpk1legacy.json").exists()
        assert _kernel_leftovers(temp) == {live_folder.name, "aigw-k-livelive-1", "tmpother.json"}
    finally:
        listening.close()


@pytest.mark.slow
def test_a_killed_run_leaves_its_folder_and_the_next_run_removes_it(tmp_path: Path) -> None:
    temp = tmp_path / "t"
    temp.mkdir()
    env = clean_env(TMPDIR=str(temp))
    runner = subprocess.Popen([sys.executable, "-m", "aigw", "run", "--target", "twin", "--notebooks", "01",
                               "--out", str(tmp_path / "killed")], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    own = f"aigw-k-{runner.pid}."
    try:
        for _ in range(1200):  # until its kernel has made its sockets
            folders = [p for p in temp.iterdir() if p.name.startswith(own)]
            if folders and any(p.is_socket() for p in folders[0].iterdir()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run's kernel folder never appeared")
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernel, as the OOM killer would
        runner.wait(timeout=30)
    assert any(p.name.startswith(own) for p in temp.iterdir())  # a killed run cannot clean up
    done = aigw("run", "--target", "twin", "--notebooks", "01", "--out", str(tmp_path / "next"), cwd=tmp_path,
                env=env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert _kernel_leftovers(temp) == set()
