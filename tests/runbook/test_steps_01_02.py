"""Steps of notebooks 01 and 02 against the twin over real HTTP (no kernel): plan, apply, converge, verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aigw.config import PROVIDERS, Secret, load_settings
from aigw.errors import ConfigError, NotFoundError
from aigw.session import Session
from aigw.steps import create_gateway, provider_keys
from cftwin.seed import generated_provider_key

from tests.steps_support import twin_session


@pytest.fixture
def session(twin, tmp_path: Path) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    twin.reset()
    made = twin_session(twin, tmp_path, "test")
    yield made
    made.close()


def _create(session: Session, **fields: object) -> create_gateway.GatewayPlan:
    desired = create_gateway.desired_gateway(session, **fields)  # type: ignore[arg-type]
    plan = create_gateway.plan_gateway_change(session, desired)
    create_gateway.apply_gateway_plan(session, plan)
    return plan


def test_preflight_reads_only(session: Session) -> None:
    result = create_gateway.preflight(session)
    assert not result.gateway_exists
    assert {c.check: c.status for c in result.checks}["API token valid and active"] == "pass"
    assert "Preflight" in result._repr_markdown_()
    assert session.client.list_gateways() == []


def test_preflight_of_an_account_that_does_not_exist_is_one_line(twin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Cloudflare answers an unknown account id with 7003 "Could not route to ...": the preflight says which id.
    twin.reset()
    settings = load_settings(environ={**twin.seed.to_environ(twin.server), "CLOUDFLARE_ACCOUNT_ID": "e" * 32})
    made = Session(settings=settings, target="twin", run_id="test", run_dir=tmp_path)
    try:
        with pytest.raises(NotFoundError) as caught:
            create_gateway.preflight(made)
    finally:
        made.close()
    text = str(caught.value)
    assert "\n" not in text and f"account {'e' * 32} does not exist" in text and "code 7003" in text
    assert "Check CLOUDFLARE_ACCOUNT_ID" in text


def test_create_then_no_change_then_field_update(session: Session) -> None:
    assert _create(session).action == "create"
    desired = create_gateway.desired_gateway(session)
    assert create_gateway.plan_gateway_change(session, desired).action == "none"
    created_at = session.client.get_gateway(session.settings.gateway_id).created_at

    changed = create_gateway.desired_gateway(session, cache_ttl=300, log_management_strategy="DELETE_OLDEST")
    plan = create_gateway.plan_gateway_change(session, changed)
    assert plan.action == "update"
    assert [(name, want) for name, _, want in plan.changes] == [
        ("cache_ttl", 300), ("log_management_strategy", "DELETE_OLDEST")]
    assert "| `cache_ttl` | `0` | `300` |" in plan._repr_markdown_()
    result = create_gateway.apply_gateway_plan(session, plan)
    assert result.checks[0].detail == "updated cache_ttl, log_management_strategy"
    after = session.client.get_gateway(session.settings.gateway_id)
    assert after.cache_ttl == 300 and after.created_at == created_at  # updated in place, not re-created

    verified = create_gateway.verify_gateway(session, changed)
    assert {c.status for c in verified.checks if c.criterion == 1} == {"pass"}
    assert set(verified.urls) == {*PROVIDERS, "compat"}


def test_verify_fails_when_settings_drift(session: Session) -> None:
    _create(session)
    drifted = create_gateway.desired_gateway(session, collect_logs=False)
    statuses = {c.check: c.status for c in create_gateway.verify_gateway(session, drifted).checks}
    assert statuses["listed with the desired settings"] == "fail"


def test_dry_run_changes_nothing(session: Session) -> None:
    desired = create_gateway.desired_gateway(session)
    plan = create_gateway.plan_gateway_change(session, desired)
    result = create_gateway.apply_gateway_plan(session, plan, dry_run=True)
    assert not result.applied and result.checks[0].status == "skip"
    assert session.client.find_gateway(desired.gateway_id) is None
    assert create_gateway.verify_gateway(session, desired, dry_run=True).checks[0].status == "skip"


def test_unauthenticated_gateway_and_other_ids_are_refused(session: Session) -> None:
    with pytest.raises(ConfigError, match="authenticated gateway"):
        create_gateway.desired_gateway(session, authentication=False)
    with pytest.raises(ConfigError, match="differs from CLOUDFLARE_GATEWAY_ID"):
        create_gateway.desired_gateway(session, gateway_id="another-gateway")


def test_fingerprint_matches_only_the_same_key() -> None:
    key = Secret(generated_provider_key("openai"), "OPENAI_API_KEY")
    other = Secret(generated_provider_key("openai"), "OPENAI_API_KEY")
    comment = provider_keys.fingerprint(key)
    assert key.reveal() not in comment
    assert provider_keys.fingerprint_matches(comment, key) is True
    assert provider_keys.fingerprint_matches(comment, other) is False
    assert provider_keys.fingerprint_matches("made by hand", key) is None
    assert provider_keys.fingerprint(key) != comment  # salted: a fresh salt each time


def test_keys_stored_idempotently_and_rotated(session: Session) -> None:
    _create(session)
    keys = provider_keys.collect_keys(session)
    store = provider_keys.ensure_store(session)
    assert store.created and store.gateway_pointed
    first = provider_keys.store_provider_keys(session, store, keys)
    assert [(o.secret, o.config) for o in first.outcomes] == [("created", "created")] * 3
    verified = provider_keys.verify_provider_keys(session, keys, store)
    assert {c.status for c in verified.checks} == {"pass"}

    again_store = provider_keys.ensure_store(session)
    assert not again_store.created and not again_store.gateway_pointed
    again = provider_keys.store_provider_keys(session, again_store, provider_keys.collect_keys(session))
    assert not again.changed and {c.detail for c in again.checks} == {"no change"}

    new_key = Secret(generated_provider_key("openai"), "OPENAI_API_KEY")
    rotated_keys = provider_keys.collect_keys(session)
    rotated_keys.keys["openai"] = new_key
    rotated = provider_keys.store_provider_keys(session, again_store, rotated_keys)
    assert rotated.rotations == ["openai"]
    assert [o.config for o in rotated.outcomes] == ["unchanged"] * 3
    stored = session.client.find_secret(again_store.store.id, "github-ai-agent_openai_default")
    assert stored is not None and provider_keys.fingerprint_matches(stored.comment, new_key) is True
    for secret in session.client.list_secrets(again_store.store.id):
        assert new_key.reveal() not in str(secret.raw)


def test_missing_required_key_is_one_clear_error(session: Session) -> None:
    settings = session.settings
    without = Session(settings=type(settings)(**{**settings.__dict__, "provider_keys": {
        k: v for k, v in settings.provider_keys.items() if k != "openai"}}), target="twin", run_id="t",
        run_dir=session.run_dir)
    with pytest.raises(ConfigError, match=r"^OPENAI_API_KEY is not set\. Put it in \.dev\.vars"):
        provider_keys.collect_keys(without)
    optional = provider_keys.collect_keys(without, required_providers=["anthropic", "google-ai-studio"])
    assert "openai" in optional.skipped and optional.key("openai") is None
    assert provider_keys.collect_keys(without, providers="anthropic,openai",
                                      required_providers="anthropic").providers == ("anthropic", "openai")


def test_verify_waits_for_pending_secrets_to_turn_active(twin, session: Session) -> None:  # type: ignore[no-untyped-def]
    # Cloudflare may show a new secret as pending for a moment; the twin does for secret_pending_s.
    twin.reset(secret_pending_s=2.0)
    _create(session)
    keys = provider_keys.collect_keys(session)
    store = provider_keys.ensure_store(session)
    provider_keys.store_provider_keys(session, store, keys)
    assert "pending" in {s.status for s in session.client.list_secrets(store.store.id)}
    verified = provider_keys.verify_provider_keys(session, keys, store, pending_wait_s=30)
    assert {c.status for c in verified.checks} == {"pass"}
    assert any("reads of the store" in c.detail for c in verified.checks)
    assert {row[3] for row in verified.rows} == {"active"}


def test_verify_fails_on_a_secret_still_pending_after_its_wait(twin, session: Session) -> None:  # type: ignore[no-untyped-def]
    twin.reset(secret_pending_s=60)
    _create(session)
    keys = provider_keys.collect_keys(session)
    store = provider_keys.ensure_store(session)
    provider_keys.store_provider_keys(session, store, keys)
    verified = provider_keys.verify_provider_keys(session, keys, store, pending_wait_s=0.2)
    failed = [c for c in verified.checks if c.status == "fail"]
    assert len(failed) == len(PROVIDERS) + 1  # each provider, and the total
    assert all("still pending after 0.2 s" in c.detail for c in failed[:-1])
