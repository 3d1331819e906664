"""Notebook 07's steps on the twin with a real local bucket (moto's S3 API): plan -> apply -> verify, a second
pass that changes nothing (idempotent like 01), a bad destination that stops before anything is made; and
the library's bucket settings, key file and job repr (no secret shown)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aigw.errors import ConfigError
from aigw.logpush import LogpushApi, LogpushJob, load_bucket_settings, load_or_make_key_pair
from aigw.session import Session
from aigw.steps import logpush_export
from cftwin.logpush.bucket import LocalBucket

from tests.steps_support import gateway_with_keys, twin_session


@pytest.fixture(scope="module")
def bucket() -> Iterator[LocalBucket]:
    with LocalBucket("steps-07") as local:
        yield local


@pytest.fixture
def session(twin: Any, bucket: LocalBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    twin.reset(r2_endpoint_url=bucket.url, logpush_interval_s=0.2)
    for name, value in {"AIGW_LOGPUSH_BUCKET": bucket.bucket, "AIGW_LOGPUSH_ACCESS_KEY_ID": bucket.access_key_id,
                        "AIGW_LOGPUSH_SECRET_ACCESS_KEY": bucket.secret_access_key,
                        "AIGW_LOGPUSH_ENDPOINT": bucket.url, "AIGW_LOGPUSH_PATH": f"{tmp_path.name}/{{DATE}}",
                        "AIGW_LOGPUSH_PRIVATE_KEY_FILE": str(tmp_path / "keys" / "logpush.pem")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AIGW_LOGPUSH_REGION", raising=False)
    made = twin_session(twin, tmp_path / "run", "steps-07")
    gateway_with_keys(made)
    try:
        yield made
    finally:
        made.close()


def test_plan_apply_verify_then_a_second_pass_changes_nothing(session: Session, tmp_path: Path) -> None:
    plan = logpush_export.plan_export(session)
    assert plan.job_action == "create" and plan.gateway_change and not plan.key_exists
    assert all(c.status == "pass" for c in plan.checks), plan.checks
    applied = logpush_export.apply_export(session, plan)
    assert all(c.status == "pass" for c in applied.checks), applied.checks
    key_path = tmp_path / "keys" / "logpush.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    verified = logpush_export.verify_export(session, applied, timeout_s=60)
    assert [c.status for c in verified.checks] == ["pass"] * 6, verified.checks
    assert verified.record is not None and verified.record["Metadata"]["aigw_canary"] == verified.canary

    again = logpush_export.plan_export(session)
    assert again.job_action == "none" and not again.gateway_change and again.key_exists
    second = logpush_export.apply_export(session, again)
    assert second.changes == [] and second.job.id == applied.job.id
    jobs = LogpushApi(session.client).list_jobs()
    assert [j.id for j in jobs] == [applied.job.id]


def test_a_bad_destination_stops_before_anything_is_made(session: Session, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGW_LOGPUSH_BUCKET", "no-such-bucket")
    plan = logpush_export.plan_export(session)
    failed = [c for c in plan.checks if c.status == "fail"]
    assert [c.check for c in failed] == ["Logpush destination is valid"]
    with pytest.raises(ConfigError, match="nothing was changed"):
        logpush_export.apply_export(session, plan)
    assert LogpushApi(session.client).list_jobs() == []
    assert not (tmp_path / "keys" / "logpush.pem").exists()
    assert session.client.get_gateway(session.settings.gateway_id).logpush is not True


def test_bucket_settings_build_destination_conf_and_hide_the_secret(session: Session) -> None:
    bucket = load_bucket_settings(session.settings, environ={
        "AIGW_LOGPUSH_BUCKET": "logs", "AIGW_LOGPUSH_ACCESS_KEY_ID": "kid", "AIGW_LOGPUSH_SECRET_ACCESS_KEY": "s3cr3t"})
    conf = bucket.destination_conf()
    assert conf.startswith("r2://logs/ai-gateway/{DATE}?account-id=") and "secret-access-key=s3cr3t" in conf
    assert bucket.endpoint_url == f"https://{session.settings.account_id}.r2.cloudflarestorage.com"
    assert "s3cr3t" not in repr(bucket) and "s3cr3t" not in bucket.place()
    s3 = load_bucket_settings(session.settings, environ={
        "AIGW_LOGPUSH_BUCKET": "logs", "AIGW_LOGPUSH_ACCESS_KEY_ID": "kid", "AIGW_LOGPUSH_SECRET_ACCESS_KEY": "x",
        "AIGW_LOGPUSH_REGION": "us-east-1", "AIGW_LOGPUSH_ENDPOINT": "https://s3.example.com"})
    assert s3.destination_conf().startswith("s3://logs/ai-gateway/{DATE}?region=us-east-1")
    assert "endpoint=https%3A%2F%2Fs3.example.com" in s3.destination_conf()
    job = LogpushJob(1, "ai_gateway_events", "aigw-x", True, conf)
    assert "s3cr3t" not in repr(job) and job.place == "r2://logs/ai-gateway/{DATE}"
    with pytest.raises(ConfigError, match="AIGW_LOGPUSH_SECRET_ACCESS_KEY"):
        load_bucket_settings(session.settings, environ={"AIGW_LOGPUSH_BUCKET": "logs",
                                                        "AIGW_LOGPUSH_ACCESS_KEY_ID": "kid"})


def test_a_key_file_that_is_not_a_private_key_is_one_line(session: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_or_make_key_pair(session.settings, environ={"AIGW_LOGPUSH_PRIVATE_KEY_FILE": str(bad)})
    with pytest.raises(ConfigError, match="AIGW_LOGPUSH_PRIVATE_KEY_FILE is not set"):
        load_or_make_key_pair(session.settings, environ={})
