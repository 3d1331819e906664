"""AI Gateway operations: gateways, their endpoint URLs, and their provider configs (BYOK keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from aigw.cloudflare.base import ClientBase
from aigw.cloudflare.results import READ_ONLY_GATEWAY_FIELDS, Gateway, ProviderConfig, as_object
from aigw.config import Secret
from aigw.errors import CloudflareError, NotFoundError, ValidationError

__all__ = ["GATEWAY_DEFAULTS", "GatewayOperations"]

#: What ``create_gateway`` sends for a required field the caller left out (new gateways must be authenticated).
GATEWAY_DEFAULTS: Final[Mapping[str, Any]] = {
    "cache_invalidate_on_update": False,
    "cache_ttl": 0,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
    "authentication": True,
}


class GatewayOperations(ClientBase):
    # -- gateways -----------------------------------------------------------------------------------------

    def list_gateways(self, search: str | None = None) -> list[Gateway]:
        params = [("search", search)] if search else []
        path = self._account("ai-gateway/gateways")
        return [Gateway.from_api(item) for item in self._list_all(path, params)]

    def get_gateway(self, gateway_id: str, *, deadline_at: float | None = None) -> Gateway:
        path = self._gateway_path(gateway_id)
        env = self._send("GET", path, deadline_at=deadline_at)
        return Gateway.from_api(as_object(env, "a gateway", "GET", "/" + path))

    def find_gateway(self, gateway_id: str) -> Gateway | None:
        """The gateway, or None when the account has no gateway of that id."""
        try:
            return self.get_gateway(gateway_id)
        except NotFoundError:
            return None

    def create_gateway(self, gateway_id: str, settings: Mapping[str, Any] | None = None) -> Gateway:
        """Create the gateway; a required field missing from ``settings`` comes from ``GATEWAY_DEFAULTS``."""
        body = {**GATEWAY_DEFAULTS, **dict(settings or {}), "id": gateway_id}
        path = self._account("ai-gateway/gateways")
        env = self._send(
            "POST", path, body=body, idempotent=False, recover=self._recover_by_get(self._gateway_path(gateway_id))
        )
        return Gateway.from_api(as_object(env, "a gateway", "POST", "/" + path))

    def update_gateway(self, gateway_id: str, settings: Mapping[str, Any]) -> Gateway:
        """PUT the gateway: its current writable fields with ``settings`` over them (PUT replaces the whole)."""
        deadline_at = self._clock() + self.deadline
        current = self.get_gateway(gateway_id, deadline_at=deadline_at)
        body = {**current.settings(), **{k: v for k, v in settings.items() if k not in READ_ONLY_GATEWAY_FIELDS}}
        path = self._gateway_path(gateway_id)
        env = self._send("PUT", path, body=body, deadline_at=deadline_at)
        return Gateway.from_api(as_object(env, "a gateway", "PUT", "/" + path))

    def delete_gateway(self, gateway_id: str) -> None:
        self._send("DELETE", self._gateway_path(gateway_id), missing_ok=True)

    def gateway_url(self, gateway_id: str, provider: str) -> str:
        """The gateway's endpoint URL for ``provider`` as Cloudflare states it (``GET .../url/{provider}``)."""
        path = self._gateway_path(gateway_id, f"url/{quote(provider, safe='')}")
        env = self._send("GET", path)
        if not isinstance(env.result, str):
            raise CloudflareError(
                f"Cloudflare API GET /{path}: expected a URL string, got {type(env.result).__name__}",
                status=env.status,
                method="GET",
                path="/" + path,
            )
        return env.result

    # -- provider configs (BYOK) -----------------------------------------------------------------------------

    def list_provider_configs(self, gateway_id: str) -> list[ProviderConfig]:
        path = self._gateway_path(gateway_id, "provider_configs")
        return [ProviderConfig.from_api(item) for item in self._list_all(path)]

    def create_provider_config(
        self,
        gateway_id: str,
        provider_slug: str,
        alias: str,
        secret_id: str | None = None,
        secret: Secret | None = None,
        default_config: bool = True,
        *,
        rate_limit: float | None = None,
        rate_limit_period: float | None = None,
    ) -> ProviderConfig:
        """Attach a provider key to the gateway: a stored secret (``secret_id``) or the key itself (``secret``)."""
        if (secret_id is None) == (secret is None):
            raise ValidationError(
                "create_provider_config needs exactly one of secret_id and secret",
                status=0,
                hint="Pass the Secrets Store secret's id, or the key as a Secret",
            )
        body: dict[str, Any] = {"provider_slug": provider_slug, "alias": alias, "default_config": default_config}
        optional = {"secret_id": secret_id, "rate_limit": rate_limit, "rate_limit_period": rate_limit_period}
        body.update((key, value) for key, value in optional.items() if value is not None)
        path = self._gateway_path(gateway_id, "provider_configs")
        recover = self._recover_from_list(
            path, lambda item: item.get("provider_slug") == provider_slug and item.get("alias") == alias
        )
        extra = (secret,) if secret is not None else ()
        if secret is not None:
            body["secret"] = secret.reveal()
        env = self._send("POST", path, body=body, idempotent=False, recover=recover, secrets=extra)
        return ProviderConfig.from_api(as_object(env, "a provider config", "POST", "/" + path))

    def update_provider_config(self, gateway_id: str, config_id: str, secret: Secret) -> ProviderConfig:
        """Rotate the key behind a provider config (PUT ``{"secret": ...}``)."""
        path = self._gateway_path(gateway_id, f"provider_configs/{quote(config_id, safe='')}")
        env = self._send("PUT", path, body={"secret": secret.reveal()}, secrets=(secret,))
        return ProviderConfig.from_api(as_object(env, "a provider config", "PUT", "/" + path))

    def delete_provider_config(self, gateway_id: str, config_id: str) -> None:
        path = self._gateway_path(gateway_id, f"provider_configs/{quote(config_id, safe='')}")
        self._send("DELETE", path, missing_ok=True)
