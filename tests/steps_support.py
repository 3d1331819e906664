"""What many runbook tests set up first: a session on the twin, notebooks 01 and 02 through their library
steps, or a working folder and environment with no settings in them; and the re-seal the evidence tamper
tests apply after changing a sealed file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from aigw import provenance
from aigw.config import load_settings
from aigw.session import Session
from aigw.steps import create_gateway, provider_keys


def work_elsewhere(monkeypatch: pytest.MonkeyPatch, folder: Path, cleared: Iterable[str]) -> Path:
    """``folder`` as the working folder, and none of the ``cleared`` variables in the environment."""
    for name in cleared:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(folder)
    return folder


def twin_session(twin: Any, run_dir: Path, run_id: str) -> Session:
    """A session on the tests' twin (the ``twin`` fixture), with the settings its seed gives."""
    settings = load_settings(environ=twin.seed.to_environ(twin.server))
    return Session(settings=settings, target="twin", run_id=run_id, run_dir=run_dir)


def create_the_gateway(session: Session) -> None:
    """Notebook 01: the gateway the settings name, as the notebook makes it."""
    plan = create_gateway.plan_gateway_change(session, create_gateway.desired_gateway(session))
    create_gateway.apply_gateway_plan(session, plan)


def store_the_keys(session: Session) -> provider_keys.StoreChoice:
    """Notebook 02: every configured provider key in the account's store, attached to the gateway."""
    store = provider_keys.ensure_store(session)
    provider_keys.store_provider_keys(session, store, provider_keys.collect_keys(session))
    return store


def gateway_with_keys(session: Session) -> provider_keys.StoreChoice:
    """Notebooks 01 and 02: the gateway and its keys."""
    create_the_gateway(session)
    return store_the_keys(session)


def rehash_evidence(folder: Path) -> None:
    """Make a tampered run folder's manifest and (unsigned) attestation match its files again."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {k: provenance.file_sha256(folder / k) for k in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    statement, _ = provenance.read_attestation(folder)
    provenance.write_attestation(folder, statement["predicate"], None)
