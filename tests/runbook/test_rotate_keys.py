"""Notebook 06's steps on the twin over real HTTP: rotate, revoke the old key, traffic still flows; a wrong
new key is caught before anything is written; the gateway token check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigw.config import PROVIDER_KEY_VARS, Secret, load_settings
from aigw.errors import ConfigError
from aigw.gateway import GatewayProber
from aigw.session import Session
from aigw.steps import provider_keys, rotate_keys
from cftwin.seed import generated_provider_key

from tests.steps_support import create_the_gateway, gateway_with_keys


def _session(twin: Any, run_dir: Path, **overrides: str) -> Session:
    environ = {**twin.seed.to_environ(twin.server), **overrides}
    return Session(settings=load_settings(environ=environ), target="twin", run_id="rotate-test", run_dir=run_dir)


@pytest.fixture
def stored(twin: Any, tmp_path: Path) -> Iterator[None]:
    """A fresh twin holding notebook 01's gateway and 02's three keys (the seed's)."""
    twin.reset()
    session = _session(twin, tmp_path)
    try:
        gateway_with_keys(session)
    finally:
        session.close()
    yield


def _admin(twin: Any, method: str, provider: str, key: str | None = None) -> dict[str, Any]:
    response = httpx.request(method, f"{twin.server.admin_url}/providers/{provider}/keys",
                             json={"key": key} if key is not None else None, timeout=10,
                             headers=twin.server.admin_headers)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _new_token(twin: Any, permission: str) -> dict[str, Any]:
    """A token of the account made in the "dashboard" (the admin API), with one permission."""
    made: dict[str, Any] = httpx.post(f"{twin.server.admin_url}/tokens", timeout=10, headers=twin.server.admin_headers,
                                      json={"account_id": twin.account_id, "permissions": [permission]}).json()
    return made


def _rotate(session: Session, providers: list[str], **options: Any) -> tuple[Any, ...]:
    keys = provider_keys.collect_keys(session, providers)
    plan = rotate_keys.plan_rotation(session, keys)
    checked = rotate_keys.check_new_keys(session, plan, **options)
    return plan, checked


def _statuses(result: Any) -> dict[str, str]:
    return {c.check: c.status for c in result.checks}


def test_rotate_then_revoke_the_old_key_and_traffic_keeps_flowing(twin: Any, stored: None, tmp_path: Path) -> None:
    old = twin.seed.provider_keys["openai"]
    new = generated_provider_key("openai")
    _admin(twin, "POST", "openai", new)  # the operator created a new key at the provider
    session = _session(twin, tmp_path, OPENAI_API_KEY=new)
    try:
        plan, checked = _rotate(session, ["openai", "anthropic"])
        assert [(i.provider, i.action) for i in plan.items] == [("openai", "rotate"), ("anthropic", "unchanged")]
        assert _statuses(checked) == {"openai new key accepted by the provider": "pass",
                                      "anthropic new key accepted by the provider": "skip"}
        rotated = rotate_keys.apply_rotation(session, plan, checked)
        assert rotated.rotations == ["openai"]
        verified = rotate_keys.verify_rotation(session, plan)
        assert set(_statuses(verified).values()) == {"pass"}, verified.checks

        assert _admin(twin, "DELETE", "openai", old)["revoked"] is True  # then revokes the old one
        with GatewayProber.from_settings(load_settings(environ=twin.seed.to_environ(twin.server))) as old_prober:
            # The revocation bites: the old key, sent directly, is now refused ...
            assert rotate_keys.key_rejected(old_prober.probe_direct("openai", "gpt-4o-mini", max_tokens=4))
        # ... yet the gateway, holding the new key, still answers, and a second run of 06 changes nothing.
        again = rotate_keys.verify_rotation(session, plan)
        assert set(_statuses(again).values()) == {"pass"}, again.checks
        plan2, checked2 = _rotate(session, ["openai"])
        assert plan2.to_rotate == [] and _statuses(checked2)["openai new key accepted by the provider"] == "skip"
        assert rotate_keys.apply_rotation(session, plan2, checked2).changed is False
    finally:
        session.close()


@pytest.mark.parametrize("provider", ["openai", "google-ai-studio"])
def test_a_wrong_new_key_is_caught_before_anything_is_written(
    twin: Any, stored: None, tmp_path: Path, provider: str
) -> None:
    wrong = generated_provider_key(provider)  # never registered with the emulated provider
    session = _session(twin, tmp_path, **{PROVIDER_KEY_VARS[provider]: wrong})
    try:
        plan, checked = _rotate(session, [provider])
        assert plan.to_rotate == [provider]
        assert _statuses(checked) == {f"{provider} new key accepted by the provider": "fail"}
        assert "nothing was changed" in checked.checks[0].detail
        assert wrong not in checked.checks[0].detail
        with pytest.raises(ConfigError, match="not rotating"):
            rotate_keys.apply_rotation(session, plan, checked)
        # The stored secret still holds the old key, and the gateway keeps serving with it.
        secret = session.client.find_secret(plan.store.id, plan.items[0].secret_name)
        assert secret is not None
        old = Secret(twin.seed.provider_keys[provider])
        assert provider_keys.fingerprint_matches(secret.comment, old) is True
        result = session.prober.probe_provider(provider, rotate_keys.parse_models([], [provider])[provider],
                                               max_tokens=8)
        assert result.ok, result
    finally:
        session.close()


def test_without_the_direct_check_a_wrong_key_is_caught_by_the_gateway_check(
    twin: Any, stored: None, tmp_path: Path
) -> None:
    wrong = generated_provider_key("anthropic")
    session = _session(twin, tmp_path, ANTHROPIC_API_KEY=wrong)
    try:
        plan, checked = _rotate(session, ["anthropic"], verify_direct=False)
        assert _statuses(checked) == {"anthropic new key accepted by the provider": "skip"}
        rotate_keys.apply_rotation(session, plan, checked)
        verified = rotate_keys.verify_rotation(session, plan)
        failed = [c for c in verified.checks if c.status == "fail"]
        assert [c.check for c in failed] == ["anthropic answers through the gateway with the stored key"]
        assert "401" in failed[0].detail and "roll back" in failed[0].detail
    finally:
        session.close()


def test_nothing_stored_yet_is_one_clear_error(twin: Any, tmp_path: Path) -> None:
    twin.reset()
    session = _session(twin, tmp_path)
    try:
        with pytest.raises(ConfigError, match="Run notebook 01"):
            rotate_keys.plan_rotation(session, provider_keys.collect_keys(session, ["openai"]))
        create_the_gateway(session)
        with pytest.raises(ConfigError, match="Run notebook 02"):
            rotate_keys.plan_rotation(session, provider_keys.collect_keys(session, ["openai"]))
    finally:
        session.close()


def test_gateway_token_check(twin: Any, stored: None, tmp_path: Path) -> None:
    session = _session(twin, tmp_path)
    try:
        assert _statuses(rotate_keys.check_gateway_token(session, False)) == {"gateway token rotation": "skip"}
    finally:
        session.close()
    # A new run token made in the "dashboard" (the admin API), put in .dev.vars as CF_AIG_TOKEN.
    made = _new_token(twin, "ai_gateway:run")
    session = _session(twin, tmp_path, CF_AIG_TOKEN=made["value"])
    try:
        result = rotate_keys.check_gateway_token(session, True, "openai")
        assert set(_statuses(result).values()) == {"pass"}, result.checks
        assert made["value"] not in repr(result.checks)
        # The notebook hands over its providers; none at all still probes through a default provider.
        for providers in (("anthropic", "openai"), ()):
            result = rotate_keys.check_gateway_token(session, True, providers)
            assert set(_statuses(result).values()) == {"pass"}, (providers, result.checks)
    finally:
        session.close()
    # A token without AI Gateway Run is refused by the gateway (2009): the check fails.
    weak = _new_token(twin, "ai_gateway:read")
    session = _session(twin, tmp_path, CF_AIG_TOKEN=weak["value"])
    try:
        statuses = _statuses(rotate_keys.check_gateway_token(session, True, "openai"))
        assert statuses["gateway token accepted by the gateway"] == "fail"
    finally:
        session.close()


def test_parse_models() -> None:
    assert rotate_keys.parse_models("openai/gpt-4o", ["openai", "anthropic"])["openai"] == "gpt-4o"
    with pytest.raises(ConfigError, match="not provider/model"):
        rotate_keys.parse_models(["google/gemini-2.5-flash"], ["openai"])


def test_verify_waits_for_secrets_still_pending(twin: Any, tmp_path: Path) -> None:
    # A new secret can be pending for a moment on Cloudflare; the twin's are for secret_pending_s.
    twin.reset(secret_pending_s=2.0)
    session = _session(twin, tmp_path)
    try:
        store = gateway_with_keys(session)
        assert "pending" in {s.status for s in session.client.list_secrets(store.store.id)}
        rotation = rotate_keys.plan_rotation(session, provider_keys.collect_keys(session, ["openai"]))
        verified = rotate_keys.verify_rotation(session, rotation)
        assert set(_statuses(verified).values()) == {"pass"}, verified.checks
    finally:
        session.close()
        twin.reset()
