"""The twin's state file (issue 14, items 4 and 12, and item 13's ``--state`` rows): private, no
credential in it, refused with one line when it is not the twin's."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from aigw.paths import cache_dir
from cftwin.seed import generated_seed
from cftwin.server import TwinProcess
from cftwin.timing import NO_DELAYS
from reliability_support import aigw, clean_env, last_line, write_env_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _state_bytes(state: Path) -> bytes:
    # The WAL holds recent writes until a checkpoint: read every file SQLite keeps beside the database.
    return b"".join(p.read_bytes() for p in state.parent.glob(state.name + "*") if p.is_file())


def test_state_file_holds_no_token_or_key_and_is_private(tmp_path: Path) -> None:
    seed = generated_seed("gw")
    env_file = write_env_file(tmp_path / "seed.env", seed)
    state = tmp_path / "twin.sqlite"
    with TwinProcess(state=state, env_file=env_file, env=clean_env(), delays=NO_DELAYS) as twin:
        api = httpx.Client(base_url=f"{twin.api_base_url}/accounts/{seed.account_id}",
                           headers={"Authorization": f"Bearer {seed.api_token}"}, timeout=30)
        with api:
            store = api.post("/secrets_store/stores", json={"name": "s"}).json()["result"]["id"]
            gateway = api.post("/ai-gateway/gateways", json={
                "id": "gw", "store_id": store, "authentication": True, "cache_ttl": 0,
                "cache_invalidate_on_update": False, "collect_logs": True, "rate_limiting_interval": 0,
                "rate_limiting_limit": 0})
            assert gateway.status_code == 200, gateway.text
            key = seed.provider_keys["openai"]
            config = api.post("/ai-gateway/gateways/gw/provider_configs",
                              json={"provider_slug": "openai", "alias": "default", "default_config": True,
                                    "secret": key})
            assert config.status_code == 200, config.text
            # The BYOK key still works although only its digest is kept.
            answer = httpx.post(f"{twin.gateway_base_url}/{seed.account_id}/gw/openai/chat/completions",
                                headers={"cf-aig-authorization": f"Bearer {seed.aig_token}"},
                                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                                timeout=30)
            assert answer.status_code == 200, answer.text
        files = [p for p in tmp_path.glob("twin.sqlite*") if p.is_file()]
        assert {p.name for p in files} >= {"twin.sqlite", "twin.sqlite-wal"}
        assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
        held = _state_bytes(state)
    held += _state_bytes(state)
    assert seed.account_id.encode() in held  # the check reads the state for real
    for name, value in [("api token", seed.api_token), ("aig token", seed.aig_token or ""),
                        *((f"{p} key", k) for p, k in seed.provider_keys.items())]:
        assert value.encode() not in held, f"the {name} is in the state file"


def test_existing_state_file_is_made_private(tmp_path: Path) -> None:
    state = tmp_path / "twin.sqlite"
    state.touch(mode=0o644)
    state.chmod(0o644)
    with TwinProcess(state=state, env=clean_env()):
        assert _mode(state) == 0o600


def test_existing_cache_folder_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("AIGW_CACHE_DIR", str(folder))
    assert cache_dir() == folder
    assert _mode(folder) == 0o700


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cftwin", "serve", "--port", "0", *args], capture_output=True,
                          text=True, env=clean_env(), timeout=60, check=False)


def _old_schema(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tokens (id TEXT PRIMARY KEY, value TEXT NOT NULL UNIQUE)")
    return path


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: d / "missing" / "twin.sqlite", "is in a folder that does not exist"),
    (lambda d: d, "is a folder"),
    (lambda d: (d / "notes.txt", (d / "notes.txt").write_text("not a database " * 100))[0],
     "is not a SQLite database"),
    (lambda d: _old_schema(d / "old.sqlite"), "has schema version 0, this twin needs 2"),
])
def test_a_state_that_is_not_the_twins_is_one_line(tmp_path: Path, make: object, expected: str) -> None:
    state = make(tmp_path)  # type: ignore[operator]
    done = _serve("--state", str(state))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = last_line(done.stderr)
    assert line.startswith("cftwin: error: the twin's state ") and expected in line, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_state_file_keeps_its_seed_across_runs(tmp_path: Path) -> None:
    # No --env-file: each run generates its credentials. With the same --twin-state the second run must
    # land in the first run's account, so it finds (and converges on) the first run's gateway.
    state = tmp_path / "twin.sqlite"
    for name in ("first", "second"):
        done = aigw("run", "--target", "twin", "--twin-state", str(state), "--notebooks", "01",
                    "--out", str(tmp_path / name), cwd=tmp_path)
        assert done.returncode == 3, done.stderr[-2000:]  # 01 alone: the run is incomplete, not failed
    with contextlib.closing(sqlite3.connect(state)) as conn:
        accounts = [row[0] for row in conn.execute("SELECT id FROM accounts")]
        gateways = conn.execute("SELECT account_id, id FROM gateways").fetchall()
    assert len(accounts) == 1, accounts
    assert gateways == [(accounts[0], "github-ai-agent")]
