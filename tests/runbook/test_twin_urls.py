"""``aigw.twin_urls``: the runbook's copy of the twin's URL layout agrees with the twin's own."""

from __future__ import annotations

import httpx
from aigw.background_twin import twin_environ
from aigw.twin_urls import TwinUrls

from tests.conftest import TwinHandle


def test_the_layout_of_a_twin_at_a_base_url() -> None:
    urls = TwinUrls.at("http://127.0.0.1:8787/")
    assert urls.base == "http://127.0.0.1:8787"
    assert urls.api == "http://127.0.0.1:8787/client/v4"
    assert urls.gateway == "http://127.0.0.1:8787/v1"
    assert urls.providers == "http://127.0.0.1:8787/__providers__"
    assert urls.admin("health") == urls.admin("/health") == "http://127.0.0.1:8787/__twin__/health"


def test_the_twin_behind_its_gateway_base_url() -> None:
    urls = TwinUrls.at("http://127.0.0.1:9")
    assert TwinUrls.from_gateway_base_url(urls.gateway) == urls
    assert TwinUrls.from_gateway_base_url(urls.gateway + "/") == urls


def test_the_runbooks_layout_matches_the_twins_own(twin: TwinHandle) -> None:
    # Two copies on purpose (the twin imports nothing from aigw): this is where they are held together.
    server = twin.server
    urls = TwinUrls.at(server.url)
    assert (urls.api, urls.gateway, urls.providers) == (server.api_base_url, server.gateway_base_url,
                                                         server.provider_base_url)
    assert twin_environ(server.url) == {"CLOUDFLARE_API_BASE_URL": server.api_base_url,
                                        "CLOUDFLARE_GATEWAY_BASE_URL": server.gateway_base_url,
                                        "AIGW_PROVIDER_BASE_URL": server.provider_base_url}
    assert httpx.get(urls.admin("health"), headers=server.admin_headers, timeout=10).status_code == 200
