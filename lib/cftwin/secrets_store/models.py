"""Secrets Store: stores and their secrets. Values are write-only through the API.

A value is never stored: only its SHA-256 (``cftwin.digests``) and its last 4 characters when it is
long enough to show them (``value_hint``, what a provider config's ``secret_preview`` shows). The
data plane reads the digest (``read_secret_digest``) and hands it to the emulated provider, which
checks it against the digests of the keys it was seeded with. No function here returns a value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from cftwin.db import Database
from cftwin.digests import sha256_hex
from cftwin.envelope import new_hex_id, now_iso

__all__ = [
    "SCOPES",
    "count_secrets",
    "create_secrets",
    "create_store",
    "delete_secret",
    "delete_store",
    "find_secret",
    "find_secret_by_name",
    "get_secret",
    "get_store",
    "list_secrets",
    "list_stores",
    "put_secret",
    "read_secret_digest",
    "read_secret_hint_by_id",
    "store_secret_count",
    "update_secret",
    "value_hint",
]

SCOPES: Final = ("workers", "ai_gateway", "dex", "access", "containers", "websearch")

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS secrets_stores (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        name TEXT NOT NULL,
        created TEXT NOT NULL,
        modified TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS secrets_store_secrets (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        store_id TEXT NOT NULL REFERENCES secrets_stores (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value_sha256 TEXT NOT NULL,
        value_hint TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'active',
        comment TEXT NOT NULL DEFAULT '',
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        modified TEXT NOT NULL,
        UNIQUE (store_id, name)
    );
    """


def value_hint(value: str) -> str:
    """The part of a value the API may show: its last 4 characters, none of a value shorter than 12."""
    return value[-4:] if len(value) >= 12 else ""


def _store(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "created": row["created"],
        "modified": row["modified"],
        "account_id": row["account_id"],
    }


def _secret(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "store_id": row["store_id"],
        "created": row["created"],
        "modified": row["modified"],
        "comment": row["comment"],
        "scopes": json.loads(row["scopes"]),
    }


def create_store(db: Database, account_id: str, name: str) -> dict[str, Any]:
    store_id = new_hex_id()
    now = now_iso()
    db.execute(
        "INSERT INTO secrets_stores (id, account_id, name, created, modified) VALUES (?, ?, ?, ?, ?)",
        (store_id, account_id, name, now, now),
    )
    store = get_store(db, account_id, store_id)
    assert store is not None
    return store


_STORE_ORDER: Final = {"name": "name", "created": "created", "modified": "modified"}
_SECRET_ORDER: Final = {"name": "name", "comment": "comment", "created": "created", "modified": "modified",
                        "status": "status"}


def _order_sql(columns: dict[str, str], order: str, direction: str) -> str:
    column = columns[order]
    way = "DESC" if direction == "desc" else "ASC"
    return f" ORDER BY {column} {way}, rowid {way}"


def list_stores(
    db: Database, account_id: str, *, order: str = "created", direction: str = "asc"
) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT * FROM secrets_stores WHERE account_id = ?" + _order_sql(_STORE_ORDER, order, direction),
        (account_id,),
    )
    return [_store(r) for r in rows]


def get_store(db: Database, account_id: str, store_id: str) -> dict[str, Any] | None:
    row = db.query_one("SELECT * FROM secrets_stores WHERE account_id = ? AND id = ?", (account_id, store_id))
    return _store(row) if row is not None else None


def store_secret_count(db: Database, store_id: str) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM secrets_store_secrets WHERE store_id = ?", (store_id,))
    return int(row["n"]) if row is not None else 0


def count_secrets(db: Database, account_id: str) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM secrets_store_secrets WHERE account_id = ?", (account_id,))
    return int(row["n"]) if row is not None else 0


def delete_store(db: Database, account_id: str, store_id: str) -> bool:
    """Delete the store and (cascade) its secrets; False when there was none."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM secrets_store_secrets WHERE account_id = ? AND store_id = ?", (account_id, store_id))
        cursor = conn.execute("DELETE FROM secrets_stores WHERE account_id = ? AND id = ?", (account_id, store_id))
        return cursor.rowcount > 0


def find_secret_by_name(db: Database, account_id: str, store_id: str, name: str) -> dict[str, Any] | None:
    row = db.query_one(
        "SELECT * FROM secrets_store_secrets WHERE account_id = ? AND store_id = ? AND name = ?",
        (account_id, store_id, name),
    )
    return _secret(row) if row is not None else None


def create_secrets(
    db: Database, account_id: str, store_id: str, items: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert validated items ``{name, value, scopes, comment}`` at once (all or none)."""
    now = now_iso()
    ids: list[str] = []
    with db.transaction() as conn:
        for item in items:
            secret_id = new_hex_id()
            ids.append(secret_id)
            conn.execute(
                "INSERT INTO secrets_store_secrets (id, account_id, store_id, name, value_sha256, value_hint, "
                "status, comment, scopes, created, modified) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (secret_id, account_id, store_id, item["name"], sha256_hex(item["value"]), value_hint(item["value"]),
                 item.get("comment") or "", json.dumps(list(item["scopes"])), now, now),
            )
    created = [get_secret(db, account_id, store_id, secret_id) for secret_id in ids]
    return [s for s in created if s is not None]


