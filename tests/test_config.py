"""aigw.config: loading, validation, precedence, and that a Secret never shows its value."""

from __future__ import annotations

import logging
import pickle
import secrets
from pathlib import Path

import pytest
from aigw.config import (
    DEFAULT_GATEWAY_ID,
    PROVIDER_KEY_VARS,
    VARIABLES,
    Secret,
    find_env_file,
    load_settings,
    redact,
    validate_gateway_id,
)
from aigw.errors import ConfigError

ACCOUNT = "0123456789abcdef0123456789abcdef"


def _write(path: Path, **values: str) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = _write(tmp_path / ".dev.vars", CLOUDFLARE_ACCOUNT_ID=ACCOUNT, CLOUDFLARE_GATEWAY_ID="from-file")
    settings = load_settings(env_file, environ={"CLOUDFLARE_GATEWAY_ID": "from-env"})
    assert settings.account_id == ACCOUNT
    assert settings.gateway_id == "from-env"
    assert settings.env_file == env_file


def test_defaults_and_placeholders(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / ".dev.vars.example"
    # The example's placeholders count as unset, so loading it alone names the missing account id.
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID is not set"):
        load_settings(example, environ={})
    settings = load_settings(example, environ={"CLOUDFLARE_ACCOUNT_ID": ACCOUNT})
    assert settings.gateway_id == DEFAULT_GATEWAY_ID
    assert settings.api_token is None and settings.provider_keys == {}
    assert settings.api_base_url == "https://api.cloudflare.com/client/v4"
    assert not settings.is_loopback


def test_example_names_every_variable() -> None:
    example = (Path(__file__).resolve().parents[1] / ".dev.vars.example").read_text()
    assert set(PROVIDER_KEY_VARS.values()) <= set(VARIABLES)
    for name in VARIABLES:
        assert f"\n{name}=" in example or f"\n# {name}=" in example, name


def test_gateway_token_falls_back_to_api_token() -> None:
    token = secrets.token_hex(20)
    settings = load_settings(environ={"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": token})
    assert settings.gateway_token is not None and settings.gateway_token.reveal() == token
    aig = secrets.token_hex(20)
    settings = load_settings(
        environ={"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": token, "CF_AIG_TOKEN": aig}
    )
    assert settings.gateway_token is not None and settings.gateway_token.reveal() == aig


@pytest.mark.parametrize("bad", ["", "abc", ACCOUNT.upper(), ACCOUNT + "0", "g" * 32])
def test_bad_account_id_is_one_clear_line(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"CLOUDFLARE_ACCOUNT_ID": bad or " "})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["UPPER", "-lead", "trail-", "two--dashes", "sp ace", "a" * 65, "dot.ted"])
def test_bad_gateway_id(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid gateway id"):
        validate_gateway_id(bad)


@pytest.mark.parametrize("good", ["a", "github-ai-agent", "under_score-1", "a" * 64])
def test_good_gateway_id(good: str) -> None:
    assert validate_gateway_id(good) == good


def test_bad_url() -> None:
    with pytest.raises(ConfigError, match="CLOUDFLARE_API_BASE_URL"):
        load_settings(environ={"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_BASE_URL": "ftp://x"})


def test_missing_env_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope", environ={})


def test_find_env_file_walks_up(tmp_path: Path) -> None:
    _write(tmp_path / ".dev.vars", CLOUDFLARE_ACCOUNT_ID=ACCOUNT)
    deep = tmp_path / "notebooks" / "x"
    deep.mkdir(parents=True)
    assert find_env_file(deep) == tmp_path / ".dev.vars"


def test_secret_never_shows_its_value(caplog: pytest.LogCaptureFixture) -> None:
    value = secrets.token_urlsafe(24)
    secret = Secret(value, "OPENAI_API_KEY")
    settings = load_settings(environ={"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "OPENAI_API_KEY": value})
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").debug("settings %s %r %s", settings, settings, secret)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r:>40}", repr(settings), str(settings), caplog.text]
    for text in shown:
        assert value not in text
    assert "OPENAI_API_KEY" in repr(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_redact() -> None:
    value = secrets.token_hex(16)
    assert redact(f"token={value}; again {value}", [Secret(value)]) == "token=***; again ***"


def test_api_budget() -> None:
    base = {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT}
    assert load_settings(environ=base).api_budget == (1200, 300.0)
    assert load_settings(environ={**base, "AIGW_API_BUDGET": "120/30"}).api_budget == (120, 30.0)
    for bad in ("fast", "0/30", "10/0", "10"):
        with pytest.raises(ConfigError, match="AIGW_API_BUDGET"):
            load_settings(environ={**base, "AIGW_API_BUDGET": bad})
