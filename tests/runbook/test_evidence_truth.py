"""Issue 11: where the requests went, one source of settings, verification of meaning, signed bundles.

The bundles here come from real ``aigw run`` calls on the twin (a subprocess, as an operator runs it);
the forgeries are made the way a forger would: edit a file, then re-seal or re-hash.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from aigw import evidence, hosts, provenance, signing
from aigw.cli import main
from aigw.config import VARIABLES, Settings
from aigw.errors import ConfigError, EvidenceError
from aigw.evidence import CHECK_MIMETYPE, sealing
from aigw.evidence.verifying import verify_evidence
from aigw.runner import EXIT_INCOMPLETE
from cftwin.seed import generated_seed

from tests.reliability.reliability_support import write_env_file
from tests.steps_support import rehash_evidence

REPO = Path(__file__).resolve().parents[2]
_CLEARED = (*VARIABLES, "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE", "AIGW_NO_ENV_FILE",
            "AIGW_SIGNING_KEY", "AIGW_ALLOW_CUSTOM_ENDPOINTS")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONPATH"] = str(REPO / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _aigw(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aigw", *args], capture_output=True, text=True, env=_env(**extra),
                          timeout=300, check=False, cwd=REPO)


def _only_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.startswith("aigw: error:")]
    assert len(lines) == 1, text
    return lines[0]


# --- units ---------------------------------------------------------------------------------------------------


def test_pae_is_the_dsse_encoding() -> None:
    # The DSSE protocol's own example.
    assert signing.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_hosts_are_classified_and_give_the_target() -> None:
    assert hosts.host_kind("127.0.0.1:8787") == "twin" and hosts.host_kind("[::1]:80") == "twin"
    assert hosts.host_kind("localhost") == "twin"
    assert hosts.host_kind("api.cloudflare.com") == "cloudflare"
    assert hosts.host_kind("gateway.ai.cloudflare.com") == "cloudflare"
    assert hosts.host_kind("api.openai.com") == "provider"
    assert hosts.host_kind("proxy.example.com") == "custom"
    assert hosts.host_kind("api.cloudflare.com.evil.example") == "custom"
    assert hosts.derive_target({"127.0.0.1:5000": 3}) == "twin"
    assert hosts.derive_target({"api.cloudflare.com": 3, "api.openai.com": 1}) == "cloudflare"
    assert hosts.derive_target({"api.cloudflare.com": 3, "127.0.0.1:5000": 1}) == "custom"
    assert hosts.derive_target({}) == "none"


def _settings(api: str, gateway: str = "https://gateway.ai.cloudflare.com/v1",
              providers: str | None = None) -> Settings:
    return Settings(account_id="a" * 32, api_base_url=api, gateway_base_url=gateway, provider_base_url=providers)


def test_endpoints_that_contradict_the_target_are_refused() -> None:
    real = _settings("https://api.cloudflare.com/client/v4")
    loopback = _settings("http://127.0.0.1:8787/client/v4", "http://127.0.0.1:8787/v1",
                         "http://127.0.0.1:8787/__providers__")
    hosts.check_endpoints("cloudflare", real)
    hosts.check_endpoints("twin", loopback)
    with pytest.raises(ConfigError, match=r"target cloudflare, but CLOUDFLARE_API_BASE_URL .*loopback"):
        hosts.check_endpoints("cloudflare", loopback)
    hosts.check_endpoints("cloudflare", loopback, allow_custom=True)
    with pytest.raises(ConfigError, match=r"target twin, but CLOUDFLARE_API_BASE_URL .*not loopback"):
        hosts.check_endpoints("twin", real)
    with pytest.raises(ConfigError, match=r"target twin"):
        hosts.check_endpoints("twin", real, allow_custom=True)


def test_a_twin_session_with_real_urls_refuses_before_any_request(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIGW_NO_ENV_FILE", "1")
    monkeypatch.setenv("AIGW_TARGET", "twin")
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "b" * 32)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "t" * 40)
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", "https://api.cloudflare.com/client/v4")
    before = hosts.counts_in_process()
    from aigw.session import open_session

    with pytest.raises(ConfigError, match=r"target twin, but CLOUDFLARE_API_BASE_URL is https://api\.cloudflare\.com"):
        open_session(run_id="r")
    assert hosts.counts_in_process() == before


def test_git_dirty_counts_untracked_code_but_not_outputs(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")
    assert sealing._git_dirty(tmp_path) is False
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.txt").write_text("x")
    assert sealing._git_dirty(tmp_path) is False
    (tmp_path / "lib" / "sneaky.py").write_text("import os\n")
    assert sealing._git_dirty(tmp_path) is True


def test_twin_state_files_are_created_0600(tmp_path: Path) -> None:
    from cftwin.db import Database

    db = Database(str(tmp_path / "state.sqlite"))
    db.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
    db.execute("INSERT INTO probe VALUES (1)")
    made = sorted(tmp_path.glob("state.sqlite*"))
    assert made and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made), made
    db.close()


def test_keygen_writes_a_private_key_0600_never_overwrites_and_never_under_outputs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "keys" / "k.pem"
    assert main(["keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "k.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in capsys.readouterr().out
    assert main(["keygen", "--out", str(key)]) == 1
    assert "exists; a key is never overwritten" in capsys.readouterr().err
    assert main(["keygen", "--out", str(tmp_path / "outputs" / "k.pem")]) == 1
    assert "outputs/" in capsys.readouterr().err and not (tmp_path / "outputs").exists()


# --- a real signed run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("signed")
    pair = signing.generate_key_pair(base / "keys" / "signing.pem")
    other = signing.generate_key_pair(base / "keys" / "other.pem")
    pem = pair.private.read_text()
    seed = generated_seed()
    env_file = write_env_file(base / "twin.env", seed)
    state = base / "twin.sqlite"
    run = base / "run"
    done = _aigw("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", str(state),
                 "--notebooks", "01", "--out", str(run), AIGW_SIGNING_KEY=pem)
    # 01 alone leaves criteria 2-5 not run: an incomplete bundle (exit 3), sealed and verifiable all the same.
    assert done.returncode == EXIT_INCOMPLETE, done.stderr[-3000:]
    unsigned = base / "unsigned"
    assert _aigw("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", str(state),
                 "--notebooks", "01", "--out", str(unsigned)).returncode == EXIT_INCOMPLETE
    return {"base": base, "run": run, "unsigned": unsigned, "pair": pair, "other": other, "pem": pem,
            "state": state, "seed": seed}


@pytest.mark.slow
def test_a_signed_run_records_its_hosts_and_verifies_with_its_key(signed: dict[str, Any]) -> None:
    run: Path = signed["run"]
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["hosts"] and all(entry["kind"] == "twin" for entry in doc["hosts"].values())
    # Every request the notebook's client counted went to a recorded host, and nothing else did.
    assert sum(entry["requests"] for entry in doc["hosts"].values()) == doc["retries"]["01_create_gateway"]["requests"]
    assert doc["hosts_target"] == "twin" and doc["allow_custom_endpoints"] is False
    assert not (run / ".hosts").exists()
    summary = (run / "SUMMARY.md").read_text()
    assert "**Requests went to:** 127.0.0.1:" in summary
    # The notebook's first output names the hosts, not a label alone.
    nb = nbformat.read(run / "01_create_gateway.ipynb", as_version=4)
    session_cell = [c for c in nb.cells if c.cell_type == "code"][2]
    shown = session_cell.outputs[0]["data"]["text/markdown"]
    assert "requests go to API `127.0.0.1:" in shown and "gateway `127.0.0.1:" in shown
    # The provenance: an in-toto Statement over every file, with the injected parameters.
    statement, opened = provenance.read_attestation(run, signing.load_public_key(signed["pair"].public))
    assert opened.verified_key == signed["pair"].key_id
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"] for s in statement["subject"]}
    assert names == {p.name for p in run.iterdir()} - {"provenance.dsse.json"}
    predicate = statement["predicate"]
    assert predicate["parameters"]["notebooks"]["01_create_gateway"]["run_id"] == "run"
    assert predicate["hosts"] == doc["hosts"] and predicate["started_at"] < predicate["finished_at"]
    assert set(predicate["requirements"]) >= {"requirements.txt", "tests/requirements.txt"}
    # The key never reaches a kernel or the bundle; the twin's state file is private.
    for path in run.rglob("*"):
        assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert stat.S_IMODE(signed["state"].stat().st_mode) == 0o600

    done = _aigw("verify-evidence", str(run), "--key", str(signed["pair"].public))
    assert done.returncode == 0, done.stderr
    assert f"signed by key {signed['pair'].key_id[:16]}: authentic" in done.stdout
    done = _aigw("verify-evidence", str(signed["unsigned"]))
    assert done.returncode == 0 and "unsigned: integrity only, not authenticity" in done.stdout


@pytest.mark.slow
def test_one_byte_changed_anywhere_fails_with_one_line_naming_it(signed: dict[str, Any], tmp_path: Path) -> None:
    key = signing.load_public_key(signed["pair"].public)
    files = sorted(p.name for p in signed["run"].iterdir())
    assert "provenance.dsse.json" in files and "hosts.json" in files
    for name in files:
        copy = tmp_path / name
        shutil.copytree(signed["run"], copy)
        data = bytearray((copy / name).read_bytes())
        middle = len(data) // 2
        data[middle] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(EvidenceError) as caught:
            verify_evidence(copy, key)
        message = str(caught.value)
        assert name in message and "\n" not in message, (name, message)
    with pytest.raises(EvidenceError, match="no signature verifies with key"):
        verify_evidence(signed["run"], signing.load_public_key(signed["other"].public))
    with pytest.raises(EvidenceError, match="unsigned, so it cannot be checked"):
        verify_evidence(signed["unsigned"], key)


def _flip_first_check(notebook: Path, to: str) -> str:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(CHECK_MIMETYPE)
            if payload and payload["criterion"] is not None and payload["status"] != to:
                payload["status"] = to
                nbformat.write(nb, notebook)
                return str(payload["check"])
    raise AssertionError("no check to flip")


def _reseal(folder: Path, target: str) -> None:
    """What a forger with the library does: seal the edited folder again."""
    for name in ("manifest.json", "provenance.dsse.json", "evidence.json", "SUMMARY.md"):
        (folder / name).unlink()
    status = "completed" if target == "cloudflare" else "failed"
    evidence.seal_bundle(folder, run_id=folder.name, target=target, settings=None, parameters={},
                         notebooks=sorted(folder.glob("*.ipynb")), status=status, root=REPO, signing_key=None)


@pytest.mark.slow
def test_a_forged_bundle_resealed_as_cloudflare_fails_with_and_without_the_key(signed: dict[str, Any],
                                                                                tmp_path: Path) -> None:
    forged = tmp_path / "run"
    shutil.copytree(signed["run"], forged)
    _flip_first_check(forged / "01_create_gateway.ipynb", "fail")
    _reseal(forged, "cloudflare")
    assert json.loads((forged / "evidence.json").read_text())["target"] == "cloudflare"
    with pytest.raises(EvidenceError, match=r"target cloudflare, but the run's requests went to 127\.0\.0\.1"):
        verify_evidence(forged)
    with pytest.raises(EvidenceError, match="unsigned"):
        verify_evidence(forged, signing.load_public_key(signed["pair"].public))
    done = _aigw("verify-evidence", str(forged))
    assert done.returncode == 1 and "target cloudflare" in _only_line(done.stderr)


@pytest.mark.slow
def test_evidence_or_summary_that_contradicts_the_notebook_fails_even_when_rehashed(signed: dict[str, Any],
                                                                                     tmp_path: Path) -> None:
    contradicting = tmp_path / "evidence"
    shutil.copytree(signed["unsigned"], contradicting)
    doc = json.loads((contradicting / "evidence.json").read_text())
    first = next(c for c in doc["checks"] if c["notebook"] and c["status"] == "pass")
    first["status"] = "fail"
    (contradicting / "evidence.json").write_text(json.dumps(doc, indent=2))
    rehash_evidence(contradicting)
    with pytest.raises(EvidenceError, match=rf"evidence\.json disagrees with 01_create_gateway cell {first['cell']}"):
        verify_evidence(contradicting)

    summary = tmp_path / "summary"
    shutil.copytree(signed["unsigned"], summary)
    text = (summary / "SUMMARY.md").read_text()
    assert "**Status: INCOMPLETE**" in text
    (summary / "SUMMARY.md").write_text(text.replace("**Status: INCOMPLETE**", "**Status: REHEARSAL-PASSED**"))
    rehash_evidence(summary)
    with pytest.raises(EvidenceError, match=r"SUMMARY\.md says status REHEARSAL-PASSED, evidence\.json incomplete"):
        verify_evidence(summary)

    notebook = tmp_path / "notebook"
    shutil.copytree(signed["unsigned"], notebook)
    _flip_first_check(notebook / "01_create_gateway.ipynb", "fail")
    rehash_evidence(notebook)
    with pytest.raises(EvidenceError, match=r"evidence\.json disagrees with 01_create_gateway"):
        verify_evidence(notebook)


def _failed_check_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("evidence.record_all(result)")
    payload = {"criterion": 1, "check": "gateway listed", "status": "fail", "detail": "not listed", "time": "t"}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={CHECK_MIMETYPE: payload, "text/plain": "x"}),
        nbformat.v4.new_output("error", ename="CheckFailed",
                               evalue="criterion 1 check failed: gateway listed: not listed", traceback=[]),
    ]
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}), cell]
    nbformat.write(nb, path)


def test_a_check_flipped_to_pass_in_a_cell_that_failed_on_it_is_caught(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _failed_check_notebook(run / "01_demo.ipynb")
    evidence.seal_bundle(run, run_id="run", target="twin", settings=None, parameters={},
                         notebooks=[run / "01_demo.ipynb"], status="failed", root=REPO)
    verify_evidence(run)
    _flip_first_check(run / "01_demo.ipynb", "pass")
    _reseal(run, "twin")
    with pytest.raises(EvidenceError, match=r"01_demo cell 1 stopped on a failed check 'gateway listed'"):
        verify_evidence(run)


# --- refusals and one source of settings -------------------------------------------------------------------------


def test_target_cloudflare_with_loopback_urls_is_refused_before_anything_runs(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "cf.env", generated_seed(),
                         CLOUDFLARE_API_BASE_URL="http://127.0.0.1:9/client/v4",
                         CLOUDFLARE_GATEWAY_BASE_URL="http://127.0.0.1:9/v1")
    out = tmp_path / "never"
    done = _aigw("run", "--target", "cloudflare", "--env-file", str(env_file), "--notebooks", "01", "--out", str(out))
    assert done.returncode == 1
    line = _only_line(done.stderr)
    assert "target cloudflare, but CLOUDFLARE_API_BASE_URL is http://127.0.0.1:9/client/v4" in line
    assert "--allow-custom-endpoints" in line and not out.exists()
    done = _aigw("run", "--target", "twin", "--allow-custom-endpoints", "--notebooks", "01", "--out", str(out))
    assert done.returncode == 1 and "works only with --target cloudflare" in done.stderr and not out.exists()


@pytest.mark.slow
def test_allowed_custom_endpoints_are_recorded_and_shown(twin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env_file = write_env_file(tmp_path / "custom.env", twin.seed, **twin.seed.to_environ(twin.server))
    out = tmp_path / "custom"
    done = _aigw("run", "--target", "cloudflare", "--allow-custom-endpoints", "--env-file", str(env_file),
                 "--notebooks", "01", "--out", str(out))
    assert done.returncode == EXIT_INCOMPLETE, done.stderr[-3000:]
    doc = json.loads((out / "evidence.json").read_text())
    assert doc["target"] == "cloudflare" and doc["allow_custom_endpoints"] is True and doc["hosts_target"] == "twin"
    # Requests that went to the twin are no production evidence, whatever the label.
    assert doc["production_evidence"] is False
    summary = (out / "SUMMARY.md").read_text()
    assert "**custom endpoints allowed**" in summary and "(not Cloudflare's hosts: twin;" in summary
    shown = verify_evidence(out)
    assert shown.target == "cloudflare" and shown.hosts_target == "twin"


@pytest.mark.slow
def test_a_twin_run_with_env_file_never_reads_a_dev_vars_found_upwards(tmp_path: Path) -> None:
    # A project copy whose .dev.vars holds a canary key the --env-file lacks: the kernels (which run in
    # the notebooks' folder and used to search upwards) must not see it.
    project = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    seed = generated_seed()
    canary = "sk-" + "canary" + base64.b32encode(os.urandom(20)).decode().lower()
    (project / ".dev.vars").write_text(f"OPENAI_API_KEY={canary}\n")
    env_file = write_env_file(tmp_path / "no-openai.env", seed, drop=("OPENAI_API_KEY",))
    out = tmp_path / "run"
    state = tmp_path / "state.sqlite"
    script = (
        "import sys; from pathlib import Path; from aigw.plan import plan_run; from aigw.runner import run_plan; "
        f"r = run_plan(plan_run(notebooks=[Path({str(project / 'notebooks' / '02_provider_keys.ipynb')!r})], "
        f"target='twin', run_dir=Path({str(out)!r}), env_file=Path({str(env_file)!r}), twin_state={str(state)!r}, "
        f"root=Path({str(REPO)!r}))); print('FAILURE', r.failure)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(),
                          cwd=project / "notebooks", timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OPENAI_API_KEY is not set" in done.stdout
    for path in [*out.rglob("*"), *tmp_path.glob("state.sqlite*")]:
        assert canary.encode() not in path.read_bytes(), path


def test_a_quarantined_notebook_still_verifies_from_the_checks_listed(tmp_path: Path) -> None:
    from aigw.config import Secret

    run = tmp_path / "run"
    run.mkdir()
    _failed_check_notebook(run / "01_demo.ipynb")
    leaky = nbformat.v4.new_notebook()
    leaked = "sk-" + base64.b32encode(os.urandom(25)).decode().lower()
    cell = nbformat.v4.new_code_cell("evidence.record_all(result)")
    payload = {"criterion": 3, "check": "unified endpoint", "status": "pass", "detail": "200", "time": "t"}
    cell.outputs = [nbformat.v4.new_output("display_data", data={CHECK_MIMETYPE: payload, "text/plain": "x"}),
                    nbformat.v4.new_output("stream", name="stdout", text=f"key {leaked}\n")]
    leaky.cells = [cell]
    nbformat.write(leaky, run / "02_leaky.ipynb")
    with pytest.raises(EvidenceError, match="02_leaky"):
        evidence.seal_bundle(run, run_id="run", target="twin", settings=None, parameters={},
                             notebooks=[run / "01_demo.ipynb", run / "02_leaky.ipynb"], status="failed", root=REPO,
                             secrets=[Secret(leaked, "OPENAI_API_KEY")])
    assert not (run / "02_leaky.ipynb").exists()
    doc = json.loads((run / "evidence.json").read_text())
    # The deleted notebook's check still speaks to criterion 3 (one provider of three: incomplete, not "not run").
    assert {c["number"]: c["status"] for c in doc["criteria"]}[3] == "incomplete"
    verify_evidence(run)


def test_an_unreadable_signing_key_is_one_line_before_anything_runs(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["run", "--target", "twin", "--notebooks", "01", "--out", str(out),
                 "--signing-key", str(tmp_path / "no-such.pem")]) == 1
    err = capsys.readouterr().err
    assert "signing key" in err and "cannot be read" in err and not out.exists()
    not_a_key = tmp_path / "bad.pem"
    not_a_key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert main(["run", "--target", "twin", "--notebooks", "01", "--out", str(out),
                 "--signing-key", str(not_a_key)]) == 1
    assert "is not an unencrypted PEM private key" in capsys.readouterr().err and not out.exists()
