"""The data-plane prober: requests through the gateway (and straight to a provider), classified.

::

    with GatewayProber.from_settings(settings, run_id=run_id) as prober:
        result = prober.probe_provider("anthropic", "claude-3-5-haiku-latest", "Say ok", max_tokens=8)
        result.ok, result.status, result.log_id              # 200, the cf-aig-log-id to find it in the logs
        prober.probe_without_gateway_token().gateway_error_code   # 2009: the gateway is locked
        overhead = prober.measure_overhead("openai", "gpt-4o-mini", n=30)

Each probe answers a ``ProbeResult``: status, latency, the ``cf-aig-*`` response headers, the gateway's
error code (Cloudflare's ``AiGatewayError`` body) or the provider's error type, a short redacted excerpt.
By default no provider key is sent through the gateway (BYOK: the gateway adds the stored key).
A provider's own 4xx (its error body, passed through) proves the path works ("valid provider error"),
unless it is about the key or a 429; a provider 5xx or 429 that survives the retries, no answer, and a gateway
401/403 never count as healthy. Probes tag themselves with ``cf-aig-metadata``
(``aigw_run_id``, ``aigw_check``) so the logs API finds them.

The package: ``providers`` (the table of what differs between providers), ``results`` (``ProbeResult``,
``OverheadResult``), ``classify`` (what an answer means), ``prober`` (``GatewayProber``). Callers import from
``aigw.gateway``.
"""

from __future__ import annotations

from aigw.gateway.classify import classify
from aigw.gateway.prober import MAX_METADATA_ENTRIES, PROBE_RETRY, GatewayProber
from aigw.gateway.providers import (
    ANTHROPIC_VERSION,
    DEFAULT_MODELS,
    DIRECT_HOSTS,
    PROVIDER_SPECS,
    REST_AUTHORS,
    ProviderSpec,
    provider_spec,
    rest_model,
)
from aigw.gateway.results import OverheadResult, ProbeResult, percentile

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MODELS",
    "DIRECT_HOSTS",
    "MAX_METADATA_ENTRIES",
    "PROBE_RETRY",
    "PROVIDER_SPECS",
    "REST_AUTHORS",
    "GatewayProber",
    "OverheadResult",
    "ProbeResult",
    "ProviderSpec",
    "classify",
    "percentile",
    "provider_spec",
    "rest_model",
]
