"""Bad input to the twin's command line and to `aigw run`'s twin options (issue 14, item 13): one line,
a non-zero exit, nothing made; and a twin holding a ``hang_after_apply`` answer stops without a traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from reliability_support import aigw, clean_env, last_line


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cftwin", "serve", *args], capture_output=True, text=True,
                          env=clean_env(), cwd=cwd, timeout=60, check=False)


def _busy_port() -> tuple[socket.socket, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, str(sock.getsockname()[1])


@pytest.mark.parametrize(("args", "code", "expected"), [
    (lambda d, p: ["--port", "99999"], 1, "cftwin: error: --port 99999 is not a port"),
    (lambda d, p: ["--port", "abc"], 2, "cftwin serve: error: argument --port: invalid int value: 'abc'"),
    (lambda d, p: ["--bogus"], 2, "cftwin: error: unrecognized arguments: --bogus"),
    (lambda d, p: ["--host", "no-such-host.invalid"], 1, "cftwin: error: --host 'no-such-host.invalid' does"),
    (lambda d, p: ["--port", p], 1, "cftwin: error: cannot listen on 127.0.0.1:"),
    (lambda d, p: ["--ready-file", str(d / "missing" / "ready")], 1, "is in a folder that does not exist"),
    (lambda d, p: ["--faults", "control.5xx=7"], 1, "cftwin: error: fault spec: control.5xx is a probability"),
    (lambda d, p: ["--env-file", str(d / "missing.env")], 1, "cftwin: error: env file"),
], ids=["port-range", "port-not-int", "unknown-arg", "host", "port-in-use", "ready-file", "faults", "env-file"])
def test_bad_serve_arguments_are_one_line_and_make_nothing(tmp_path: Path, args: Callable[[Path, str], list[str]],
                                                           code: int, expected: str) -> None:
    busy, port = _busy_port()
    with busy:
        done = _serve("--state", str(tmp_path / "twin.sqlite"), *args(tmp_path, port), cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert expected in last_line(done.stderr), done.stderr
    assert not (tmp_path / "twin.sqlite").exists()  # checked before the state file is made


@pytest.mark.parametrize(("args", "expected"), [
    (["--faults", "control.5xx=7"], "aigw: error: --faults: fault spec: control.5xx is a probability (0..1), got '7'"),
    (["--faults", "nope=1"], "aigw: error: --faults: fault spec: unknown key 'nope'"),
    (["--twin-state", "notes.txt"], "aigw: error: the twin's state 'notes.txt' is not a SQLite database"),
], ids=["faults-range", "faults-key", "state-not-a-database"])
def test_bad_twin_options_to_aigw_run_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "notes.txt").write_text("my notes, not a database " * 50)
    done = aigw("run", "--target", "twin", "--notebooks", "01", "--out", str(tmp_path / "run"), *args, cwd=tmp_path,
                timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert last_line(done.stderr).startswith(expected), done.stderr
    assert not (tmp_path / "run").exists()
    assert (tmp_path / "notes.txt").read_text().startswith("my notes")


def test_a_twin_holding_a_hung_answer_stops_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    with subprocess.Popen([sys.executable, "-m", "cftwin", "serve", "--port", "0", "--ready-file", str(ready),
                           "--faults", "control.hang_after_apply=1,control.hang_s=60"],
                          stderr=subprocess.PIPE, text=True, env=clean_env()) as proc:
        for _ in range(600):
            if ready.is_file() and ready.read_text().strip():
                break
            time.sleep(0.05)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(ready.read_text().strip() + "/client/v4/user/tokens/verify", timeout=1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr and "ERROR" not in stderr, stderr
