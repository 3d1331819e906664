"""``aigw._http.verified_tls`` and ``warm_http``: one verifying TLS context per process, shared by every client,
and a kernel's warm-up that leaves its notebook's first request nothing to import."""

from __future__ import annotations

import ssl
import subprocess
import sys

import httpx
from aigw._http import verified_tls
from aigw.cloudflare.client import CloudflareClient
from aigw.config import Secret
from aigw.gateway import GatewayProber


def _context_of(client: httpx.Client) -> ssl.SSLContext:
    # httpx keeps the context on its transport's connection pool: what every connection it opens wraps with.
    context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    return context


def test_the_context_verifies_hosts_and_certificates_and_is_made_once() -> None:
    context = verified_tls()
    assert context is verified_tls()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded


def test_the_api_client_and_the_prober_verify_with_it() -> None:
    client = CloudflareClient(api_token=Secret("t" * 40, "token"), account_id="0" * 32)
    prober = GatewayProber(gateway_base_url="https://gateway.ai.cloudflare.com/v1", account_id="0" * 32,
                           gateway_id="gw", gateway_token=None)
    try:
        assert _context_of(client._transport.http) is verified_tls()
        assert _context_of(prober._http) is verified_tls()
    finally:
        client.close()
        prober.close()


def test_a_kernels_warm_up_imports_what_the_first_request_would() -> None:
    code = ("import sys; from aigw.kernels import warm_up; before = 'httpcore' in sys.modules; warm_up([]); "
            "from aigw._http import verified_tls; "
            "print(before, 'httpcore' in sys.modules, verified_tls.cache_info().currsize)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "1"]
