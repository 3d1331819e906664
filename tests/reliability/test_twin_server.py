"""The twin as a server (issue 14, items 10 and 11): malformed bodies, and the admin API's gates."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from reliability_support import make_gateway

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

#: 100,000 nested arrays: Python's json overflows its recursion on it (RecursionError, once a 500).
DEEP = b"[" * 100_000


@pytest.fixture
def gateway(twin: TwinHandle) -> Iterator[TwinHandle]:
    make_gateway(twin)
    yield twin


DATA_PLANE = ["openai/chat/completions", "anthropic/v1/messages", "google-ai-studio/v1beta/models/gemini-2.5-flash"
              ":generateContent", "compat/chat/completions", ""]
ADMIN = [("POST", "/accounts"), ("POST", "/tokens"), ("PUT", "/config"), ("POST", "/seed"), ("PUT", "/faults"),
         ("POST", "/providers/openai/keys"), ("DELETE", "/providers/openai/keys"), ("POST", "/logs/seed")]
CONTROL = [("POST", "ai-gateway/gateways"), ("PUT", "ai-gateway/gateways/gw"), ("POST", "secrets_store/stores"),
           ("POST", "ai-gateway/gateways/gw/provider_configs")]


@pytest.mark.parametrize("body", [DEEP, b'{"a": ' + DEEP, b"\xff\xfe not utf-8", b'{"n": NaN}'],
                         ids=["deep", "deep-in-object", "not-utf8", "nan"])
@pytest.mark.parametrize("path", DATA_PLANE, ids=lambda p: p.split("/")[0] or "universal")
def test_malformed_body_on_the_data_plane_is_a_400(gateway: TwinHandle, path: str, body: bytes) -> None:
    url = f"{gateway.server.gateway_base_url}/{gateway.account_id}/gw" + (f"/{path}" if path else "")
    key = gateway.seed.provider_keys
    headers = {**gateway.aig_headers, "content-type": "application/json", "anthropic-version": "2023-06-01",
               "authorization": f"Bearer {key['openai']}", "x-api-key": key["anthropic"],
               "x-goog-api-key": key["google-ai-studio"]}
    answer = httpx.post(url, content=body, headers=headers, timeout=30)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])


@pytest.mark.parametrize("body", [DEEP, b"\xff\xfe", b'{"a": NaN}'], ids=["deep", "not-utf8", "nan"])
@pytest.mark.parametrize(("method", "path"), ADMIN, ids=[f"{m} {p}" for m, p in ADMIN])
def test_malformed_body_on_the_admin_api_is_a_400(twin: TwinHandle, method: str, path: str, body: bytes) -> None:
    answer = httpx.request(method, twin.server.admin_url + path, content=body, timeout=30,
                           headers={"content-type": "application/json", **twin.server.admin_headers})
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert set(answer.json()) == {"error"}


@pytest.mark.parametrize(("method", "path"), CONTROL, ids=[f"{m} {p}" for m, p in CONTROL])
def test_malformed_body_on_the_v4_api_is_a_400_7001(gateway: TwinHandle, method: str, path: str) -> None:
    answer = httpx.request(method, f"{gateway.server.api_base_url}/accounts/{gateway.account_id}/{path}",
                           content=DEEP, headers={**gateway.api_headers, "content-type": "application/json"},
                           timeout=30)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["errors"][0]["code"] == 7001


# --- the admin API's gate (item 10) ------------------------------------------------------------------

MINT = {"account_id": "a" * 32, "permissions": ["ai_gateway:write", "secrets_store:write"]}


def _mint(twin: TwinHandle, **headers: str) -> httpx.Response:
    return httpx.post(twin.server.admin_url + "/tokens", content=json.dumps(MINT).encode(),
                      headers={"content-type": "application/json", **headers}, timeout=10)


def _no_token_was_minted(twin: TwinHandle) -> bool:
    rows = twin.context.db.query("SELECT account_ids FROM tokens")
    return all(MINT["account_id"] not in row["account_ids"] for row in rows)


def test_a_cross_site_text_plain_post_mints_nothing(twin: TwinHandle) -> None:
    # What a web page can send without a CORS preflight: text/plain, its own Origin, no custom header.
    twin.reset()
    answer = httpx.post(twin.server.admin_url + "/tokens", content=json.dumps(MINT).encode(), timeout=10,
                        headers={"content-type": "text/plain", "origin": "http://evil.example"})
    assert answer.status_code == 403, answer.text
    assert _no_token_was_minted(twin)


@pytest.mark.parametrize(("headers", "status", "words"), [
    ({"host": "evil.example:{port}"}, 403, "(Host)"),  # DNS rebinding: the page's name, the twin's address
    ({"host": "127.0.0.1:1"}, 403, "(Host)"),
    ({"origin": "http://evil.example"}, 403, "(Origin)"),
    ({"origin": "null"}, 403, "(Origin)"),
    ({"origin": "http://127.0.0.1:1"}, 403, "(Origin)"),
    ({"token": ""}, 401, "admin token"),
    ({"token": "not-the-token"}, 401, "admin token"),
    ({"content-type": "text/plain"}, 415, "application/json"),
    ({"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
])
def test_the_admin_api_refuses(twin: TwinHandle, headers: dict[str, str], status: int, words: str) -> None:
    twin.reset()
    port = str(twin.server.port)
    sent = {"host": f"127.0.0.1:{port}", **twin.server.admin_headers}
    for name, value in headers.items():
        if name == "token":
            sent["cftwin-admin-token"] = value
        else:
            sent[name] = value.replace("{port}", port)
    answer = _mint(twin, **sent)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]
    assert _no_token_was_minted(twin)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}"])
def test_the_admin_api_answers_its_own_clients(twin: TwinHandle, host: str) -> None:
    twin.reset()
    port = str(twin.server.port)
    answer = _mint(twin, host=host.replace("{port}", port), origin=f"http://127.0.0.1:{port}",
                   **twin.server.admin_headers)
    assert answer.status_code == 201, answer.text
    assert not _no_token_was_minted(twin)


def test_served_twin_writes_its_admin_token_private_beside_the_state(tmp_path: Path) -> None:
    state = tmp_path / "twin.sqlite"
    token_file = tmp_path / "twin.sqlite.admin-token"
    ready = tmp_path / "ready"
    with subprocess.Popen([sys.executable, "-m", "cftwin", "serve", "--port", "0", "--state", str(state), "--admin",
                           "--ready-file", str(ready)], stderr=subprocess.PIPE, text=True) as proc:
        try:
            for _ in range(600):
                if ready.is_file() and ready.read_text().strip():
                    break
                time.sleep(0.05)
            url = ready.read_text().strip()
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            token = token_file.read_text().strip()
            assert len(token) >= 32
            assert httpx.get(url + "/__twin__/health", timeout=10).status_code == 401
            assert httpx.get(url + "/__twin__/health", headers={"cftwin-admin-token": token}, timeout=10).json() == {
                "status": "ok"}
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"admin token in {token_file}" in stderr and token not in stderr
    assert not token_file.exists()  # the token dies with the twin
