"""What the SDK contract tests share: a BYOK gateway on the twin, set up with the official ``cloudflare`` SDK
exactly as an operator would (a store, a gateway pointing at it, one provider config per stored key)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cloudflare


@dataclass
class ByokGateway:
    twin: Any
    gateway_id: str

    @property
    def base(self) -> str:
        return f"{self.twin.server.gateway_base_url}/{self.twin.account_id}/{self.gateway_id}"

    def gateway_headers(self, token: str | None = None) -> dict[str, str]:
        return {"cf-aig-authorization": f"Bearer {token or self.twin.seed.aig_token}"}


def create_byok_gateway(twin: Any, providers: Iterable[str]) -> str:
    """A fresh twin state with an authenticated gateway whose store holds the seed's keys for ``providers``."""
    twin.reset()
    cf = cloudflare.Cloudflare(api_token=twin.seed.api_token, base_url=twin.server.api_base_url, max_retries=0)
    store = cf.secrets_store.stores.create(account_id=twin.account_id, name="runbook")
    assert store is not None
    gateway_id = "sdk-" + secrets.token_hex(4)
    cf.ai_gateway.create(account_id=twin.account_id, id=gateway_id, cache_invalidate_on_update=False, cache_ttl=0,
                         collect_logs=True, rate_limiting_interval=0, rate_limiting_limit=0, authentication=True,
                         store_id=store.id)
    for provider in providers:
        cf.ai_gateway.provider_configs.create(gateway_id, account_id=twin.account_id, provider_slug=provider,
                                              alias="default", default_config=True,
                                              secret=twin.seed.provider_keys[provider])
    return gateway_id
