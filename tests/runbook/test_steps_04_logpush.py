"""Notebook 04's two sources give the same tables for the same traffic: the logs API (``source="api"``) and the
Logpush export in the bucket (``source="logpush"``, DuckDB over the gzipped NDJSON objects), on the real twin with
moto's S3 server on loopback as the bucket. What the export does not carry (tokens, log ids, metadata) is
checked to be reported as missing, not as zero."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.dataset as ds
import pytest
from aigw.cloudflare import CloudflareClient
from aigw.config import load_settings
from aigw.errors import ConfigError
from aigw.logs_logpush import LogpushWindow
from aigw.session import Session
from aigw.steps import logs_analysis
from cftwin.logpush.bucket import LocalBucket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TwinHandle
from tests.twin_support import logpush_gateway

Exported = tuple[Session, int, dict[str, str]]  # the session, the requests sent, the bucket's variables
WAIT_S = 30.0  # a bound on waiting for background delivery, not a timing assertion
#: (provider, path, model, body) of each kind of request sent.
KINDS = [
    ("openai", "openai/chat/completions", "gpt-4o-mini", None),
    ("openai", "openai/chat/completions", "gpt-4o", None),
    ("anthropic", "anthropic/v1/messages", "claude-3-5-haiku-latest", None),
    ("google-ai-studio", "google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash",
     {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}),
]


@pytest.fixture(scope="module")
def bucket() -> Iterator[LocalBucket]:
    with LocalBucket("logs-sources") as local:
        yield local


def _send(twin: TwinHandle, gateway_id: str) -> int:
    """Requests of four models of three providers, with cache hits and refused keys; how many were sent."""
    base = f"{twin.server.gateway_base_url}/{twin.account_id}/{gateway_id}"
    sent = 0
    for n in range(20):
        provider, path, model, body = KINDS[n % len(KINDS)]
        key = twin.seed.provider_keys[provider] if n % 7 != 6 else "wrong-" + secrets.token_hex(6)
        headers = {**twin.aig_headers, "cf-aig-metadata": json.dumps({"n": n})}
        if provider == "anthropic":
            headers |= {"x-api-key": key, "anthropic-version": "2023-06-01"}
        elif provider == "google-ai-studio":
            headers["x-goog-api-key"] = key
        else:
            headers["Authorization"] = f"Bearer {key}"
        if n % 4 == 0:  # the same gpt-4o-mini request each time: cache hits after the first
            headers["cf-aig-cache-ttl"] = "3600"
        prompt = "same" if n % 4 == 0 else f"prompt {n}"
        payload = body or {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": prompt}]}
        httpx.post(f"{base}/{path}", json=payload, headers=headers, timeout=30)
        sent += 1
    return sent


@pytest.fixture(scope="module")
def exported(twin: TwinHandle, bucket: LocalBucket,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """A gateway exporting with Logpush to the bucket, the traffic sent, and a session whose settings name the
    bucket (as ``.dev.vars`` would)."""
    twin.reset(r2_endpoint_url=bucket.url, logpush_interval_s=0.1, log_delay_s=0.0, cache_write_delay_s=0.0)
    folder = "src-" + secrets.token_hex(3)
    bucket_env = {"AIGW_LOGPUSH_BUCKET": bucket.bucket, "AIGW_LOGPUSH_ACCESS_KEY_ID": bucket.access_key_id,
                  "AIGW_LOGPUSH_SECRET_ACCESS_KEY": bucket.secret_access_key,
                  "AIGW_LOGPUSH_ENDPOINT": bucket.url, "AIGW_LOGPUSH_PATH": f"{folder}/{{DATE}}"}
    settings = load_settings(environ=twin.seed.to_environ(twin.server))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with httpx.Client(base_url=f"{twin.server.api_base_url}/accounts/{twin.account_id}/",
                      headers=twin.api_headers, timeout=30) as api:
        logpush_gateway(api, twin.account_id, settings.gateway_id, pem, bucket, folder)
    sent = _send(twin, settings.gateway_id)
    session = Session(settings=settings, target="twin", run_id="sources", run_dir=tmp_path_factory.mktemp("run"),
                      _client=CloudflareClient.from_settings(settings))
    yield session, sent, bucket_env
    session.close()


def _both(session: Session, **selection: Any) -> tuple[logs_analysis.LogsFetch, LogpushWindow]:
    api = logs_analysis.fetch_window(session, last_hours=2, **selection)
    assert isinstance(api, logs_analysis.LogsFetch)
    deadline = time.monotonic() + WAIT_S
    while True:
        pushed = logs_analysis.fetch_window(session, last_hours=2, source="logpush", **selection)
        assert isinstance(pushed, LogpushWindow)
        if pushed.rows >= len(api.frame) or time.monotonic() > deadline:
            return api, pushed
        pushed.close()
        time.sleep(0.2)


def _bucket_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket's variables in the environment, where ``load_bucket_settings`` reads them (as from .dev.vars)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out.index = pd.MultiIndex.from_tuples([tuple(str(v) for v in (i if isinstance(i, tuple) else (i,)))
                                           for i in out.index])
    return out


def test_api_and_logpush_give_the_same_tables(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    session, sent, env = exported
    _bucket_env(env, monkeypatch)
    api, pushed = _both(session)
    assert len(api.frame) == sent and pushed.rows == sent
    by_api, by_push = logs_analysis.analyse_logs(api), logs_analysis.analyse_logs(pushed)
    a, p = by_api.summary, by_push.summary
    assert (p.requests, p.errors, p.cached) == (a.requests, a.errors, a.cached)
    assert a.errors >= 2 and a.cached >= 1 and len(a.providers) == 3
    assert p.cost == pytest.approx(a.cost, rel=1e-9, abs=1e-12)
    assert set(p.providers) == set(a.providers) and set(p.models) == set(a.models)
    # Tokens are not in the export: missing, never shown as zero.
    assert a.tokens_in and a.tokens_in > 0 and p.tokens_in is None and p.tokens_out is None
    assert "not in this source" in by_push._repr_markdown_()
    usage_a, usage_p = _flat(by_api.usage), _flat(by_push.usage)
    assert list(usage_p.index) == list(usage_a.index)
    assert usage_p["requests"].tolist() == usage_a["requests"].tolist()
    assert usage_p["cost_usd"].to_numpy() == pytest.approx(usage_a["cost_usd"].to_numpy(), rel=1e-9, abs=1e-12)
    assert usage_p["tokens_in"].isna().all() and not usage_a["tokens_in"].isna().any()
    for name in ("errors", "cache", "latency"):
        mine, theirs = _flat(getattr(by_push, name)), _flat(getattr(by_api, name))
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, check_names=False, obj=name)
    pd.testing.assert_frame_equal(by_push.status, by_api.status, check_names=False, obj="status")
    over_a, over_p = by_api.over_time, by_push.over_time
    assert over_p.to_numpy().sum() == over_a.to_numpy().sum() == sent
    assert over_p.sum().to_dict() == over_a.sum().to_dict()  # per provider, over the whole window
    pushed.close()


def test_logpush_selects_and_exports_parquet_by_day(exported: Exported,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    session, sent, env = exported
    _bucket_env(env, monkeypatch)
    api, pushed = _both(session, providers=["anthropic"], models=[])
    assert 0 < pushed.rows == len(api.frame) < sent
    assert set(pushed.frame["provider"].astype("str")) == {"anthropic"}
    written = logs_analysis.export_logs(session, pushed)
    assert written.path.is_dir() and written.rows == pushed.rows and written.bytes > 0
    assert all(d.name.startswith("day=") for d in written.path.iterdir())
    assert ds.dataset(written.path, format="parquet", partitioning="hive").count_rows() == pushed.rows
    # Criterion 5 is the logs API's: without 03's probes the fallback counts the export window's times and models.
    check = logs_analysis.check_run_logs(session, pushed, wait_s=0).checks[0]
    assert check.status == "pass" and f"{pushed.rows:,} logs" in check.detail
    pushed.close()


def test_logpush_refuses_the_apis_filters_and_an_unknown_source(exported: Exported) -> None:
    session, _, _ = exported
    with pytest.raises(ConfigError, match="filters are the logs API's"):
        logs_analysis.fetch_window(session, source="logpush",
                                   filters=[{"key": "success", "operator": "eq", "value": [False]}])
    with pytest.raises(ConfigError, match="not a log source"):
        logs_analysis.fetch_window(session, source="r2")


def test_an_empty_export_window_gives_empty_tables(exported: Exported,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    session, _, env = exported
    _bucket_env(env, monkeypatch)
    since = datetime.now(UTC) - timedelta(days=30)
    pushed = logs_analysis.fetch_window(session, since=since, until=since + timedelta(hours=1), source="logpush")
    assert isinstance(pushed, LogpushWindow) and pushed.empty
    report = logs_analysis.analyse_logs(pushed)
    assert report.empty and report.over_time.empty and report.status.empty
    assert "No exported events" in pushed._repr_markdown_()
    pushed.close()
    assert Path(session.run_dir).is_dir()
