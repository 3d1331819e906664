"""``aigw.kernels.ForkServer`` (``aigw.kernel_zygote``): kernels forked with their imports done behave as kernels
jupyter_client starts itself. Real kernels over IPC, as ``aigw run`` starts them; nothing is mocked."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aigw.kernels import ForkServer, PreparedKernel, kernel_environment
from jupyter_core.utils import run_sync

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fork server runs on Linux only")


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForkServer]:
    # As in ``aigw run``: the server and its kernels start in the run's kernel environment.
    monkeypatch.setenv("AIGW_FORK_TEST_HIDDEN", "never-in-a-kernel")
    with kernel_environment({"AIGW_FORK_TEST": "from-the-run"}, drop=["AIGW_FORK_TEST_HIDDEN"]):
        server = ForkServer.start()
        assert server is not None
        try:
            yield server
        finally:
            server.close()


def _run(kernel: PreparedKernel, code: str, timeout: float = 60) -> tuple[str, list[dict[str, Any]]]:
    """Execute ``code``; its stdout and the execution's error messages."""
    client = kernel.manager.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=timeout)
        msg_id = client.execute(code)
        out: list[str] = []
        errors: list[dict[str, Any]] = []
        while True:
            msg = run_sync(client.iopub_channel.get_msg)(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(msg["content"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out), errors
    finally:
        client.stop_channels()


_FACTS = ("import json, os, sys; print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'sid': os.getsid(0), "
          "'cwd': os.getcwd(), 'env': os.environ.get('AIGW_FORK_TEST'), 'hidden': os.environ.get("
          "'AIGW_FORK_TEST_HIDDEN'), 'parent': os.environ.get('JPY_PARENT_PID'), 'warm': 'aigw.steps.rollback' in "
          "sys.modules, 'nice': os.nice(0)}))")


def test_a_forked_kernel_runs_in_its_folder_with_the_run_s_environment_its_imports_and_its_own_session(
        forks: ForkServer, tmp_path: Path) -> None:
    kernel = PreparedKernel(tmp_path, ["aigw.steps.rollback"], nice=2, fork_server=forks).start()
    try:
        out, errors = _run(kernel, _FACTS)
        assert errors == []
        facts = json.loads(out)
        assert facts["pid"] == kernel.manager.provisioner.pid
        assert facts["ppid"] == forks.process.pid, "the server is the kernel's parent (it reaps it)"
        assert facts["parent"] == str(forks.process.pid), "ipykernel polls the parent it has"
        assert facts["sid"] == facts["pid"], "the kernel leads its own session, as jupyter_client starts kernels"
        assert Path(facts["cwd"]) == tmp_path
        assert facts["env"] == "from-the-run"
        assert facts["hidden"] is None
        assert facts["warm"] is True
        assert facts["nice"] == 2
    finally:
        kernel.shutdown()


def test_an_interrupt_reaches_a_forked_kernel_s_running_cell(forks: ForkServer, tmp_path: Path) -> None:
    kernel = PreparedKernel(tmp_path, fork_server=forks).start()
    try:
        client = kernel.manager.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=60)
            msg_id = client.execute("import time; time.sleep(60)")
            time.sleep(0.5)
            assert kernel.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 20
            ename = None
            while time.monotonic() < deadline and ename is None:
                msg = run_sync(client.iopub_channel.get_msg)(timeout=20)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "error":
                    ename = msg["content"]["ename"]
            assert ename == "KeyboardInterrupt"
        finally:
            client.stop_channels()
    finally:
        kernel.shutdown()


def test_a_killed_forked_kernel_is_seen_dead_with_its_signal(forks: ForkServer, tmp_path: Path) -> None:
    kernel = PreparedKernel(tmp_path, fork_server=forks).start()
    try:
        _run(kernel, "1")
        assert run_sync(kernel.manager.is_alive)()
        assert kernel.send_signal(signal.SIGKILL)
        process = kernel.manager.provisioner.process
        assert process.wait(timeout=20) == -signal.SIGKILL
        assert not run_sync(kernel.manager.is_alive)()
    finally:
        kernel.shutdown()


def test_closing_the_server_ends_the_kernels_it_forked(forks: ForkServer, tmp_path: Path) -> None:
    kernel = PreparedKernel(tmp_path, fork_server=forks).start()
    _run(kernel, "1")
    pid = kernel.manager.provisioner.pid
    forks.close()
    process = kernel.manager.provisioner.process
    assert process.wait(timeout=20) is not None
    with pytest.raises(ProcessLookupError):  # ended and reaped by the server: not even a zombie is left
        os.kill(pid, 0)


def test_a_kernel_asked_for_and_shut_down_before_it_was_forked_does_not_run_on(tmp_path: Path) -> None:
    server = ForkServer.start()
    assert server is not None
    try:
        # Asked for with a heavy import first: the shutdown comes while the server is still importing.
        kernel = PreparedKernel(tmp_path, ["pandas", "matplotlib.figure"], fork_server=server).start()
        process = kernel.manager.provisioner.process
        assert process.pid is None, "forked already: the import this test waits behind was not slow enough"
        kernel.shutdown()
        assert process.wait(timeout=30) is not None
        assert process.pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)
    finally:
        server.close()


def test_forks_can_be_turned_off_for_a_run(tmp_path: Path) -> None:
    from aigw.plan import plan_run

    root = Path(__file__).resolve().parents[2]
    on = plan_run(target="twin", notebooks="01", run_dir=tmp_path / "on", root=root, environ={}, cwd=tmp_path)
    off = plan_run(target="twin", notebooks="01", run_dir=tmp_path / "off", root=root,
                   environ={"AIGW_KERNEL_FORKS": "0"}, cwd=tmp_path)
    assert (on.kernel_forks, off.kernel_forks) == (True, False)
