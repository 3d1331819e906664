"""Issue 13: the runbook reads either log system. Through the real ``aigw run`` on a twin whose account has Logs
powered by Workers Observability (created since 2026-09-24), every criterion passes and notebook 04 names the
system it found; and for the same traffic, 04's figures are the same over both systems.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aigw.cloudflare import CloudflareClient, RequestBudget
from aigw.config import load_settings
from aigw.evidence import verify_bundle
from aigw.session import Session
from aigw.steps import logs_analysis
from cftwin.accounts import created_at_for
from cftwin.context import TwinOptions
from cftwin.gateways.models import create_gateway
from cftwin.logs.models import LogRow, insert_logs
from cftwin.seed import generated_seed
from cftwin.server import TwinServer
from cftwin.timing import NO_DELAYS
from test_runner_e2e import _aigw, _env_file, _evidence

NOW = datetime.now(UTC).replace(microsecond=0)


def _traffic() -> list[LogRow]:
    rows = []
    for i in range(120):
        provider, model = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"),
                           ("google-ai-studio", "gemini-2.5-flash")][i % 3]
        rows.append(LogRow(provider, model, "chat/completions", duration=50 + i, tokens_in=10 + i, tokens_out=i % 7,
                           cost=0.0001 * i, cached=i % 5 == 0, success=i % 11 != 0,
                           status_code=200 if i % 11 else 500, metadata={"aigw_run_id": "same-traffic"},
                           created_at=NOW - timedelta(minutes=i), id=f"01JSAME{i:019d}"))
    return rows


_FIGURES: dict[str, dict[str, object]] = {}


@pytest.mark.parametrize("system", ["legacy", "observability"])
def test_the_same_traffic_gives_the_same_figures_over_both_systems(tmp_path: Path, system: str) -> None:
    seed = dataclasses.replace(generated_seed(), plan="paid", created_at=created_at_for(system))  # type: ignore[arg-type]
    server = TwinServer(TwinOptions(**NO_DELAYS), seed=seed).start()
    try:
        create_gateway(server.context.db, seed.account_id, {"id": seed.gateway_id, "collect_logs": True})
        insert_logs(server.context.db, seed.account_id, seed.gateway_id, _traffic())
        settings = load_settings(environ=seed.to_environ(server))
        client = CloudflareClient.from_settings(settings, budget=RequestBudget(10_000, 300.0))
        session = Session(settings=settings, target="twin", run_id="same", run_dir=tmp_path, _client=client)
        try:
            fetched = logs_analysis.fetch_window(session, last_hours=6)
            report = logs_analysis.analyse_logs(fetched)
        finally:
            session.close()
    finally:
        server.close()
    assert ("Workers Observability" in fetched.log_system) == (system == "observability")
    assert len(fetched.frame) == 120
    frame = fetched.frame.sort_values("id").reset_index(drop=True)
    figures = {
        "summary": report.summary.as_dict(),
        "ids": list(frame["id"]),
        "models": [str(m) for m in frame["model"]],
        "created": [str(t) for t in frame["created_at"]],
        "tokens": [int(t) for t in frame["tokens_in"]],
        "metadata": [str(m) for m in frame["metadata"]] if "metadata" in frame else [],
    }
    _FIGURES[system] = figures
    other = {"legacy": "observability", "observability": "legacy"}[system]
    if other in _FIGURES:
        assert json.dumps(_FIGURES[other], sort_keys=True, default=str) == json.dumps(figures, sort_keys=True,
                                                                                     default=str)


@pytest.mark.slow
def test_aigw_run_passes_on_an_account_with_workers_observability_logs(tmp_path: Path) -> None:
    env_file = _env_file(tmp_path / "twin.env", generated_seed())
    out = tmp_path / "run"
    done = _aigw("run", "--target", "twin", "--env-file", str(env_file), "--out", str(out),
                 "--twin-log-system", "observability", "--twin-plan", "paid")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = _evidence(out)
    assert doc["status"] == "rehearsal-passed"
    assert {c["number"]: c["status"] for c in doc["criteria"]}[5] == "pass"  # type: ignore[attr-defined]
    assert "Logs powered by Workers Observability" in (out / "04_logs_analysis.ipynb").read_text()
    assert verify_bundle(out)


def test_twin_account_options_are_refused_for_cloudflare(tmp_path: Path) -> None:
    done = _aigw("run", "--target", "cloudflare", "--twin-log-system", "observability", "--out", str(tmp_path / "r"))
    assert done.returncode != 0
    assert "--twin-plan and --twin-log-system work only with --target twin" in done.stderr
