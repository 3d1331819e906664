"""Identifier rules the twin enforces, written down from Cloudflare's sources (never from a client's).

* Gateway id: the official OpenAPI (``ai-gateway.openapi.json``, ``components/.../id``: ``pattern
  ^[a-z0-9_]+(?:-[a-z0-9_]+)*$``, ``maxLength 64``, ``minLength 1``).
* Account id: 32 lowercase hex characters (the ``account_id`` parameter's ``maxLength: 32`` in the same
  file; every account id Cloudflare issues is hex). ASSUMPTION: the twin refuses other shapes at seeding.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

__all__ = ["ACCOUNT_ID_PATTERN", "GATEWAY_ID_MAX", "GATEWAY_ID_PATTERN", "is_account_id", "is_gateway_id"]

GATEWAY_ID_PATTERN: Final = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
GATEWAY_ID_MAX: Final = 64
ACCOUNT_ID_PATTERN: Final = re.compile(r"^[0-9a-f]{32}$")


def is_gateway_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 1 <= len(value) <= GATEWAY_ID_MAX and bool(GATEWAY_ID_PATTERN.fullmatch(value))


def is_account_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(ACCOUNT_ID_PATTERN.fullmatch(value))
