"""A key is checked with its provider before criterion 2 calls it active; a missing key is asked for with a
password field and a Store button (ipywidgets driven in-process, the twin over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aigw.config import PROVIDERS, Secret, load_settings
from aigw.provider_check import check_provider_key
from aigw.session import Session
from aigw.steps import provider_keys
from cftwin.seed import generated_provider_key

from tests.steps_support import create_the_gateway, twin_session


@pytest.fixture
def session(twin: Any, tmp_path: Path) -> Iterator[Session]:
    twin.reset()
    made = twin_session(twin, tmp_path, "keys")
    create_the_gateway(made)
    yield made
    made.close()


@pytest.mark.parametrize(("provider", "refused"), [("openai", 401), ("anthropic", 401), ("google-ai-studio", 400)])
def test_the_provider_says_whether_it_accepts_a_key(session: Session, provider: str, refused: int) -> None:
    good = session.settings.provider_key(provider)
    assert good is not None
    accepted = check_provider_key(session.settings, provider, good)
    assert accepted.accepted is True and accepted.status == 200
    wrong = Secret(generated_provider_key(provider), "X")
    answer = check_provider_key(session.settings, provider, wrong)
    assert answer.accepted is False and answer.status == refused
    assert "refused the key" in answer.detail and wrong.reveal() not in answer.detail
    assert wrong.reveal()[-4:] not in answer.detail


def test_unreachable_provider_is_not_an_acceptance(session: Session) -> None:
    settings = type(session.settings)(**{**session.settings.__dict__, "provider_base_url": "http://127.0.0.1:9"})
    answer = check_provider_key(settings, "openai", Secret("sk-x", "OPENAI_API_KEY"))
    assert answer.accepted is None and "could not ask openai" in answer.detail


def test_a_wrong_key_fails_criterion_2(session: Session) -> None:
    keys = provider_keys.collect_keys(session)
    keys.keys["openai"] = Secret(generated_provider_key("openai"), "OPENAI_API_KEY")  # not the provider's
    store = provider_keys.ensure_store(session)
    provider_keys.store_provider_keys(session, store, keys)
    verified = provider_keys.verify_provider_keys(session, keys, store)
    statuses = {c.check: c.status for c in verified.checks}
    assert statuses["openai key stored and active"] == "fail"
    assert statuses["anthropic key stored and active"] == "pass"
    assert statuses["3 provider keys stored and active"] == "fail"
    detail = next(c.detail for c in verified.checks if c.check == "openai key stored and active")
    assert "openai refused the key" in detail and "401" in detail


def _without_openai(session: Session) -> Session:
    settings = session.settings
    return Session(settings=type(settings)(**{**settings.__dict__, "provider_keys": {
        k: v for k, v in settings.provider_keys.items() if k != "openai"}}), target="twin", run_id="keys",
        run_dir=session.run_dir)


def test_store_button_stores_checks_and_says_so(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Session, "interactive", property(lambda self: True))
    without = _without_openai(session)
    keys = provider_keys.collect_keys(without)
    assert set(keys.widgets) == {"openai"} and "password field below and press Store" in keys._repr_markdown_()
    (field, button), message = keys.rows["openai"].children[0].children, keys.messages["openai"]
    assert "OPENAI_API_KEY is not set" in message.value

    button.click()  # nothing typed
    assert "Type the openai key first" in message.value and keys.key("openai") is None

    wrong = generated_provider_key("openai")
    field.value = wrong
    button.click()
    assert field.value == "" and "refused the key" in message.value and wrong not in message.value

    good = session.settings.provider_key("openai")
    assert good is not None
    field.value = good.reveal()
    button.click()
    assert field.value == "" and good.reveal() not in message.value
    assert message.value.startswith("✅ Stored as secret") and "openai accepts the key" in message.value
    assert "refused" not in message.value  # the earlier message is gone
    assert without.sources["OPENAI_API_KEY"] == "widget"
    assert "entered in the field below and stored" in keys._repr_markdown_()
    store = provider_keys.ensure_store(without)
    stored = provider_keys.store_provider_keys(without, store, keys)
    assert {o.provider: o.secret for o in stored.outcomes}["openai"] == "unchanged"  # Store stored it
    verified = provider_keys.verify_provider_keys(without, keys, store)
    assert {c.status for c in verified.checks} == {"pass"}
    assert len(verified.checks) == len(PROVIDERS) + 1


def test_store_before_01_says_so_under_the_field(twin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Session, "interactive", property(lambda self: True))
    twin.reset()  # no gateway: notebook 01 has not run
    settings = load_settings(environ=twin.seed.to_environ(twin.server))
    bare = _without_openai(Session(settings=settings, target="twin", run_id="keys", run_dir=tmp_path))
    keys = provider_keys.collect_keys(bare)
    (field, button), message = keys.rows["openai"].children[0].children, keys.messages["openai"]
    key = settings.provider_key("openai")
    assert key is not None
    field.value = key.reveal()
    button.click()
    assert message.value.startswith("❌ Not stored: gateway") and "Run notebook 01" in message.value
    assert key.reveal() not in message.value and field.value == "" and not button.disabled
    assert keys.key("openai") is None and bare.sources.get("OPENAI_API_KEY") != "widget"
