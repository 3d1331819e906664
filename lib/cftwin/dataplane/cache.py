"""The gateway's response cache, in SQLite (the table ``gateway_cache``).

Why SQLite and not memory: a cached answer is state Cloudflare keeps across requests and that a
runbook observes (``cf-aig-cache-status: HIT``); in the twin's database it survives a twin restart on
the same file, and the admin reset (``Database.reset``) empties it with everything else. Reads and
writes are one indexed statement each, and only requests that caching applies to pay for them.

Entries expire lazily: an expired entry is a miss and is overwritten by the next store; a store whose
key starts with ``000`` (one in 4,096, without a counter to keep) also drops every expired entry.

The cache is volatile on Cloudflare ("the first request may not cache in time", cloudflare-docs
``ai-gateway/features/caching.mdx``): a stored entry becomes readable only ``readable_after_s`` after the
MISS that stored it (``TwinOptions.cache_write_delay_s``), and a repeat sent sooner misses too.
ASSUMPTION: that repeat does not restart the write in flight (an unexpired entry is kept), so a client
that waits the delay out once gets its HIT.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Final

from cftwin.db import Database

__all__ = ["MAX_TTL_S", "MIN_TTL_S", "CachedResponse", "cache_get", "cache_key", "cache_put", "purge_expired"]

#: Per-request TTL bounds (``cf-aig-cache-ttl``): 60 seconds to one month.
MIN_TTL_S: Final = 60
MAX_TTL_S: Final = 30 * 24 * 3600

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS gateway_cache (
        key          TEXT PRIMARY KEY,
        account_id   TEXT NOT NULL,
        gateway_id   TEXT NOT NULL,
        status       INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        body         BLOB NOT NULL,
        provider     TEXT NOT NULL,
        model        TEXT NOT NULL,
        tokens_in    INTEGER,
        tokens_out   INTEGER,
        readable_at  REAL NOT NULL DEFAULT 0,
        expires_at   REAL NOT NULL
    ) WITHOUT ROWID;
    """


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    content_type: str
    body: bytes
    provider: str
    model: str
    tokens_in: int | None
    tokens_out: int | None


def cache_key(account_id: str, gateway_id: str, *parts: str | bytes) -> str:
    """SHA-256 over the gateway and ``parts`` (provider, path, model, body, auth identity, ...)."""
    digest = hashlib.sha256()
    for part in (account_id, gateway_id, *parts):
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def cache_get(db: Database, key: str, now: float | None = None) -> CachedResponse | None:
    moment = time.time() if now is None else now
    row = db.query_one(
        "SELECT status, content_type, body, provider, model, tokens_in, tokens_out FROM gateway_cache "
        "WHERE key = ? AND expires_at > ? AND readable_at <= ?",
        (key, moment, moment),
    )
    if row is None:
        return None
    return CachedResponse(int(row[0]), str(row[1]), bytes(row[2]), str(row[3]), str(row[4]), row[5], row[6])


#: Keys are SHA-256 hex: this prefix picks one store in 4,096 to purge, with no module state to count.
_PURGE_PREFIX: Final = "000"


def cache_put(
    db: Database, key: str, account_id: str, gateway_id: str, response: CachedResponse, ttl_s: float,
    readable_after_s: float = 0.0,
) -> None:
    """Store ``response`` for ``ttl_s``, readable from ``readable_after_s`` on; an unexpired entry stays."""
    if key.startswith(_PURGE_PREFIX):
        purge_expired(db)  # keeps the table from growing with entries nobody can hit any more
    now = time.time()
    db.execute(
        "INSERT INTO gateway_cache (key, account_id, gateway_id, status, content_type, body, provider, "
        "model, tokens_in, tokens_out, readable_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET account_id = excluded.account_id, gateway_id = excluded.gateway_id, "
        "status = excluded.status, content_type = excluded.content_type, body = excluded.body, "
        "provider = excluded.provider, model = excluded.model, tokens_in = excluded.tokens_in, "
        "tokens_out = excluded.tokens_out, readable_at = excluded.readable_at, expires_at = excluded.expires_at "
        "WHERE gateway_cache.expires_at <= ?",
        (key, account_id, gateway_id, response.status, response.content_type, response.body, response.provider,
         response.model, response.tokens_in, response.tokens_out, now + max(readable_after_s, 0.0), now + ttl_s,
         now),
    )


def purge_expired(db: Database, now: float | None = None) -> int:
    """Drop expired entries; how many."""
    return int(db.execute("DELETE FROM gateway_cache WHERE expires_at <= ?",
                          (time.time() if now is None else now,)).rowcount)
