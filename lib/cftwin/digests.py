"""The one digest the twin keeps of a credential (an API token, a provider key, a Secrets Store value).

The state file holds no credential: a token is found by its digest, a provider checks a key's digest
against the digests it was seeded with, and a Secrets Store value (write-only through the API) is kept
as its digest, which the gateway hands to the emulated provider in place of the key (``KeyDigest``).
"""

from __future__ import annotations

import hashlib

__all__ = ["sha256_hex"]


def sha256_hex(value: str) -> str:
    """The SHA-256 of ``value``'s UTF-8 bytes, as 64 lowercase hex characters."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
