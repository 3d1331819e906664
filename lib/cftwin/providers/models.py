"""Which provider keys each emulated provider accepts.

Only a SHA-256 digest of a key is stored: the twin's database file never holds a key-shaped value, so a
leak scan of a run folder cannot trip on it, and the provider can still tell a valid key from a wrong one.
A revoked key stays in the table (``revoked = 1``) so that a rotation drill can show the old key failing.
"""

from __future__ import annotations

import time
from typing import Final

from cftwin.db import Database
from cftwin.digests import sha256_hex

__all__ = [
    "PROVIDER_SLUGS",
    "KeyDigest",
    "add_provider_key",
    "count_provider_keys",
    "is_provider_key_valid",
    "revoke_provider_key",
]

#: Cloudflare's slugs for the providers the twin emulates.
PROVIDER_SLUGS: Final = ("openai", "anthropic", "google-ai-studio")

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS provider_keys (
        provider   TEXT NOT NULL,
        key_sha256 TEXT NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        revoked_at REAL,
        PRIMARY KEY (provider, key_sha256)
    );
    """


class KeyDigest(str):
    """A key's SHA-256, standing in for the key: the gateway's BYOK keys live in the twin's Secrets Store
    as digests only, so the gateway hands the provider the digest and the provider compares it as is."""

    __slots__ = ()


def _digest(key: str) -> str:
    return str(key) if isinstance(key, KeyDigest) else sha256_hex(key)


def _check_provider(provider: str) -> None:
    if provider not in PROVIDER_SLUGS:
        raise ValueError(f"unknown provider {provider!r}; the twin emulates {', '.join(PROVIDER_SLUGS)}")


def add_provider_key(db: Database, provider: str, key: str) -> None:
    """Make ``key`` valid for ``provider`` (again, if it was revoked). Idempotent."""
    _check_provider(provider)
    if not key:
        raise ValueError("a provider key cannot be empty")
    db.execute(
        "INSERT INTO provider_keys (provider, key_sha256, revoked, created_at) VALUES (?, ?, 0, ?) "
        "ON CONFLICT (provider, key_sha256) DO UPDATE SET revoked = 0, revoked_at = NULL",
        (provider, _digest(key), time.time()),
    )


def revoke_provider_key(db: Database, provider: str, key: str) -> bool:
    """Make ``key`` invalid for ``provider``. True when it was known and active."""
    _check_provider(provider)
    cursor = db.execute(
        "UPDATE provider_keys SET revoked = 1, revoked_at = ? "
        "WHERE provider = ? AND key_sha256 = ? AND revoked = 0",
        (time.time(), provider, _digest(key)),
    )
    return cursor.rowcount > 0


def is_provider_key_valid(db: Database, provider: str, key: str) -> bool:
    """True when ``key`` was added for ``provider`` and not revoked since."""
    if not key:
        return False
    row = db.query_one(
        "SELECT 1 FROM provider_keys WHERE provider = ? AND key_sha256 = ? AND revoked = 0",
        (provider, _digest(key)),
    )
    return row is not None


def count_provider_keys(db: Database, provider: str) -> int:
    """How many active keys ``provider`` accepts (for the admin API; never the keys themselves)."""
    row = db.query_one("SELECT COUNT(*) FROM provider_keys WHERE provider = ? AND revoked = 0", (provider,))
    return int(row[0]) if row is not None else 0
