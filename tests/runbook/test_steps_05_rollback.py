"""Notebook 05's steps against the twin: what is matched, what the parameters keep, and convergence."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aigw.config import Secret
from aigw.session import Session
from aigw.steps import provider_keys
from aigw.steps import rollback as rb

from tests.steps_support import gateway_with_keys, twin_session


def test_only_the_runbooks_secret_names_match() -> None:
    pattern = rb.runbook_secret_pattern("github-ai-agent", aliases=["default", "team_a"])
    assert pattern.match("github-ai-agent_openai_default")
    assert pattern.match("github-ai-agent_google-ai-studio_backup-2")
    assert pattern.match("github-ai-agent_anthropic_team_a")
    assert not pattern.match("github-ai-agent_mistral_default")  # not a provider of the runbook
    assert not pattern.match("github-ai-agent2_openai_default")  # another gateway
    assert not pattern.match("github-ai-agent_openai_other_alias")  # unknown alias with '_'
    assert not pattern.match("x_github-ai-agent_openai_default")
    gw = rb.runbook_secret_pattern("gw")
    assert not gw.match("gw_openai_openai_default")  # gateway "gw_openai"'s secret, not gw's


@pytest.fixture
def session(twin: Any, tmp_path: Path) -> Iterator[Session]:
    twin.reset()
    made = twin_session(twin, tmp_path, "run-05")
    gateway_with_keys(made)
    yield made
    made.close()


def _confirmed(session: Session, plan: rb.RollbackPlan) -> rb.Confirmation:
    confirmation = rb.confirm(session, plan, session.settings.gateway_id)
    assert confirmation.confirmed and confirmation.widget is None
    return confirmation


def test_keeping_secrets_keeps_the_store_and_a_later_run_finishes_the_job(session: Session) -> None:
    client = session.client
    gateway_id = session.settings.gateway_id
    snapshot = rb.take_snapshot(session, export_logs=False)
    assert snapshot.logs is None and len(snapshot.provider_configs) == 3
    assert all("secret_preview" not in c for c in snapshot.provider_configs)
    assert sorted(s["name"] for s in snapshot.secrets) == sorted(
        f"{gateway_id}_{p}_default" for p in ("anthropic", "google-ai-studio", "openai"))

    plan = rb.plan_rollback(session, delete_secrets=False)
    assert {i.kind for i in plan.items} == {"provider_config", "gateway"}
    assert any("secret(s)" in kept for kept in plan.kept)
    result = rb.apply_rollback(session, plan, _confirmed(session, plan))
    assert not result.dry_run and result.kept_stores and "holds 3 other secret(s)" in result.kept_stores[0]
    assert client.find_gateway(gateway_id) is None
    store_id = plan.candidate_stores[0].id
    assert len(client.list_secrets(store_id)) == 3

    later = rb.plan_rollback(session)
    assert [i.kind for i in later.items] == ["secret"] * 3
    assert [s.id for s in later.candidate_stores] == [store_id]
    rb.apply_rollback(session, later, _confirmed(session, later))
    assert client.list_stores() == []
    final = rb.plan_rollback(session)
    assert final.empty and "Nothing to delete" in final._repr_markdown_()


def test_dry_run_and_unconfirmed_text_delete_nothing(session: Session) -> None:
    plan = rb.plan_rollback(session)
    for typed in ("", "github", session.settings.gateway_id + "x"):
        confirmation = rb.confirm(session, plan, typed)
        assert not confirmation.confirmed and confirmation.widget is None  # nobody to click under pytest
        result = rb.apply_rollback(session, plan, confirmation)
        assert result.dry_run and result.deleted == [] and len(result.would_delete) == len(plan.items) + 1
    assert session.client.find_gateway(session.settings.gateway_id) is not None
    verification = rb.verify_rollback(session, plan, result)
    assert [c.status for c in verification.checks] == ["skip"] and verification.probe is None


def test_store_with_foreign_secrets_is_kept(session: Session) -> None:
    store = provider_keys.ensure_store(session).store
    foreign = session.client.create_secret(store.id, "workers_db_password", Secret(secrets.token_hex(12), "foreign"),
                                           scopes=("workers",))
    rb.take_snapshot(session)
    plan = rb.plan_rollback(session)
    result = rb.apply_rollback(session, plan, _confirmed(session, plan))
    assert [s.name for s in session.client.list_secrets(store.id)] == [foreign.name]
    assert result.kept_stores == [f"store {store.name} kept: it holds 1 other secret(s)"]
    verified = rb.verify_rollback(session, plan, result, wait_s=0)
    assert {c.check: c.status for c in verified.checks} == {
        "gateway API answers not found": "pass", "gateway endpoint no longer serves requests": "pass"}
    assert verified.probe is not None and verified.probe.outcome == "gateway_error"
    saved = json.loads((session.run_dir / rb.SNAPSHOT_DIR / "secrets.json").read_text())
    assert "workers_db_password" not in {s["name"] for s in saved}


def test_confirm_widget_deletes_only_after_the_gateway_id_is_typed(
    session: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Session, "interactive", property(lambda self: True))
    plan = rb.plan_rollback(session)
    confirmation = rb.confirm(session, plan, "")
    assert not confirmation.confirmed and confirmation.widget is not None
    text, button = confirmation.widget.children[0].children
    text.value = "not-the-gateway"
    button.click()
    assert not confirmation.confirmed
    assert session.client.find_gateway(session.settings.gateway_id) is not None
    text.value = session.settings.gateway_id
    button.click()
    assert confirmation.confirmed and confirmation.source == "the confirm widget" and button.disabled
    assert session.client.find_gateway(session.settings.gateway_id) is None
    assert "PASS" in capsys.readouterr().out  # the checks were recorded below the button


def test_after_the_widget_deletes_every_cell_tells_one_story(
    session: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run All first (the cells below wait, not "dry run"), then Delete: header, button, and the cells
    below show the widget's rollback; the counts are the table's rows."""
    monkeypatch.setattr(Session, "interactive", property(lambda self: True))
    plan = rb.plan_rollback(session)
    confirmation = rb.confirm(session, plan, "")
    assert "Not confirmed yet" in confirmation.header.value
    waiting = rb.apply_rollback(session, plan, confirmation)
    shown = waiting._repr_markdown_()
    assert "Dry run" not in shown and "Waiting for the Delete button" in shown
    table = shown.split("\n\n")[1]  # the first table: what would be deleted
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert f"deletes {len(rows)} item(s)" in shown and len(rows) == len(waiting.would_delete)
    assert f"{len(rows)} item(s) would be deleted" in waiting.checks[0].detail
    waiting_check = rb.verify_rollback(session, plan, waiting, wait_s=0)
    assert [c.status for c in waiting_check.checks] == ["skip"]

    text, button = confirmation.widget.children[0].children
    text.value = session.settings.gateway_id
    button.click()
    assert button.disabled and text.disabled and button.description == "Deleted"
    assert confirmation.result is not None and not confirmation.result.dry_run
    deleted = len(confirmation.result.deleted)
    assert "Not confirmed" not in confirmation.header.value
    assert f"deleted {deleted} item(s)" in confirmation.header.value
    # The cells below, drawn again or run again, show the widget's rollback, not a dry run.
    assert rb.apply_rollback(session, plan, confirmation) is confirmation.result
    assert "**Rolled back**" in (confirmation.result or waiting)._repr_markdown_()
    again = rb.verify_rollback(session, plan, waiting, wait_s=0)
    assert again is confirmation.verification
    assert {c.status for c in again.checks} == {"pass"}
    button.click()  # a second press does nothing more
    assert session.client.find_gateway(session.settings.gateway_id) is None
    capsys.readouterr()
