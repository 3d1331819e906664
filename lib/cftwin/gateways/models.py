"""Gateways and their BYOK provider configs: the rows, and the objects the API returns.

Other services read gateways only through ``get_gateway`` and ``list_provider_configs``; both return
exactly what the v4 API would (no secret value is ever held here: a provider config points at a
Secrets Store secret by id, and its name is ``secret_name(gateway_id, provider_slug, alias)``).
"""

from __future__ import annotations

import copy
import json
from types import MappingProxyType
from typing import Any, Final

from cftwin.db import Database
from cftwin.envelope import new_hex_id, now_iso

__all__ = [
    "KNOWN_PROVIDER_SLUGS",
    "count_gateways",
    "create_gateway",
    "create_provider_config",
    "delete_gateway",
    "delete_provider_config",
    "find_provider_config",
    "get_gateway",
    "get_provider_config",
    "list_gateways",
    "list_provider_configs",
    "replace_gateway",
    "secret_name",
    "update_provider_config_secret",
]

#: Provider slugs the gateway serves (Cloudflare's list, 2026). The twin emulates three of them;
#: the control plane accepts them all, as Cloudflare does.
KNOWN_PROVIDER_SLUGS: Final = frozenset(
    {
        "anthropic", "aws-bedrock", "azure-openai", "baseten", "cartesia", "cerebras", "cohere",
        "deepgram", "deepseek", "elevenlabs", "fal", "google-ai-studio", "google-vertex-ai", "grok",
        "groq", "huggingface", "ideogram", "mistral", "openai", "openrouter", "parallel",
        "perplexity-ai", "replicate", "workers-ai",
    }
)

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS gateways (
        account_id TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (account_id, id)
    );
    CREATE TABLE IF NOT EXISTS provider_configs (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        gateway_id TEXT NOT NULL,
        provider_slug TEXT NOT NULL,
        alias TEXT NOT NULL,
        default_config INTEGER NOT NULL,
        secret_id TEXT NOT NULL,
        secret_preview TEXT NOT NULL,
        rate_limit REAL,
        rate_limit_period REAL,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        UNIQUE (account_id, gateway_id, provider_slug, alias),
        FOREIGN KEY (account_id, gateway_id) REFERENCES gateways (account_id, id) ON DELETE CASCADE
    );
    """


def secret_name(gateway_id: str, provider_slug: str, alias: str) -> str:
    """The Secrets Store name the gateway looks a BYOK key up by: ``{gateway_id}_{provider_slug}_{alias}``."""
    return f"{gateway_id}_{provider_slug}_{alias}"


def _gateway(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row["data"])
    data["id"] = row["id"]
    data["created_at"] = row["created_at"]
    data["modified_at"] = row["modified_at"]
    return data


def get_gateway(db: Database, account_id: str, gateway_id: str) -> dict[str, Any] | None:
    """The gateway as the API returns it (the caller's own copy), or None."""
    # Decoded once per kept row (until the next write to gateways), as a read-only view; each caller gets
    # a copy, deep where a field holds a container, so no caller's change reaches another.
    kept = db.query_one_as("SELECT * FROM gateways WHERE account_id = ? AND id = ?", (account_id, gateway_id),
                           _kept_gateway)
    if kept is None:
        return None
    gateway, nested = kept
    copied = dict(gateway)
    for name in nested:
        copied[name] = copy.deepcopy(copied[name])
    return copied


def _kept_gateway(row: Any) -> tuple[MappingProxyType[str, Any], tuple[str, ...]]:
    gateway = _gateway(row)
    return MappingProxyType(gateway), tuple(k for k, v in gateway.items() if isinstance(v, dict | list))


def list_gateways(db: Database, account_id: str, search: str | None = None) -> list[dict[str, Any]]:
    """Every gateway of the account, oldest first; ``search`` keeps ids that contain it."""
    sql = "SELECT * FROM gateways WHERE account_id = ?"
    params: list[Any] = [account_id]
    if search:
        sql += " AND instr(id, ?) > 0"
        params.append(search)
    # ASSUMPTION: Cloudflare lists gateways oldest first (creation order); the order is not documented.
    return [_gateway(r) for r in db.query(sql + " ORDER BY seq", params)]


def count_gateways(db: Database, account_id: str) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM gateways WHERE account_id = ?", (account_id,))
    return int(row["n"]) if row is not None else 0


def create_gateway(db: Database, account_id: str, gateway: dict[str, Any]) -> dict[str, Any]:
    """Store a validated gateway (``gateway["id"]`` must be new); returns it with its timestamps."""
    now = now_iso()
    data = {k: v for k, v in gateway.items() if k not in {"id", "created_at", "modified_at"}}
    with db.transaction() as conn:
        seq_row = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM gateways").fetchone()
        conn.execute(
            "INSERT INTO gateways (account_id, id, data, created_at, modified_at, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, gateway["id"], json.dumps(data), now, now, int(seq_row[0])),
        )
    created = get_gateway(db, account_id, gateway["id"])
    assert created is not None
    return created


def replace_gateway(db: Database, account_id: str, gateway_id: str, gateway: dict[str, Any]) -> dict[str, Any] | None:
    """Replace the stored fields of a gateway; None when it does not exist."""
    data = {k: v for k, v in gateway.items() if k not in {"id", "created_at", "modified_at"}}
    cursor = db.execute(
        "UPDATE gateways SET data = ?, modified_at = ? WHERE account_id = ? AND id = ?",
        (json.dumps(data), now_iso(), account_id, gateway_id),
    )
    if cursor.rowcount == 0:
        return None
    return get_gateway(db, account_id, gateway_id)


def delete_gateway(db: Database, account_id: str, gateway_id: str) -> dict[str, Any] | None:
    """Delete a gateway and its provider configs; returns the deleted gateway, or None."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT * FROM gateways WHERE account_id = ? AND id = ?", (account_id, gateway_id)
        ).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM provider_configs WHERE account_id = ? AND gateway_id = ?", (account_id, gateway_id))
        conn.execute("DELETE FROM gateways WHERE account_id = ? AND id = ?", (account_id, gateway_id))
    return _gateway(row)


def _provider_config(row: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "id": row["id"],
        "alias": row["alias"],
        "default_config": bool(row["default_config"]),
        "gateway_id": row["gateway_id"],
        "modified_at": row["modified_at"],
        "provider_slug": row["provider_slug"],
        "secret_id": row["secret_id"],
        "secret_preview": row["secret_preview"],
        "rate_limit_period": row["rate_limit_period"],
    }
    if row["rate_limit"] is not None:
        config["rate_limit"] = row["rate_limit"]
    return config


def list_provider_configs(db: Database, account_id: str, gateway_id: str) -> list[dict[str, Any]]:
    """The gateway's provider configs as the API returns them, oldest first."""
    rows = db.query(
        "SELECT * FROM provider_configs WHERE account_id = ? AND gateway_id = ? ORDER BY created_at, rowid",
        (account_id, gateway_id),
    )
    return [_provider_config(r) for r in rows]


def get_provider_config(db: Database, account_id: str, gateway_id: str, config_id: str) -> dict[str, Any] | None:
    row = db.query_one(
        "SELECT * FROM provider_configs WHERE account_id = ? AND gateway_id = ? AND id = ?",
        (account_id, gateway_id, config_id),
    )
    return _provider_config(row) if row is not None else None


def find_provider_config(
    db: Database, account_id: str, gateway_id: str, provider_slug: str, alias: str
) -> dict[str, Any] | None:
    # Made once per kept row (until the next write to provider_configs), read-only; each caller gets a copy (its
    # values are scalars).
    kept = db.query_one_as(
        "SELECT * FROM provider_configs WHERE account_id = ? AND gateway_id = ? AND provider_slug = ? AND alias = ?",
        (account_id, gateway_id, provider_slug, alias), lambda row: MappingProxyType(_provider_config(row)),
    )
    return dict(kept) if kept is not None else None


def create_provider_config(
    db: Database,
    account_id: str,
    gateway_id: str,
    *,
    provider_slug: str,
    alias: str,
    default_config: bool,
    secret_id: str,
    secret_preview: str,
    rate_limit: float | None,
    rate_limit_period: float,
) -> dict[str, Any]:
    """Insert a provider config (the caller checked the (provider_slug, alias) pair is free)."""
    config_id = new_hex_id()
    now = now_iso()
    with db.transaction() as conn:
        if default_config:
            # ASSUMPTION: one default key per provider per gateway; a new default replaces the old one.
            conn.execute(
                "UPDATE provider_configs SET default_config = 0 WHERE account_id = ? AND gateway_id = ? "
                "AND provider_slug = ?",
                (account_id, gateway_id, provider_slug),
            )
        conn.execute(
            "INSERT INTO provider_configs (id, account_id, gateway_id, provider_slug, alias, default_config, "
            "secret_id, secret_preview, rate_limit, rate_limit_period, created_at, modified_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (config_id, account_id, gateway_id, provider_slug, alias, int(default_config), secret_id,
             secret_preview, rate_limit, rate_limit_period, now, now),
        )
    created = get_provider_config(db, account_id, gateway_id, config_id)
    assert created is not None
    return created


def update_provider_config_secret(
    db: Database, account_id: str, gateway_id: str, config_id: str, *, secret_id: str, secret_preview: str
) -> dict[str, Any] | None:
    cursor = db.execute(
        "UPDATE provider_configs SET secret_id = ?, secret_preview = ?, modified_at = ? "
        "WHERE account_id = ? AND gateway_id = ? AND id = ?",
        (secret_id, secret_preview, now_iso(), account_id, gateway_id, config_id),
    )
    if cursor.rowcount == 0:
        return None
    return get_provider_config(db, account_id, gateway_id, config_id)


def delete_provider_config(db: Database, account_id: str, gateway_id: str, config_id: str) -> dict[str, Any] | None:
    config = get_provider_config(db, account_id, gateway_id, config_id)
    if config is not None:
        db.execute(
            "DELETE FROM provider_configs WHERE account_id = ? AND gateway_id = ? AND id = ?",
            (account_id, gateway_id, config_id),
        )
    return config
