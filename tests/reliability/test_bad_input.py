"""Bad input: one clear line (what is wrong and the fix, with Cloudflare's code where there is one), a
non-zero exit, no traceback without ``--debug``, and nothing half-made in the twin's state.

Rows about the runbook run ``aigw run`` as a subprocess (``--target cloudflare --allow-custom-endpoints``
with an env file aimed at this module's twin, so the token and account are the test's; ``--target twin``
where the runner's own twin is meant). Rows about one function call the library.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aigw._http import RetryPolicy
from aigw.cloudflare import CloudflareClient
from aigw.config import Secret, load_settings
from aigw.errors import (
    AuthenticationError,
    ConfigError,
    DeadlineExceededError,
    QuotaExceededError,
    TransportError,
    ValidationError,
)
from cftwin.seed import generated_seed
from reliability_support import aigw, last_line, state_counts, write_env_file

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

pytestmark = pytest.mark.slow
FAST = RetryPolicy(attempts=2, base_s=0.01, max_s=0.02)


@pytest.fixture
def fresh(twin: TwinHandle, tmp_path: Path) -> Iterator[TwinHandle]:
    twin.reset()
    yield twin


@pytest.fixture
def admin(twin: TwinHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twin.server.admin_url, headers=twin.server.admin_headers, timeout=10) as client:
        yield client


def _env(twin: TwinHandle, folder: Path, name: str, **override: str | None) -> Path:
    """An env file for the twin's seed aimed at the twin's URLs; ``None`` drops a variable."""
    values = {k: v for k, v in twin.seed.to_environ(twin.server).items()}
    drop = tuple(k for k, v in override.items() if v is None)
    return write_env_file(folder / f"{name}.env", twin.seed, drop=drop,
                          **{k: v for k, v in {**values, **override}.items() if v is not None and k not in drop})


def _run(folder: Path, env_file: Path | None, *args: str, target: str = "cloudflare",
         notebooks: str = "01") -> tuple[int, str, Path]:
    out = folder / "run"
    command = ["run", "--target", target, "--notebooks", notebooks, "--out", str(out), *args]
    if target == "cloudflare":
        # Issue 11: a cloudflare target on the twin's loopback URLs is refused unless allowed explicitly.
        command.append("--allow-custom-endpoints")
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    done = aigw(*command, cwd=folder)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode, last_line(done.stderr), out


def _token(admin: httpx.Client, account_id: str, permissions: list[str]) -> dict[str, str]:
    answer = admin.post("/tokens", json={"account_id": account_id, "permissions": permissions})
    answer.raise_for_status()
    token: dict[str, str] = answer.json()
    return token


def _nothing_made(twin: TwinHandle) -> None:
    counts = state_counts(twin.context.db, twin.account_id)
    assert (counts.gateways, counts.stores, counts.secrets, counts.provider_configs) == (0, 0, 0, 0), counts


def _no_half_made(twin: TwinHandle) -> Any:
    counts = state_counts(twin.context.db, twin.account_id)
    assert counts.duplicates == () and counts.half_made == (), counts
    return counts


# --- settings ---------------------------------------------------------------------------------------


def test_no_dev_vars_and_no_environment(fresh: TwinHandle, tmp_path: Path) -> None:
    code, line, out = _run(tmp_path, None)
    assert code == 1
    # Refused before any kernel starts: no notebook ran and no run folder was made.
    assert line == ("aigw: error: CLOUDFLARE_ACCOUNT_ID is not set (no .dev.vars found). Copy .dev.vars.example to "
                    ".dev.vars and fill it in, or run `aigw run` to rehearse on the twin"), line
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"^CLOUDFLARE_ACCOUNT_ID is not set \(no \.dev\.vars found\)"):
        load_settings(search_from=tmp_path, environ={})


@pytest.mark.parametrize("variable", ["CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"])
def test_each_required_variable_missing(fresh: TwinHandle, tmp_path: Path, variable: str) -> None:
    env_file = _env(fresh, tmp_path, "missing", **{variable: None})
    code, line, out = _run(tmp_path, env_file, target="twin")
    assert code == 1
    assert line == (f"aigw: error: {env_file} does not set {variable}. Fill them in (see .dev.vars.example), "
                    "or serve the twin without --env-file for a generated seed")
    assert not out.exists()


@pytest.mark.parametrize("variable", ["GOOGLE_AI_STUDIO_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
def test_each_provider_key_missing_or_empty(fresh: TwinHandle, tmp_path: Path, variable: str) -> None:
    from aigw.session import Session
    from aigw.steps import provider_keys

    environ = {**fresh.seed.to_environ(fresh.server), variable: ""}
    session = Session(load_settings(environ=environ), "twin", "t", tmp_path)
    with pytest.raises(ConfigError) as caught:
        provider_keys.collect_keys(session)
    slug = next(p for p, v in provider_keys.PROVIDER_KEY_VARS.items() if v == variable)
    assert str(caught.value) == (f"{variable} is not set. Put it in .dev.vars or the environment "
                                 f"(or drop {slug} from required_providers)")
    _nothing_made(fresh)


def test_account_id_not_32_hex(tmp_path: Path, twin: TwinHandle) -> None:
    env_file = _env(twin, tmp_path, "account", CLOUDFLARE_ACCOUNT_ID="ABC123")
    code, line, out = _run(tmp_path, env_file, target="twin")
    assert code == 1
    assert line == ("aigw: error: CLOUDFLARE_ACCOUNT_ID 'A…' (6 characters) is not an account id (32 lowercase hex "
                    "characters). Copy it from the dashboard: Account Home > the account's menu > Copy account ID")
    assert not out.exists()


_GATEWAY_HINT = ("Use 1-64 characters: lowercase letters, digits and '_', joined by single '-' "
                 "(pattern ^[a-z0-9_]+(?:-[a-z0-9_]+)*$)")


@pytest.mark.parametrize("gateway_id", ["Bad--Id", "a" * 65])
def test_gateway_id_off_the_pattern_or_too_long(fresh: TwinHandle, tmp_path: Path, gateway_id: str) -> None:
    env_file = _env(fresh, tmp_path, "gw", CLOUDFLARE_GATEWAY_ID=gateway_id)
    code, line, out = _run(tmp_path, env_file)
    assert code == 1
    # Masked (a token pasted into the wrong variable would otherwise be printed): two characters and the length.
    shown = re.escape(f"'{gateway_id[:min(2, len(gateway_id) // 4)]}…' ({len(gateway_id)} characters)")
    # From .dev.vars: refused before any kernel starts, so no notebook and no run folder.
    assert re.fullmatch(rf"aigw: error: CLOUDFLARE_GATEWAY_ID "
                        rf"{shown} is not a valid gateway id\. {re.escape(_GATEWAY_HINT)}", line), line
    assert not out.exists()
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "ok"), "-p", "gateway_id", gateway_id)
    assert code == 1
    assert re.fullmatch(rf"aigw: error: 01_create_gateway cell \d+: ConfigError: gateway_id {shown}"
                        rf" is not a valid gateway id\. {re.escape(_GATEWAY_HINT)}", line), line
    # The API refuses it too (400, code 7001, with the field), whoever sends it.
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=Secret(fresh.seed.api_token),
                          account_id=fresh.account_id, retry=FAST) as client, \
            pytest.raises(ValidationError, match=r"HTTP 400: code 7001: Input Validation Error: id must be 1-64"):
        client.create_gateway(gateway_id)
    _nothing_made(fresh)


def test_papermill_parameter_of_the_wrong_type(fresh: TwinHandle, tmp_path: Path) -> None:
    code, line, out = _run(tmp_path, _env(fresh, tmp_path, "ok"), "-p", "dry_run", "maybe")
    assert code == 1
    assert line == "aigw: error: -p dry_run 'm…' (5 characters): dry_run is a bool parameter. Use True or False"
    assert not out.exists()
    _nothing_made(fresh)


# --- tokens -------------------------------------------------------------------------------------------


def test_wrong_token(fresh: TwinHandle, tmp_path: Path) -> None:
    wrong = "w" + secrets.token_urlsafe(30)
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "wrong", CLOUDFLARE_API_TOKEN=wrong))
    assert code == 1
    assert re.fullmatch(r"aigw: error: 01_create_gateway cell \d+: AuthenticationError: Cloudflare API GET "
                        r"/user/tokens/verify failed with HTTP 401: code 1000: Invalid API Token\. Check "
                        r"CLOUDFLARE_API_TOKEN in \.dev\.vars or the environment: it must be an active API token "
                        r"\(create one under My Profile > API Tokens\)", line), line
    assert wrong not in line
    _nothing_made(fresh)


def test_revoked_token(fresh: TwinHandle, admin: httpx.Client, tmp_path: Path) -> None:
    token = _token(admin, fresh.account_id, ["ai_gateway:read", "ai_gateway:write", "secrets_store:read",
                                             "secrets_store:write"])
    admin.delete(f"/tokens/{token['id']}").raise_for_status()
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "revoked", CLOUDFLARE_API_TOKEN=token["value"]))
    assert code == 1
    assert re.search(r"cell \d+: AuthenticationError: .*HTTP 401: code 1000: Invalid API Token\. Check "
                     r"CLOUDFLARE_API_TOKEN", line), line
    _nothing_made(fresh)


def test_token_without_ai_gateway_write(fresh: TwinHandle, admin: httpx.Client, tmp_path: Path) -> None:
    token = _token(admin, fresh.account_id, ["ai_gateway:read", "secrets_store:read", "secrets_store:write"])
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "noaig", CLOUDFLARE_API_TOKEN=token["value"]))
    assert code == 1
    assert re.fullmatch(r"aigw: error: 01_create_gateway cell \d+: PermissionDeniedError: the token may not create "
                        r"gateways\. Give the token AI Gateway Write on this account \(My Profile > API Tokens > "
                        r"Edit\)", line), line
    _nothing_made(fresh)


def test_token_without_secrets_store_write(fresh: TwinHandle, admin: httpx.Client, tmp_path: Path) -> None:
    token = _token(admin, fresh.account_id, ["ai_gateway:read", "ai_gateway:write", "secrets_store:read"])
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "noss", CLOUDFLARE_API_TOKEN=token["value"]),
                         notebooks="01,02")
    assert code == 1
    assert re.fullmatch(r"aigw: error: 02_provider_keys cell \d+: PermissionDeniedError: the token may not create a "
                        r"Secrets Store\. Give the token Secrets Store Write on this account", line), line
    counts = _no_half_made(fresh)
    assert (counts.gateways, counts.stores, counts.secrets, counts.provider_configs) == (1, 0, 0, 0)


# --- providers and keys --------------------------------------------------------------------------------


def test_unknown_provider(fresh: TwinHandle, tmp_path: Path) -> None:
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "ok"), "-p", "providers", "openai,mistral",
                         target="twin", notebooks="02")
    assert code == 1
    assert re.fullmatch(r"aigw: error: 02_provider_keys cell \d+: ConfigError: providers: unknown provider\(s\) "
                        r"mistral\. Use google-ai-studio, openai, anthropic", line), line
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=Secret(fresh.seed.api_token),
                          account_id=fresh.account_id, retry=FAST) as client:
        client.create_gateway("gw-unknown")
        with pytest.raises(ValidationError, match=r"code 7001: Input Validation Error: unknown provider_slug"):
            client.create_provider_config("gw-unknown", "nosuchai", "default", secret_id="0" * 32)
        with pytest.raises(ValidationError, match=r"code 7001: Input Validation Error: unknown provider 'nosuchai'"):
            client.gateway_url("gw-unknown", "nosuchai")
        assert client.list_provider_configs("gw-unknown") == []


def test_unknown_model(fresh: TwinHandle, tmp_path: Path) -> None:
    env_file = _env(fresh, tmp_path, "ok")
    # A model the provider does not serve: criterion 3 fails on the provider's own 404, named in one line. Every
    # check of 03 runs first, and the one line lists each failure (issue 11: it used to name only the first).
    code, line, _ = _run(tmp_path, env_file, "-p", "models", "openai/gpt-nope", "-p", "overhead_samples", "0",
                         notebooks="01,02,03")
    assert code == 1
    # One failure reads "criterion 3 check failed: ..."; several, "N checks failed: (1) criterion 3: ...".
    assert re.fullmatch(r"aigw: error: 03_verify_endpoints cell \d+: CheckFailed: (?:\d+ checks failed: \(1\) "
                        r"criterion 3: |criterion 3 check failed: )unified endpoint answers openai/gpt-nope: 404 "
                        r"provider_error: The model "
                        r"`gpt-nope` does not exist.*", line), line
    _no_half_made(fresh)
    # The contract's spelling of a provider is refused before any probe, with Cloudflare's slug as the fix.
    again = tmp_path / "again"
    again.mkdir()
    code, line, _ = _run(again, env_file, "-p", "models", "google/gemini-2.5-flash", notebooks="03")
    assert code == 1
    assert line.endswith("ConfigError: model 'google/gemini-2.5-flash' names provider 'google'. Cloudflare's slug "
                         "is google-ai-studio: use 'google-ai-studio/gemini-2.5-flash'"), line


@pytest.mark.parametrize("bad", ["sk-one two", "sk-line\nbreak", "sk-tab\there", "sk-\x07bell"])
def test_malformed_provider_key(fresh: TwinHandle, tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**fresh.seed.to_environ(fresh.server), "OPENAI_API_KEY": bad})
    assert str(caught.value).startswith("OPENAI_API_KEY is malformed: it holds ")
    assert bad not in str(caught.value) and "sk-" not in str(caught.value)
    if bad == "sk-one two":
        env_file = _env(fresh, tmp_path, "malformed", OPENAI_API_KEY=bad)
        code, line, out = _run(tmp_path, env_file, target="twin", notebooks="01,02")
        assert code == 1
        assert line == ("aigw: error: OPENAI_API_KEY is malformed: it holds a space or line break (10 characters; "
                        "the value is not shown). Paste the key alone on one line in .dev.vars, "
                        "e.g. OPENAI_API_KEY=<the key>")
        assert not out.exists()


def test_empty_provider_key_to_the_api(fresh: TwinHandle) -> None:
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=Secret(fresh.seed.api_token),
                          account_id=fresh.account_id, retry=FAST) as client:
        store = client.create_store("s")
        with pytest.raises(ValidationError, match=r"code 7001: Input Validation Error: value must be a non-empty"):
            client.create_secret(store.id, "gw_openai_default", Secret("", "OPENAI_API_KEY"), scopes=("ai_gateway",))
        assert client.list_secrets(store.id) == []


# --- quota --------------------------------------------------------------------------------------------------


def test_gateway_quota_used_up(fresh: TwinHandle, tmp_path: Path) -> None:
    fresh.context.options.update({"gateway_limit": 2})
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=Secret(fresh.seed.api_token),
                          account_id=fresh.account_id, retry=FAST) as client:
        client.create_gateway("gw-one")
        client.create_gateway("gw-two")
    code, line, _ = _run(tmp_path, _env(fresh, tmp_path, "quota"))
    assert code == 1
    assert re.fullmatch(r"aigw: error: 01_create_gateway cell \d+: QuotaExceededError: Cloudflare API POST "
                        r"/accounts/[0-9a-f]{32}/ai-gateway/gateways failed with HTTP 400: code 7001: Maximum number "
                        r"of gateways \(2\) reached for this account at body\. Delete an unused gateway, or ask "
                        r"Cloudflare for a higher limit", line), line
    counts = _no_half_made(fresh)
    assert counts.gateways == 2
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=Secret(fresh.seed.api_token),
                          account_id=fresh.account_id, retry=FAST) as client, pytest.raises(QuotaExceededError):
        client.create_gateway("gw-three")


# --- the API not reachable ---------------------------------------------------------------------------------


def _client(base_url: str, token: str | None = None, account_id: str = "0" * 32, **options: Any) -> CloudflareClient:
    return CloudflareClient(base_url=base_url, api_token=Secret(token or generated_seed().api_token),
                            account_id=account_id, retry=options.pop("retry", FAST), **options)


def test_closed_port() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with _client(f"http://127.0.0.1:{port}/client/v4") as client, pytest.raises(TransportError) as caught:
            client.list_gateways()
    assert str(caught.value) == (f"no answer from 127.0.0.1:{port} to GET /accounts/{'0' * 32}/ai-gateway/gateways "
                                 "(ConnectError) (gave up after 2 attempts). Check the network and "
                                 "CLOUDFLARE_API_BASE_URL; re-running is safe")


def test_dns_failure() -> None:
    with _client("http://api.aigw-test.invalid/client/v4") as client, pytest.raises(TransportError) as caught:
        client.verify_token()
    assert str(caught.value).startswith("no answer from api.aigw-test.invalid to GET /user/tokens/verify")
    assert str(caught.value).endswith("Check the network and CLOUDFLARE_API_BASE_URL; re-running is safe")


def test_timeouts(fresh: TwinHandle, admin: httpx.Client) -> None:
    admin.put("/faults", json="seed=1,control.hang_after_apply=1,control.hang_s=3").raise_for_status()
    try:
        with _client(fresh.server.api_base_url, fresh.seed.api_token, fresh.account_id, timeout=0.3, deadline=1.0,
                     retry=RetryPolicy(attempts=10, base_s=0.2, max_s=0.3)) as client, \
                pytest.raises(DeadlineExceededError) as caught:
            client.list_gateways()
    finally:
        admin.delete("/faults").raise_for_status()
    assert re.fullmatch(r"no answer from 127\.0\.0\.1:\d+ to GET /accounts/[0-9a-f]{32}/ai-gateway/gateways "
                        r"\(ReadTimeout\) \(no time left in the 1 s deadline to retry after \d attempt\(s\)\)\. Check "
                        r"the network and CLOUDFLARE_API_BASE_URL; re-running is safe", str(caught.value)), caught.value


def test_authentication_error_is_one_line_without_the_token(fresh: TwinHandle) -> None:
    wrong = Secret("x" + secrets.token_urlsafe(30))
    with CloudflareClient(base_url=fresh.server.api_base_url, api_token=wrong, account_id=fresh.account_id,
                          retry=FAST) as client, pytest.raises(AuthenticationError) as caught:
        client.list_gateways()
    assert "\n" not in str(caught.value) and wrong.reveal() not in str(caught.value)
    assert caught.value.codes == (10000,)
