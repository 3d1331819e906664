"""Serving the twin: state survives a restart, loopback-only binding, the admin API's gate."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from cftwin.app import build_app
from cftwin.context import TwinOptions
from cftwin.errors import TwinConfigError
from cftwin.seed import generated_seed
from cftwin.server import TwinProcess, TwinServer
from starlette.testclient import TestClient

GATEWAY = {"id": "kept", "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
           "rate_limiting_interval": 0, "rate_limiting_limit": 0}


def test_state_survives_a_restart_on_the_same_file(tmp_path: Path) -> None:
    state = str(tmp_path / "twin.sqlite3")
    seed = generated_seed()
    headers = {"Authorization": f"Bearer {seed.api_token}"}
    with TwinServer(state=state, seed=seed) as first:
        base = f"{first.api_base_url}/accounts/{seed.account_id}"
        assert httpx.post(f"{base}/ai-gateway/gateways", json=GATEWAY, headers=headers).status_code == 200
        store = httpx.post(f"{base}/secrets_store/stores", json={"name": "s"}, headers=headers).json()["result"]
    first.context.db.close()
    # A second twin on the same file, with no seed: the tokens, gateway and store are still there.
    with TwinServer(state=state) as second:
        base = f"{second.api_base_url}/accounts/{seed.account_id}"
        gateway = httpx.get(f"{base}/ai-gateway/gateways/kept", headers=headers)
        assert gateway.status_code == 200
        assert gateway.json()["result"]["id"] == "kept"
        again = httpx.get(f"{base}/secrets_store/stores/{store['id']}", headers=headers)
        assert again.json()["result"] == store
    second.context.db.close()


def test_twin_process_restart_keeps_state(tmp_path: Path) -> None:
    seed = generated_seed()
    env_file = tmp_path / ".dev.vars"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in seed.to_environ().items()))
    state = tmp_path / "twin.sqlite3"
    headers = {"Authorization": f"Bearer {seed.api_token}"}
    # The environment wins over the file (as for the runbook): keep the children's free of these names.
    environ = {k: v for k, v in os.environ.items() if k not in seed.to_environ()}
    with TwinProcess(state=state, env_file=env_file, admin=True, env=environ) as first:
        assert httpx.get(first.admin_url + "/health", headers=first.admin_headers).json() == {"status": "ok"}
        base = f"{first.api_base_url}/accounts/{seed.account_id}/ai-gateway/gateways"
        assert httpx.post(base, json=GATEWAY, headers=headers).status_code == 200
    with TwinProcess(state=state, env_file=env_file, env=environ) as second:
        assert second.url != ""
        base = f"{second.api_base_url}/accounts/{seed.account_id}/ai-gateway/gateways"
        assert [g["id"] for g in httpx.get(base, headers=headers).json()["result"]] == ["kept"]
        # Admin is off in this one.
        assert httpx.get(second.admin_url + "/health").status_code == 404


def test_twin_process_reports_a_bad_env_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with code 1"):
        TwinProcess(env_file=tmp_path / "missing.vars").start()


def test_non_loopback_host_is_refused() -> None:
    with pytest.raises(TwinConfigError, match="loopback"):
        TwinServer(host="0.0.0.0")


def test_admin_is_off_by_default_and_refuses_remote_clients() -> None:
    with TwinServer(TwinOptions()) as plain:
        assert httpx.get(plain.admin_url + "/health").status_code == 404
    with TwinServer(TwinOptions(admin_enabled=True)) as admin:
        assert httpx.get(admin.admin_url + "/health", headers=admin.admin_headers).status_code == 200
        # A client address that is not loopback cannot be made on this machine; set it in the ASGI scope.
        with TestClient(build_app(admin.context), client=("192.0.2.7", 5555)) as remote:
            assert remote.get("/__twin__/health", headers=admin.admin_headers).status_code == 403
        with TestClient(build_app(admin.context), base_url="http://127.0.0.1:80", client=("127.0.0.1", 5555)) as local:
            assert local.get("/__twin__/health", headers=admin.admin_headers).status_code == 200