def list_secrets(
    db: Database,
    account_id: str,
    store_id: str,
    *,
    search: str | None = None,
    scopes: Sequence[str] = (),
    order: str = "created",
    direction: str = "asc",
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM secrets_store_secrets WHERE account_id = ? AND store_id = ?"
    params: list[Any] = [account_id, store_id]
    if search:
        # ASSUMPTION: search matches a substring of the name or the comment, case-insensitively.
        sql += " AND (instr(lower(name), lower(?)) > 0 OR instr(lower(comment), lower(?)) > 0)"
        params += [search, search]
    secrets = [_secret(r) for r in db.query(sql + _order_sql(_SECRET_ORDER, order, direction), params)]
    if scopes:
        # ASSUMPTION: a secret matches when it has every scope asked for.
        wanted = set(scopes)
        secrets = [s for s in secrets if wanted <= set(s["scopes"])]
    return secrets


def get_secret(db: Database, account_id: str, store_id: str, secret_id: str) -> dict[str, Any] | None:
    row = db.query_one(
        "SELECT * FROM secrets_store_secrets WHERE account_id = ? AND store_id = ? AND id = ?",
        (account_id, store_id, secret_id),
    )
    return _secret(row) if row is not None else None


def find_secret(db: Database, account_id: str, secret_id: str) -> dict[str, Any] | None:
    """A secret of any store of the account, by id."""
    row = db.query_one(
        "SELECT * FROM secrets_store_secrets WHERE account_id = ? AND id = ?", (account_id, secret_id)
    )
    return _secret(row) if row is not None else None


def update_secret(
    db: Database,
    account_id: str,
    store_id: str,
    secret_id: str,
    *,
    value: str | None = None,
    comment: str | None = None,
    scopes: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """Change what is given; None when the secret does not exist."""
    sets: list[str] = ["modified = ?"]
    params: list[Any] = [now_iso()]
    if value is not None:
        sets += ["value_sha256 = ?", "value_hint = ?"]
        params += [sha256_hex(value), value_hint(value)]
    if comment is not None:
        sets.append("comment = ?")
        params.append(comment)
    if scopes is not None:
        sets.append("scopes = ?")
        params.append(json.dumps(list(scopes)))
    params += [account_id, store_id, secret_id]
    cursor = db.execute(
        f"UPDATE secrets_store_secrets SET {', '.join(sets)} WHERE account_id = ? AND store_id = ? AND id = ?",
        params,
    )
    if cursor.rowcount == 0:
        return None
    return get_secret(db, account_id, store_id, secret_id)


def put_secret(
    db: Database, account_id: str, store_id: str, name: str, value: str, *, scopes: Sequence[str], comment: str = ""
) -> dict[str, Any]:
    """Create the secret ``name``, or set its value when it exists (provider-config uploads converge)."""
    with db.transaction():
        existing = find_secret_by_name(db, account_id, store_id, name)
        if existing is None:
            return create_secrets(db, account_id, store_id, [{"name": name, "value": value, "scopes": list(scopes),
                                                             "comment": comment}])[0]
        merged = sorted(set(existing["scopes"]) | set(scopes), key=SCOPES.index)
        updated = update_secret(db, account_id, store_id, existing["id"], value=value, scopes=merged)
        assert updated is not None
        return updated


def delete_secret(db: Database, account_id: str, store_id: str, secret_id: str) -> bool:
    cursor = db.execute(
        "DELETE FROM secrets_store_secrets WHERE account_id = ? AND store_id = ? AND id = ?",
        (account_id, store_id, secret_id),
    )
    return cursor.rowcount > 0


def read_secret_digest(
    db: Database, account_id: str, store_id: str, name: str, *, scope: str | None = None
) -> str | None:
    """The SHA-256 of secret ``name``'s value (internal: the API never returns values, nor this).

    With ``scope``, only a secret holding that scope is visible: Secrets Store hands a secret only to
    the services its ``scopes`` name.
    """
    # Digest and scopes decoded once per kept row (until the next write to secrets): a frozen pair.
    found = db.query_one_as(
        "SELECT value_sha256, scopes FROM secrets_store_secrets "
        "WHERE account_id = ? AND store_id = ? AND name = ? AND status = 'active'",
        (account_id, store_id, name),
        lambda row: (str(row["value_sha256"]), frozenset(json.loads(row["scopes"]))),
    )
    if found is None or (scope is not None and scope not in found[1]):
        return None
    return found[0]


def read_secret_hint_by_id(db: Database, account_id: str, secret_id: str) -> str | None:
    """The shown part of an active secret's value (``value_hint``); None when there is no such secret."""
    row = db.query_one(
        "SELECT value_hint FROM secrets_store_secrets WHERE account_id = ? AND id = ? AND status = 'active'",
        (account_id, secret_id),
    )
    return str(row["value_hint"]) if row is not None else None
