"""What the twin's API tests send most, the smallest valid gateway body, and read most, a 200's result; and
a gateway whose logs Logpush delivers to a local bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from cftwin.logpush.bucket import LocalBucket


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


def ok_result(response: httpx.Response) -> Any:
    """The v4 envelope's ``result``, once the answer is a 200 (its body shown otherwise)."""
    assert response.status_code == 200, response.text
    return response.json()["result"]


def logpush_gateway(api: httpx.Client, account_id: str, gateway_id: str, public_pem: str, bucket: LocalBucket,
                    folder: str) -> None:
    """Through ``api`` (the account's v4 API): the gateway with Logpush on, encrypting to ``public_pem``, and a
    job that delivers its logs to ``bucket`` under ``folder/{DATE}``."""
    ok_result(api.post("ai-gateway/gateways", json=gateway_body(
        gateway_id, authentication=True, logpush=True, logpush_public_key=public_pem)))
    conf = (f"r2://{bucket.bucket}/{folder}/{{DATE}}?account-id={account_id}"
            f"&access-key-id={bucket.access_key_id}&secret-access-key={bucket.secret_access_key}")
    ok_result(api.post("logpush/jobs", json={"dataset": "ai_gateway_events", "destination_conf": conf, "enabled": True,
                                             "output_options": {"timestamp_format": "rfc3339"}}))
