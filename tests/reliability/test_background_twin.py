"""``ensure_background_twin`` signals only the twin it started, never whatever PID ``twin.pid`` holds.

The trial's finding: a restart (the seed changed) sent SIGTERM to the PID in ``<cache>/twin.pid``
unchecked; a stale file, or a number reused by another process, meant killing that process.
Everything here is real: the detached twin (``python -m cftwin serve``), HTTP to it, real decoy processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aigw.background_twin import ensure_background_twin, is_twin_process, twin_admin_headers
from cftwin.seed import generated_seed

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    port = _free_port()
    monkeypatch.setenv("AIGW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIGW_TWIN_PORT", str(port))
    yield tmp_path / "cache", port
    pid_file = tmp_path / "cache" / "twin.pid"
    pid = int(pid_file.read_text()) if pid_file.is_file() else 0
    if is_twin_process(pid, port):  # only the twin this test started, checked as such
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _decoy(*words: str) -> subprocess.Popen[bytes]:
    """A process that is not the twin; ``words`` end up on its command line."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *words])


def _new_seed() -> dict[str, str]:
    return {"CLOUDFLARE_API_TOKEN": generated_seed().api_token}


def _health(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/__twin__/health", headers=twin_admin_headers(), timeout=5).status_code


@pytest.mark.parametrize("decoy_words", [(), ("cftwin", "serve", "--port", "1")], ids=["any-process", "other-port"])
def test_a_pid_file_naming_another_process_is_never_signalled(cache: tuple[Path, int],
                                                               decoy_words: tuple[str, ...]) -> None:
    folder, port = cache
    ensure_background_twin({})
    twin_pid = int((folder / "twin.pid").read_text())
    assert is_twin_process(twin_pid, port)
    decoy = _decoy(*decoy_words)
    try:
        assert not is_twin_process(decoy.pid, port)
        (folder / "twin.pid").write_text(str(decoy.pid))
        ensure_background_twin(_new_seed())  # the seed changed: a restart is wanted
        assert decoy.poll() is None, "the decoy was signalled"
        assert not (folder / "twin.pid").exists()  # the stale file is dropped
        assert _health(port) == 200  # the twin is left running, as one started by hand
    finally:
        decoy.kill()
        decoy.wait()
        (folder / "twin.pid").write_text(str(twin_pid))  # so that the fixture stops the twin


def test_the_twin_it_started_is_restarted_for_a_new_seed(cache: tuple[Path, int]) -> None:
    folder, port = cache
    ensure_background_twin({})
    first = int((folder / "twin.pid").read_text())
    ensure_background_twin(_new_seed())
    second = int((folder / "twin.pid").read_text())
    assert second != first and is_twin_process(second, port)
    assert not is_twin_process(first, port)  # stopped by its SIGTERM
    assert _health(port) == 200


@pytest.mark.parametrize("pid", [-1, 0, 1])
def test_pids_that_would_signal_many_processes_are_never_the_twin(pid: int) -> None:
    assert not is_twin_process(pid, 8787)


def test_a_runs_twin_answers_on_sockets_without_nagle() -> None:
    # A socket made with proto 0 is not given TCP_NODELAY by asyncio: each answer then waited ~40 ms for a
    # delayed ACK (03's overhead pairs took 70 ms instead of 30). The run's twin listens on the socket it binds.
    import asyncio

    from aigw.background_twin import _loopback_socket

    listening = _loopback_socket()
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
