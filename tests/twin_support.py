"""What the twin's API tests send most: the smallest valid gateway body."""

from __future__ import annotations

from typing import Any


def gateway_body(gateway_id: str, **extra: Any) -> dict[str, Any]:
    """The required fields of a create or PUT body (aig-config-create-gateway), plus ``extra``."""
    body: dict[str, Any] = {
        "id": gateway_id,
        "cache_invalidate_on_update": False,
        "cache_ttl": 0,
        "collect_logs": True,
        "rate_limiting_interval": 0,
        "rate_limiting_limit": 0,
    }
    body.update(extra)
    return body
