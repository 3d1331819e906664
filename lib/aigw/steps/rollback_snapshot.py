"""Notebook 05's snapshot: what of the runbook exists now, saved in the run folder before anything is deleted.

The gateway's settings, its provider configs (ids, slugs, aliases, secret ids; never a key or a key preview),
the metadata of the secrets the runbook created (never a value: Cloudflare never returns one), and the
gateway's logs as Parquet, in ``<run_dir>/05_rollback_snapshot/``. ``aigw.steps.rollback`` plans from
``find_resources`` and re-exports what the notebook calls (``rollback.take_snapshot``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aigw.cloudflare import Gateway, ProviderConfig, Store, StoreSecret
from aigw.config import PROVIDERS
from aigw.errors import NotFoundError, PermissionDeniedError
from aigw.evidence import Check
from aigw.log_systems import fetch_gateway_logs
from aigw.logpush import LogpushApi, LogpushJob, job_name
from aigw.logs_frame import build_frame, export_parquet
from aigw.session import Session
from aigw.steps import checks_table

__all__ = ["SNAPSHOT_DIR", "Found", "Snapshot", "find_resources", "runbook_secret_pattern", "take_snapshot"]

SNAPSHOT_DIR: Final = "05_rollback_snapshot"
#: Provider-config fields kept in the snapshot: everything but the key's preview.
_CONFIG_FIELDS: Final = ("id", "gateway_id", "provider_slug", "alias", "default_config", "secret_id", "modified_at",
                         "rate_limit", "rate_limit_period")
_SECRET_FIELDS: Final = ("id", "name", "store_id", "status", "scopes", "created", "modified")


def runbook_secret_pattern(gateway_id: str, aliases: Sequence[str] = ()) -> re.Pattern[str]:
    """The names of the secrets notebook 02 creates for ``gateway_id``: ``{gateway_id}_{provider}_{alias}``.

    ``aliases`` (from the gateway's provider configs) are matched exactly; any other alias only when it has
    no ``_``, so that ``gw_openai_x`` of gateway ``gw`` is never confused with a secret of a gateway
    ``gw_openai``.
    """
    # ASSUMPTION: an alias the runbook did not see in a provider config is letters, digits and '-' only.
    known = "|".join(re.escape(a) for a in sorted(set(aliases), key=len, reverse=True) if a)
    alias = f"(?:{known}|[A-Za-z0-9-]+)" if known else "[A-Za-z0-9-]+"
    providers = "|".join(re.escape(p) for p in PROVIDERS)
    return re.compile(f"^{re.escape(gateway_id)}_(?:{providers})_{alias}$")


def _config_record(config: ProviderConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in _CONFIG_FIELDS}


def _secret_record(secret: StoreSecret) -> dict[str, Any]:
    record = {name: getattr(secret, name) for name in _SECRET_FIELDS}
    record["scopes"] = list(secret.scopes)
    return record


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    partial.replace(path)


# --- what exists ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What of the runbook's exists now: the gateway, its provider configs, the runbook's secrets, every store,
    and notebook 07's Logpush job."""

    gateway: Gateway | None
    configs: tuple[ProviderConfig, ...]
    secrets: tuple[StoreSecret, ...]
    stores: tuple[Store, ...]
    logpush_jobs: tuple[LogpushJob, ...] = ()


def _runbook_logpush_jobs(session: Session) -> tuple[LogpushJob, ...]:
    """The Logpush job 07 made for this gateway (by its name); none when the token may not read Logpush
    (a token without Logs Read cannot have made one either)."""
    name = job_name(session.settings.gateway_id)
    try:
        return tuple(j for j in LogpushApi(session.client).list_jobs() if j.name == name)
    except (PermissionDeniedError, NotFoundError):
        return ()


def find_resources(session: Session) -> Found:
    """The gateway, its provider configs, and the runbook's secrets in any store of the account."""
    client = session.client
    gateway_id = session.settings.gateway_id
    gateway = client.find_gateway(gateway_id)
    configs: tuple[ProviderConfig, ...] = ()
    if gateway is not None:
        try:
            configs = tuple(client.list_provider_configs(gateway_id))
        except NotFoundError:
            configs = ()
    pattern = runbook_secret_pattern(gateway_id, [c.alias for c in configs])
    stores = tuple(client.list_stores())
    secrets: list[StoreSecret] = []
    for store in stores:
        secrets.extend(s for s in client.list_secrets(store.id, search=f"{gateway_id}_") if pattern.match(s.name))
    return Found(gateway, configs, tuple(secrets), stores, _runbook_logpush_jobs(session))


# --- snapshot -------------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the rollback will remove, as it was, in the run folder."""

    folder: Path
    gateway: dict[str, Any] | None
    provider_configs: list[dict[str, Any]]
    secrets: list[dict[str, Any]]
    logs: int | None
    logs_file: Path | None
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        if self.gateway is None:
            head = f"**Snapshot** in `{self.folder}`: the gateway does not exist (already rolled back?)."
        else:
            head = (f"**Snapshot** in `{self.folder}`: gateway `{self.gateway.get('id')}` settings, "
                    f"{len(self.provider_configs)} provider config(s), {len(self.secrets)} secret(s) (names only), "
                    + ("logs not exported" if self.logs is None else f"{self.logs:,} log(s) in `{self.logs_file}`"))
        return head + "\n\n" + checks_table(self.checks)


def take_snapshot(session: Session, *, export_logs: bool = True) -> Snapshot:
    """Write the gateway's settings, provider configs (without secrets), the runbook's secrets' metadata
    and (``export_logs``) every log of the gateway into ``<run_dir>/05_rollback_snapshot/``."""
    folder = session.run_dir / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    found = find_resources(session)
    earlier = _read_json(folder / "gateway.json")
    if found.gateway is None and isinstance(earlier, dict):
        # A rollback re-run in the same run folder: the snapshot taken before the deletes is the one to keep.
        kept = Snapshot(folder, earlier, _read_json(folder / "provider_configs.json") or [],
                        _read_json(folder / "secrets.json") or [], None, None)
        kept.checks.append(Check(None, "snapshot before rollback", "pass",
                                 f"gateway {session.settings.gateway_id} is gone; the snapshot taken before it was "
                                 f"deleted stays in {SNAPSHOT_DIR}/"))
        return kept
    gateway = dict(found.gateway.raw) if found.gateway is not None else None
    configs = [_config_record(c) for c in found.configs]
    secrets = [_secret_record(s) for s in found.secrets]
    _write_json(folder / "gateway.json", gateway)
    _write_json(folder / "provider_configs.json", configs)
    _write_json(folder / "secrets.json", secrets)
    logs: int | None = None
    logs_file: Path | None = None
    snapshot = Snapshot(folder, gateway, configs, secrets, None, None)
    if found.gateway is not None and export_logs:
        try:
            columns = fetch_gateway_logs(session.client, session.settings.gateway_id).columns
        except NotFoundError:
            columns = None
        if columns is not None:
            frame = build_frame(columns)
            logs_file = export_parquet(frame, folder / "logs.parquet")
            logs = len(frame)
    snapshot.logs, snapshot.logs_file = logs, logs_file
    if gateway is None:
        snapshot.checks.append(Check(None, "snapshot before rollback", "pass",
                                     f"nothing to snapshot: gateway {session.settings.gateway_id} does not exist"))
    else:
        saved = ["gateway settings", f"{len(configs)} provider configs", f"{len(secrets)} secret names"]
        if logs is not None:
            saved.append(f"{logs} logs")
        snapshot.checks.append(Check(None, "snapshot before rollback", "pass",
                                     f"{', '.join(saved)} saved in {SNAPSHOT_DIR}/"))
    return snapshot
