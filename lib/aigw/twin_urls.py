"""Where a twin served at one base URL answers each part of Cloudflare: the runbook's copy of the layout.

::

    urls = TwinUrls.at("http://127.0.0.1:8787")
    urls.api          # 'http://127.0.0.1:8787/client/v4'      (api.cloudflare.com/client/v4)
    urls.gateway      # 'http://127.0.0.1:8787/v1'             (gateway.ai.cloudflare.com/v1)
    urls.providers    # 'http://127.0.0.1:8787/__providers__'  ({slug}/<the provider's own path>)
    urls.admin("health")                                      # 'http://127.0.0.1:8787/__twin__/health'
    TwinUrls.from_gateway_base_url(urls.gateway) == urls      # True

The twin writes the same layout down for itself (``cftwin.server``) and this module does not import it:
the client and the twin share nothing, so a layout one side changed and the other did not follow shows as a
failing request instead of passing against a shared constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["ADMIN_PATH", "API_PATH", "GATEWAY_PATH", "PROVIDERS_PATH", "TwinUrls"]

API_PATH: Final = "/client/v4"
GATEWAY_PATH: Final = "/v1"
PROVIDERS_PATH: Final = "/__providers__"
ADMIN_PATH: Final = "/__twin__"


@dataclass(frozen=True)
class TwinUrls:
    """The URLs of a twin whose server answers at ``base`` (scheme, host and port, no trailing slash)."""

    base: str

    @classmethod
    def at(cls, base_url: str) -> TwinUrls:
        return cls(base_url.rstrip("/"))

    @classmethod
    def from_gateway_base_url(cls, gateway_base_url: str) -> TwinUrls:
        """The twin behind a data-plane base URL (the settings' ``gateway_base_url`` on the twin)."""
        return cls.at(gateway_base_url.rstrip("/").removesuffix(GATEWAY_PATH))

    @property
    def api(self) -> str:
        return self.base + API_PATH

    @property
    def gateway(self) -> str:
        return self.base + GATEWAY_PATH

    @property
    def providers(self) -> str:
        return self.base + PROVIDERS_PATH

    def admin(self, path: str) -> str:
        """The admin API's ``path`` (``health``, ``config``, ``logs/seed``, ...)."""
        return f"{self.base}{ADMIN_PATH}/{path.lstrip('/')}"
