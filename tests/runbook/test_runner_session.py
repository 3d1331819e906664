"""aigw.session: target resolution, the session's face, and the detached twin for interactive rehearsal."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from aigw import evidence
from aigw.config import has_real_credentials
from aigw.session import open_session

_VARS = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
         "GOOGLE_AI_STUDIO_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CLOUDFLARE_API_BASE_URL",
         "CLOUDFLARE_GATEWAY_BASE_URL", "AIGW_PROVIDER_BASE_URL", "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR",
         "AIGW_ENV_FILE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_real_credentials_need_account_token_and_a_remote_api() -> None:
    account, token = secrets.token_hex(16), secrets.token_urlsafe(30)
    assert has_real_credentials({"CLOUDFLARE_ACCOUNT_ID": account, "CLOUDFLARE_API_TOKEN": token})
    assert not has_real_credentials({"CLOUDFLARE_ACCOUNT_ID": account})
    assert not has_real_credentials({"CLOUDFLARE_ACCOUNT_ID": "not-an-account", "CLOUDFLARE_API_TOKEN": token})
    assert not has_real_credentials({"CLOUDFLARE_ACCOUNT_ID": account, "CLOUDFLARE_API_TOKEN": token,
                                     "CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:8787/client/v4"})


def test_session_from_the_runner_environment(twin, clean_env: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in twin.seed.to_environ(twin.server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIGW_TARGET", "twin")
    monkeypatch.setenv("AIGW_RUN_DIR", str(tmp_path / "run"))
    session = open_session(run_id="r1")
    assert session.target == "twin" and session.run_id == "r1"
    assert session.run_dir == (tmp_path / "run").resolve() and session.run_dir.is_dir()
    shown = session._repr_markdown_()
    assert "Target: twin" in shown and twin.seed.account_id in shown and twin.seed.api_token not in shown
    assert session.client.verify_token().active
    evidence.record(None, "note", "pass", f"token {twin.seed.api_token}")
    assert twin.seed.api_token not in capsys.readouterr().out
    session.close()


def test_unknown_target_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGW_TARGET", "production")
    with pytest.raises(Exception, match="AIGW_TARGET 'pr…' \\(10 characters\\) is not a target"):
        open_session()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def background(clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AIGW_CACHE_DIR", str(cache))
    monkeypatch.setenv("AIGW_TWIN_PORT", str(_free_port()))
    yield cache
    pid_file = cache / "twin.pid"
    if pid_file.is_file():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.mark.slow
def test_without_credentials_a_detached_twin_is_started_and_reused(background: Path) -> None:
    first = open_session(run_dir=str(background.parent / "run"))
    assert first.target == "twin"
    assert first.settings.is_loopback and first.settings.api_base_url.endswith(f":{os.environ['AIGW_TWIN_PORT']}"
                                                                                "/client/v4")
    assert first.client.verify_token().active
    seed_file = background / "twin.env"
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    # The admin API is the background twin's, with its token beside its state (0600): reused by its token.
    assert stat.S_IMODE((background / "twin.sqlite.admin-token").stat().st_mode) == 0o600
    pid = (background / "twin.pid").read_text()
    second = open_session(run_dir=str(background.parent / "run"))
    assert second.settings.account_id == first.settings.account_id
    assert (background / "twin.pid").read_text() == pid  # reused, not restarted
    assert second.settings.provider_keys == first.settings.provider_keys
    first.close()
    second.close()


@pytest.mark.slow
def test_a_key_the_dev_vars_leaves_out_is_not_invented(background: Path) -> None:
    """With the operator's .dev.vars (no OPENAI_API_KEY), the background twin takes the operator's keys and
    the settings get no OpenAI key, so notebook 02 asks for it; the session says where each value came from."""
    import httpx
    from cftwin.seed import generated_provider_key

    anthropic = generated_provider_key("anthropic")
    (background.parent / ".dev.vars").write_text(f"ANTHROPIC_API_KEY={anthropic}\nCLOUDFLARE_GATEWAY_ID=my-gw\n")
    google = generated_provider_key("google-ai-studio")
    os.environ["GOOGLE_AI_STUDIO_API_KEY"] = google
    try:
        session = open_session(run_dir=str(background.parent / "run"))
    finally:
        del os.environ["GOOGLE_AI_STUDIO_API_KEY"]
    try:
        assert session.target == "twin" and session.settings.gateway_id == "my-gw"
        assert session.settings.provider_key("openai") is None
        assert session.settings.provider_key("anthropic").reveal() == anthropic  # type: ignore[union-attr]
        assert session.settings.provider_key("google-ai-studio").reveal() == google  # type: ignore[union-attr]
        assert session.sources["ANTHROPIC_API_KEY"] == ".dev.vars"
        assert session.sources["GOOGLE_AI_STUDIO_API_KEY"] == "environment"
        assert session.sources["OPENAI_API_KEY"] == "not set"
        assert session.sources["CLOUDFLARE_API_TOKEN"] == "generated for the rehearsal"
        shown = session._repr_markdown_()
        assert "not set: OPENAI_API_KEY" in shown and anthropic not in shown and google not in shown
        # The twin accepts the operator's keys, and for OpenAI only the rehearsal key it generated.
        provider_base = session.settings.provider_base_url
        answer = httpx.get(f"{provider_base}/anthropic/v1/models",
                           headers={"x-api-key": anthropic, "anthropic-version": "2023-06-01"})
        assert answer.status_code == 200
        rehearsal = next(line.split("=", 1)[1].strip("'") for line in (background / "twin.env").read_text().splitlines()
                         if line.startswith("OPENAI_API_KEY="))
        for key, status in ((rehearsal, 200), (generated_provider_key("openai"), 401)):
            assert httpx.get(f"{provider_base}/openai/v1/models",
                             headers={"Authorization": f"Bearer {key}"}).status_code == status
    finally:
        session.close()
