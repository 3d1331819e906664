"""Helpers of the reliability tests: the runbook's control-plane part in-process, the twin's state read
back from SQLite, ``aigw`` as a subprocess with a clean environment."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigw.config import PROVIDER_KEY_VARS
from aigw.evidence import Check
from aigw.session import Session
from aigw.steps import create_gateway, provider_keys
from cftwin.seed import TwinSeed

#: Variables a developer's shell may hold that would change what `aigw` does in a test.
CLEARED_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
               *PROVIDER_KEY_VARS.values(), "CLOUDFLARE_API_BASE_URL", "CLOUDFLARE_GATEWAY_BASE_URL",
               "AIGW_PROVIDER_BASE_URL", "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE")

#: The drill's control-plane faults (the brief: 20% 5xx, 10% 429 with Retry-After).
CONTROL_FAULTS = "control.5xx=0.2,control.429=0.1,control.retry_after=1"
#: The data-plane faults: 20% provider 5xx, 5% slower (6 s) than the probes' request timeout
#: (PROBE_TIMEOUT_S, notebook 03's request_timeout_s).
PROVIDER_FAULTS = "provider.5xx=0.2,provider.slow=0.05,provider.slow_ms=6000"
PROBE_TIMEOUT_S = 5
#: At 20% provider 5xx, 03's default of 3 tries loses 0.8% of probes: about one drill run in ten fails criterion 4
#: on a provider that is down three times in a row (as it should). Five tries: 0.03%, so the drill shows the
#: runbook's state under faults rather than the odds of a seed.
PROBE_ATTEMPTS = 5


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(extra)
    return env


def aigw(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 400) -> subprocess.CompletedProcess[str]:
    """``python -m aigw ARGS`` in a clean environment (no credentials but what ``env`` gives)."""
    return subprocess.run([sys.executable, "-m", "aigw", *args], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), cwd=cwd, timeout=timeout, check=False)


def write_env_file(path: Path, seed: TwinSeed, *, drop: tuple[str, ...] = (), **override: str) -> Path:
    values = {k: v for k, v in seed.to_environ().items() if k not in drop}
    values.update(override)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- the twin's state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StateCounts:
    """What the twin holds for one account: counts, and every duplicate found (must stay empty)."""

    gateways: int
    stores: int
    secrets: int
    provider_configs: int
    duplicates: tuple[str, ...] = field(default_factory=tuple)
    half_made: tuple[str, ...] = field(default_factory=tuple)


def state_counts(conn: sqlite3.Connection | Any, account_id: str) -> StateCounts:
    """Read the twin's tables (a sqlite3 connection to its state file, or its ``Database``).

    Duplicates: two gateways of one id, two stores, two secrets of one name, two provider configs of
    one (gateway, provider, alias). Half-made: a provider config without its secret, a gateway whose
    ``store_id`` names no store, a BYOK secret without the provider config that uses it.
    """
    def rows(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    gateways = rows("SELECT id, data FROM gateways WHERE account_id = ?", (account_id,))
    stores = rows("SELECT id FROM secrets_stores WHERE account_id = ?", (account_id,))
    secrets = rows("SELECT id, store_id, name FROM secrets_store_secrets WHERE account_id = ?", (account_id,))
    configs = rows("SELECT id, gateway_id, provider_slug, alias, secret_id FROM provider_configs "
                   "WHERE account_id = ?", (account_id,))
    duplicates: list[str] = []
    for what, keys in (("gateway", [g[0] for g in gateways]),
                       ("secret", [(s[1], s[2]) for s in secrets]),
                       ("provider config", [(c[1], c[2], c[3]) for c in configs])):
        duplicates += [f"{what} {key} x{n}" for key, n in Counter(keys).items() if n > 1]
    if len(stores) > 1:
        duplicates.append(f"{len(stores)} stores")
    half: list[str] = []
    secret_ids = {s[0] for s in secrets}
    store_ids = {s[0] for s in stores}
    half += [f"provider config {c[2]}/{c[3]} without its secret" for c in configs if c[4] not in secret_ids]
    for gateway_id, data in gateways:
        store_id = json.loads(data).get("store_id") if isinstance(data, str) else None
        if store_id and store_id not in store_ids:
            half.append(f"gateway {gateway_id} points at a missing store")
    used = {c[4] for c in configs}
    half += [f"secret {s[2]} without a provider config" for s in secrets if s[0] not in used]
    return StateCounts(len(gateways), len(stores), len(secrets), len(configs), tuple(duplicates), tuple(half))


def read_state_file(path: str | Path, account_id: str) -> StateCounts:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return state_counts(conn, account_id)
    finally:
        conn.close()


# --- the control-plane part of the runbook, in-process ------------------------------------------


def run_control_plane(session: Session) -> list[Check]:
    """Notebooks 01 and 02 as their cells call the library (preflight, plan, apply, verify; keys,
    store, store keys, verify). Returns every check; raises what a cell would raise."""
    checks: list[Check] = []
    checks += create_gateway.preflight(session).checks
    desired = create_gateway.desired_gateway(session)
    plan = create_gateway.plan_gateway_change(session, desired)
    checks += create_gateway.apply_gateway_plan(session, plan).checks
    checks += create_gateway.verify_gateway(session, desired).checks
    keys = provider_keys.collect_keys(session)
    store = provider_keys.ensure_store(session, "")
    checks += provider_keys.store_provider_keys(session, store, keys).checks
    checks += provider_keys.verify_provider_keys(session, keys, store).checks
    return checks


def criteria_status(checks: list[Check]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for check in checks:
        if check.criterion is not None:
            found.setdefault(check.criterion, set()).add(check.status)
    return found


def evidence(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "evidence.json").read_text())
    return doc


def make_gateway(twin: Any, gateway_id: str = "gw") -> None:
    """A fresh twin state with one authenticated gateway, made through the v4 API as a user would."""
    import httpx

    twin.reset()
    made = httpx.post(f"{twin.server.api_base_url}/accounts/{twin.account_id}/ai-gateway/gateways",
                      headers=twin.api_headers, timeout=30,
                      json={"id": gateway_id, "authentication": True, "cache_ttl": 0,
                            "cache_invalidate_on_update": False, "collect_logs": True,
                            "rate_limiting_interval": 0, "rate_limiting_limit": 0})
    assert made.status_code == 200, made.text
