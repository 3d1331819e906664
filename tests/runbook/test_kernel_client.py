"""``aigw.kernels.ReadyKernelClient``: ready as soon as the kernel is, and nothing of the handshake left on
IOPub for the first cell to read (real kernels over IPC, as ``aigw run`` starts them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from aigw.kernels import PreparedKernel, ReadyKernelClient
from jupyter_core.utils import run_sync


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[PreparedKernel]:
    started = PreparedKernel(tmp_path).start()
    try:
        yield started
    finally:
        started.shutdown()


def _execute(client: Any, code: str) -> list[dict[str, Any]]:
    """The IOPub messages of one execution, up to its ``idle``: every one must be that request's."""
    msg_id = client.execute(code)
    seen: list[dict[str, Any]] = []
    while True:
        msg = run_sync(client.iopub_channel.get_msg)(timeout=10)
        seen.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert {m["parent_header"].get("msg_id") for m in seen} == {msg_id}, "a handshake message was left on IOPub"
    return seen


def test_the_manager_hands_out_the_ready_client(kernel: PreparedKernel) -> None:
    assert isinstance(kernel.manager.client(), ReadyKernelClient)


def test_a_kernel_still_booting_is_waited_for_and_its_first_execution_reads_only_its_own_output(
        kernel: PreparedKernel) -> None:
    client = kernel.manager.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=60)  # right after the launch: the interpreter is still booting
        streams = [m["content"]["text"] for m in _execute(client, "print('first cell')")
                   if m["msg_type"] == "stream"]
        assert streams == ["first cell\n"]
    finally:
        client.stop_channels()


def test_a_booted_kernel_is_ready_again_for_each_new_client(kernel: PreparedKernel) -> None:
    for _ in range(3):
        client = kernel.manager.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=60)
            outputs = _execute(client, "1 + 1")
            assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["2"]
            with pytest.raises(Empty):  # nothing after the idle: the handshake's messages were all read before
                run_sync(client.iopub_channel.get_msg)(timeout=0.3)
        finally:
            client.stop_channels()


def test_a_dead_kernel_is_one_error_not_a_wait(kernel: PreparedKernel) -> None:
    run_sync(kernel.manager.shutdown_kernel)(now=True)
    client = kernel.manager.client()
    client.start_channels()
    try:
        with pytest.raises(RuntimeError, match=r"Kernel died|didn't respond"):
            run_sync(client.wait_for_ready)(timeout=5)
    finally:
        client.stop_channels()


def test_a_kernel_started_for_a_later_notebook_runs_at_its_lower_priority(tmp_path: Path) -> None:
    from aigw.execution import NICE_PER_PLACE, prepare_kernel

    notebook = tmp_path / "n.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    kernel = prepare_kernel(notebook, place=2)
    assert kernel is not None
    client = kernel.manager.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=60)
        outputs = _execute(client, "import os; os.nice(0)")
        values = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
        assert values == [str(os.nice(0) + 2 * NICE_PER_PLACE)]  # relative to the process that started it
    finally:
        client.stop_channels()
        kernel.shutdown()
