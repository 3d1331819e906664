"""Secret hygiene: the scanner, the runner's parameter guard and sealing, the twin's exposure.

Canary values are generated at run time (never committed key-shaped literals).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import nbformat
import pytest
from aigw.cli import main
from aigw.config import Secret
from aigw.errors import EvidenceError
from aigw.evidence import seal_bundle
from aigw.secrets_scan import scan_paths
from cftwin.adminauth import admin_headers
from cftwin.app import build_app
from cftwin.context import TwinContext, TwinOptions
from cftwin.db import Database
from cftwin.errors import TwinConfigError
from cftwin.seed import generated_provider_key, generated_seed
from cftwin.server import TwinServer
from reliability_support import aigw

if TYPE_CHECKING:
    from tests.conftest import TwinHandle


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _canary() -> Secret:
    return Secret("canary-" + _random(28), "OPENAI_API_KEY")


def _notebook(path: Path, *, output: str = "", metadata: str = "", source: str = "1") -> Path:
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    if output:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]  # type: ignore[no-untyped-call]
    if metadata:
        nb.metadata["papermill"] = {"parameters": {"store_name": metadata}}
    nb.cells = [cell]
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return path


# --- the scanner -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["output", "metadata", "source", "file"])
def test_scanner_finds_a_configured_value_anywhere(tmp_path: Path, where: str) -> None:
    canary = _canary()
    if where == "file":
        path = tmp_path / "notes.txt"
        path.write_text(f"line one\ntoken: {canary.reveal()}\n")
    else:
        path = _notebook(tmp_path / "n.ipynb", **{where: f"x {canary.reveal()} y"})
    findings = scan_paths([tmp_path], [canary], shapes=False)
    assert [f.kind for f in findings] == ["value of OPENAI_API_KEY"]
    expected = {"output": "cell 0 output 0", "metadata": "notebook metadata", "source": "cell 0 source",
                "file": "line 2"}[where]
    assert expected in findings[0].location and findings[0].path == str(path)
    assert canary.reveal() not in str(findings[0])


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google-ai-studio", "cloudflare"])
def test_scanner_finds_key_shapes_unconfigured(tmp_path: Path, provider: str) -> None:
    value = generated_seed().api_token if provider == "cloudflare" else generated_provider_key(provider)
    _notebook(tmp_path / "n.ipynb", output=f"leaked {value}")
    findings = scan_paths([tmp_path])
    assert len(findings) == 1 and value not in str(findings[0])
    kind = {"openai": "openai-key shape", "anthropic": "anthropic-key shape", "google-ai-studio": "google-key shape",
            "cloudflare": "cloudflare-token shape"}[provider]
    assert findings[0].kind == kind


def test_scan_secrets_command_exits_1_and_never_prints_the_value(tmp_path: Path) -> None:
    canary = _canary()
    env_file = tmp_path / "scan.env"
    env_file.write_text(f"OPENAI_API_KEY={canary.reveal()}\n")
    (tmp_path / "out").mkdir()
    _notebook(tmp_path / "out" / "n.ipynb", output=canary.reveal())
    done = aigw("scan-secrets", str(tmp_path / "out"), "--env-file", str(env_file))
    assert done.returncode == 1
    assert "value of OPENAI_API_KEY" in done.stdout and canary.reveal() not in done.stdout + done.stderr
    clean = tmp_path / "clean"
    clean.mkdir()
    _notebook(clean / "n.ipynb", output="nothing here")
    assert aigw("scan-secrets", str(clean), "--env-file", str(env_file)).returncode == 0


def test_sealing_scans_a_failed_run_too(tmp_path: Path) -> None:
    canary = _canary()
    run = tmp_path / "run"
    run.mkdir()
    notebook = _notebook(run / "02_provider_keys.ipynb", output=f"Traceback ... {canary.reveal()}")
    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    nb.cells[0].metadata["papermill"] = {"status": "failed"}
    nbformat.write(nb, notebook)  # type: ignore[no-untyped-call]
    with pytest.raises(EvidenceError, match="a configured secret value was found in 02_provider_keys"):
        seal_bundle(run, run_id="run", target="twin", settings=None, parameters={}, notebooks=[notebook],
                    status="failed", secrets=[canary])
    assert not notebook.exists()  # deleted, not left under outputs/
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["status"] == "failed" and doc["quarantined"]
    for path in run.rglob("*"):
        assert canary.reveal().encode() not in path.read_bytes(), path


# --- the runner's parameters -----------------------------------------------------------------------------


def test_runner_refuses_a_configured_secret_as_a_parameter(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seed = generated_seed()
    env_file = tmp_path / "twin.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in seed.to_environ().items()))
    out = tmp_path / "never"
    # Not key-shaped: refused because it *is* a configured secret (the AIG token).
    value = seed.aig_token or ""
    assert main(["run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "02", "--out", str(out),
                 "-p", "store_name", value]) == 1
    err = capsys.readouterr().err
    assert "-p store_name: the value is a secret or looks like a key" in err and value not in err
    assert main(["run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "02", "--out", str(out),
                 "-p", "store_name", generated_provider_key("anthropic")]) == 1
    assert "looks like a key" in capsys.readouterr().err
    assert not out.exists()


# --- the twin's exposure ---------------------------------------------------------------------------------


def test_twin_binds_to_loopback_by_default() -> None:
    server = TwinServer()
    assert server.host == "127.0.0.1"
    with pytest.raises(TwinConfigError, match=r"the twin binds to loopback only, not '0\.0\.0\.0'"):
        TwinServer(host="0.0.0.0")


@pytest.mark.parametrize("method, path", [
    ("GET", "/client/v4/user/tokens/verify"),
    ("GET", "/client/v4/accounts/{a}/ai-gateway/gateways"),
    ("POST", "/client/v4/accounts/{a}/ai-gateway/gateways"),
    ("GET", "/client/v4/accounts/{a}/secrets_store/stores"),
    ("GET", "/client/v4/accounts/{a}/no/such/route"),
])
@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer not-a-token", "Basic abc"])
def test_twin_refuses_requests_without_a_valid_token(twin: TwinHandle, method: str, path: str,
                                                     header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    if header == "Bearer ":
        headers = {"Authorization": "Bearer"}
    answer = httpx.request(method, twin.server.url + path.format(a=twin.account_id), headers=headers, json={})
    assert answer.status_code in (400, 401), answer.text
    body = answer.json()
    assert body["success"] is False and body["errors"][0]["code"] in (1000, 10000)


def test_admin_api_is_off_unless_asked_for() -> None:
    with TwinServer(TwinOptions(), seed=generated_seed()) as server:
        answer = httpx.get(server.admin_url + "/health")
        assert answer.status_code == 404 and "disabled" in answer.json()["error"]
        assert httpx.post(server.admin_url + "/reset").status_code == 404


@pytest.mark.parametrize("client, status", [(("127.0.0.1", 5000), 200), (("::1", 5000), 200),
                                            (("10.1.2.3", 5000), 403), (("192.168.1.9", 5000), 403)])
def test_admin_api_answers_loopback_clients_only(client: tuple[str, int], status: int) -> None:
    # The client address is what the server sees; ASGI lets the test set it (a real non-loopback peer
    # would need a second machine).
    app = build_app(TwinContext(db=Database(), options=TwinOptions(admin_enabled=True)))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as http:
            return await http.get("/__twin__/health", headers=admin_headers(app.state.twin.admin_token))

    answer = asyncio.run(ask())
    assert answer.status_code == status, answer.text
