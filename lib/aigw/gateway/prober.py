"""``GatewayProber``: requests through the gateway (and straight to a provider), sent, timed and classified.

What differs between providers comes from ``aigw.gateway.providers``; what an answer means from
``aigw.gateway.classify``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from aigw._http import ClientStats, RetryPolicy, parse_retry_after, verified_tls
from aigw.config import DEFAULT_GATEWAY_BASE_URL, Secret, Settings, redact
from aigw.errors import ConfigError, GatewayError
from aigw.gateway.classify import classify, int_or_none, usage
from aigw.gateway.providers import DEFAULT_MODELS, provider_spec, rest_model
from aigw.gateway.results import OverheadResult, ProbeResult
from aigw.hosts import EVENT_HOOKS

__all__ = ["MAX_METADATA_ENTRIES", "PROBE_RETRY", "GatewayProber"]

#: Cloudflare keeps at most this many ``cf-aig-metadata`` entries (the run id and the check included).
MAX_METADATA_ENTRIES: Final = 5


@dataclass(frozen=True)
class _Call:
    """One request as built: where to, what, with which headers (the headers hold keys: never shown)."""

    check: str
    provider: str | None
    model: str | None
    url: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)

#: A probe's retries (5xx, 429, no answer): three tries by default, fewer than the control plane's ten because
#: a probe may cost money and a provider that fails three times in a row is reported, not waited out; notebook
#: 03's ``probe_attempts`` raises it (the fault drill's 20% provider 5xx loses 0.8% of probes at three).
PROBE_RETRY: Final = RetryPolicy(attempts=3, base_s=0.25, max_s=4.0, max_retry_after_s=10.0)


class GatewayProber:
    """Probes of one gateway's data plane, and of the providers directly.

    **Parameters:**
    * gateway_base_url - ``https://gateway.ai.cloudflare.com/v1`` (or a twin's ``.../v1``).
    * account_id, gateway_id - the gateway.
    * gateway_token - sent as ``cf-aig-authorization`` (a token with AI Gateway Run); None sends none.
    * provider_keys - provider slug -> key, for direct calls (and ``use_provider_key`` probes).
    * provider_base_url - where providers are reached directly: ``{base}/{slug}/<provider path>``;
      None: the real providers' hosts.
    * timeout - seconds per attempt.
    * run_id - tags every probe's ``cf-aig-metadata`` (``aigw_run_id``).
    * retry - bounded retries for 5xx / 429 / no answer (``Retry-After`` honoured).
    * stats - where requests and retries (by reason) are counted; share one across probers to sum a run.
    * api_base_url - the v4 API (``https://api.cloudflare.com/client/v4``), for the REST API probe.
    """

    def __init__(
        self,
        *,
        gateway_base_url: str = DEFAULT_GATEWAY_BASE_URL,
        account_id: str,
        gateway_id: str,
        gateway_token: Secret | None,
        provider_keys: Mapping[str, Secret] | None = None,
        provider_base_url: str | None = None,
        timeout: float = 30.0,
        run_id: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        seed: int | None = None,
        stats: ClientStats | None = None,
        api_base_url: str | None = None,
    ) -> None:
        self.gateway_base_url = gateway_base_url.rstrip("/")
        self.api_base_url = api_base_url.rstrip("/") if api_base_url else None
        self.stats = stats if stats is not None else ClientStats()
        self.account_id = account_id
        self.gateway_id = gateway_id
        self.provider_base_url = provider_base_url.rstrip("/") if provider_base_url else None
        self.timeout = timeout
        self.run_id = run_id
        self.retry = retry or PROBE_RETRY
        self._token = gateway_token
        self._keys = dict(provider_keys or {})
        self._rng = random.Random(seed)
        self._sleep = time.sleep
        # One client, one keep-alive pool, for the gateway and the direct calls alike: a fair comparison.
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": "aigw-runbook"},
                                  event_hooks=dict(EVENT_HOOKS), verify=verified_tls())

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> GatewayProber:
        return cls(
            gateway_base_url=settings.gateway_base_url,
            account_id=settings.account_id,
            gateway_id=settings.gateway_id,
            gateway_token=settings.gateway_token,
            provider_keys=settings.provider_keys,
            provider_base_url=settings.provider_base_url,
            api_base_url=settings.api_base_url,
            **options,
        )

    def __repr__(self) -> str:
        return (
            f"GatewayProber(url={self.gateway_url()!r}, token={'set' if self._token else 'none'}, "
            f"provider_keys={sorted(self._keys)!r})"
        )

    def __enter__(self) -> GatewayProber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _secrets(self, extra: Sequence[Secret] = ()) -> list[Secret]:
        found = [*self._keys.values(), *extra]
        if self._token is not None:
            found.append(self._token)
        return found

    # -- URLs ----------------------------------------------------------------------------------------------

    def gateway_url(self, provider: str | None = None) -> str:
        """``{base}/{account}/{gateway}[/{provider}]``."""
        url = f"{self.gateway_base_url}/{self.account_id}/{self.gateway_id}"
        return f"{url}/{provider}" if provider else url

    def direct_url(self, provider: str, model: str) -> str:
        """The provider's own endpoint: ``{provider_base_url}/{slug}/...`` or the real host."""
        spec = provider_spec(provider)
        path = spec.path(model, direct=True)
        if self.provider_base_url:
            return f"{self.provider_base_url}/{provider}/{path}"
        return f"{spec.direct_host}/{path}"

    # -- building requests ------------------------------------------------------------------------------------

    def _metadata(self, check: str, metadata: Mapping[str, Any] | None) -> str:
        tags: dict[str, Any] = {}
        if self.run_id:
            tags["aigw_run_id"] = self.run_id
        tags["aigw_check"] = check
        for key, value in (metadata or {}).items():
            if not isinstance(value, str | int | float | bool):
                raise ConfigError(
                    f"cf-aig-metadata value of {key!r} is a {type(value).__name__}",
                    hint="Metadata values must be strings, numbers or booleans",
                )
            tags[str(key)] = value
        if len(tags) > MAX_METADATA_ENTRIES:
            raise ConfigError(
                f"cf-aig-metadata would hold {len(tags)} entries (run id and check included)",
                hint=f"Cloudflare keeps at most {MAX_METADATA_ENTRIES}; pass at most "
                f"{MAX_METADATA_ENTRIES - (2 if self.run_id else 1)} of your own",
            )
        return json.dumps(tags, separators=(",", ":"))

    def _gateway_headers(
        self,
        check: str,
        metadata: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        token: Secret | None,
        send_token: bool,
    ) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "cf-aig-metadata": self._metadata(check, metadata)}
        if send_token and token is not None:
            headers["cf-aig-authorization"] = f"Bearer {token.reveal()}"
        headers.update(extra_headers or {})
        return headers

    def _key_headers(self, provider: str) -> dict[str, str]:
        key = self._keys.get(provider)
        if key is None:
            raise ConfigError(
                f"no {provider} key is configured for a direct call",
                hint="Set the provider's key (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_AI_STUDIO_API_KEY) "
                "in .dev.vars",
            )
        return provider_spec(provider).key_headers(key)

    def _direct_call(self, check: str, provider: str, model: str, prompt: str, max_tokens: int) -> _Call:
        spec = provider_spec(provider)
        headers = {"Content-Type": "application/json", **self._key_headers(provider), **spec.headers}
        return _Call(check, provider, model, self.direct_url(provider, model),
                     spec.native_body(model, prompt, max_tokens), headers)

    def _provider_call(
        self,
        check: str,
        provider: str,
        model: str,
        prompt: str,
        max_tokens: int,
        *,
        metadata: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        token: Secret | None = None,
        send_token: bool = True,
        use_provider_key: bool = False,
    ) -> _Call:
        spec = provider_spec(provider)
        url = f"{self.gateway_url(provider)}/{spec.path(model, direct=False)}"
        headers = self._gateway_headers(check, metadata, extra_headers, token, send_token)
        for name, value in spec.headers.items():
            headers.setdefault(name, value)  # a caller's own extra header wins
        if use_provider_key:
            headers.update(self._key_headers(provider))
        return _Call(check, provider, model, url, spec.native_body(model, prompt, max_tokens), headers)

    # -- sending -------------------------------------------------------------------------------------------------

    def _run(self, call: _Call, *, attempts: int | None = None, extra_secrets: Sequence[Secret] = ()) -> ProbeResult:
        limit = attempts or self.retry.attempts
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            self.stats.count_request()
            try:
                response = self._http.post(call.url, json=call.body, headers=call.headers)
            except httpx.HTTPError as exc:
                latency = (time.perf_counter() - started) * 1000
                result = ProbeResult(
                    call.check, call.provider, call.model, call.url, None, "no_answer", latency, attempt,
                    excerpt=f"no answer ({type(exc).__name__})",
                )
                retry_after = None
                reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
            else:
                latency = (time.perf_counter() - started) * 1000
                result = self._result(call, response, latency, attempt, extra_secrets)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if not (response.status_code == 429 or response.status_code >= 500):
                    return result
                reason = "429" if response.status_code == 429 else "5xx"
            if attempt >= limit:
                return result
            self.stats.count_retry(reason)
            self._sleep(self.retry.backoff(attempt, self._rng, retry_after))

    def _result(
        self, call: _Call, response: httpx.Response, latency_ms: float, attempts: int, extra: Sequence[Secret]
    ) -> ProbeResult:
        outcome, code, kind, excerpt = classify(response.status_code, response.content)
        tokens_in, tokens_out = usage(response.status_code, response.content) if outcome == "ok" else (None, None)
        headers = response.headers
        return ProbeResult(
            check=call.check,
            provider=call.provider,
            model=call.model,
            url=call.url,
            status=response.status_code,
            outcome=outcome,
            latency_ms=latency_ms,
            attempts=attempts,
            log_id=headers.get("cf-aig-log-id"),
            cache_status=headers.get("cf-aig-cache-status"),
            step=int_or_none(headers.get("cf-aig-step")),
            served_model=headers.get("cf-aig-model"),
            gateway_error_code=code,
            provider_error_type=kind,
            excerpt=redact(excerpt, self._secrets(extra)),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )

    # -- probes ----------------------------------------------------------------------------------------------------

    def probe_unified(
        self,
        model: str,
        prompt: str = "Reply with the word ok.",
        *,
        max_tokens: int = 16,
        metadata: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ProbeResult:
        """``POST .../compat/chat/completions`` with ``model`` as ``{provider}/{model}`` (no provider key)."""
        provider, _, bare = model.partition("/")
        headers = self._gateway_headers("unified", metadata, extra_headers, self._token, True)
        body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
        call = _Call("unified", provider or None, bare or model, f"{self.gateway_url('compat')}/chat/completions",
                     body, headers)
        return self._run(call)

    def rest_url(self) -> str:
        """``{api}/accounts/{account}/ai/v1/chat/completions``: the REST API's OpenAI-format endpoint."""
        if not self.api_base_url:
            raise ConfigError("no v4 API base URL is configured for the REST API probe",
                              hint="Set CLOUDFLARE_API_BASE_URL (https://api.cloudflare.com/client/v4)")
        return f"{self.api_base_url}/accounts/{self.account_id}/ai/v1/chat/completions"

    # probe_provider's parameters on purpose: the same probe, sent by the REST API's path instead.
    def probe_rest(
        self,
        provider: str,
        model: str,
        prompt: str = "Reply with the word ok.",
        *,
        max_tokens: int = 16,
        metadata: Mapping[str, Any] | None = None,
    ) -> ProbeResult:
        """``POST {api}/accounts/{a}/ai/v1/chat/completions`` through this gateway (``cf-aig-gateway-id``), the
        model as the REST API's ``author/model`` (``rest_model``); no provider key (BYOK or Unified Billing)."""
        headers = self._gateway_headers("rest", metadata, None, None, False)
        headers["cf-aig-gateway-id"] = self.gateway_id
        # The REST API wants a Cloudflare API token with AI Gateway permission in Authorization. The gateway's
        # Run token is the narrowest that may send traffic through a gateway: the runbook's admin token
        # could too, but it can also edit gateways and secrets, which this probe has no use for.
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        body = {"model": rest_model(provider, model), "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": prompt}]}
        return self._run(_Call("rest", provider, model, self.rest_url(), body, headers))

    def probe_provider(
        self,
        provider: str,
        model: str,
        prompt: str = "Reply with the word ok.",
        *,
        max_tokens: int = 16,
        metadata: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        use_provider_key: bool = False,
    ) -> ProbeResult:
        """The provider's native endpoint through the gateway; without a provider key (BYOK) by default."""
        call = self._provider_call(
            "provider", provider, model, prompt, max_tokens,
            metadata=metadata, extra_headers=extra_headers, token=self._token, use_provider_key=use_provider_key,
        )
        return self._run(call)

    def probe_without_gateway_token(
        self, provider: str = "openai", model: str | None = None, *, prompt: str = "ping", max_tokens: int = 1
    ) -> ProbeResult:
        """The same request with no ``cf-aig-authorization``: a locked gateway answers 401 (code 2009)."""
        call = self._provider_call(
            "without_gateway_token", provider, model or DEFAULT_MODELS[provider], prompt, max_tokens,
            send_token=False,
        )
        return self._run(call, attempts=1)

    def probe_with_token(
        self, token: Secret, provider: str = "openai", model: str | None = None, *, prompt: str = "ping",
        max_tokens: int = 1,
    ) -> ProbeResult:
        """The request with ``token`` as ``cf-aig-authorization`` (a wrong or revoked one must be refused)."""
        call = self._provider_call(
            "with_token", provider, model or DEFAULT_MODELS[provider], prompt, max_tokens, token=token,
        )
        return self._run(call, attempts=1, extra_secrets=(token,))

    def probe_direct(
        self, provider: str, model: str, prompt: str = "Reply with the word ok.", *, max_tokens: int = 16
    ) -> ProbeResult:
        """The provider itself, with its key from the settings (no gateway)."""
        return self._run(self._direct_call("direct", provider, model, prompt, max_tokens))

    def measure_overhead(
        self,
        provider: str,
        model: str,
        *,
        n: int = 20,
        max_tokens: int = 1,
        warmup: int = 2,
        prompt: str = "ping",
    ) -> OverheadResult:
        """The gateway's added latency: ``n`` pairs of (gateway, direct) requests, interleaved.

        Each pair's difference cancels what both sides share (the provider's latency, the machine's
        load at that moment); the order within a pair alternates so neither side always goes first.
        ``warmup`` pairs open the connections and are not counted. Gateway requests skip the cache.
        A pair with a failed side is dropped and counted in ``failures``.
        """
        if n < 1:
            raise ConfigError(f"measure_overhead needs n >= 1, got {n}", hint="Use e.g. n=20")
        gateway_call = self._provider_call(
            "overhead", provider, model, prompt, max_tokens, token=self._token,
            extra_headers={"cf-aig-skip-cache": "true"},
        )
        direct_call = self._direct_call("overhead_direct", provider, model, prompt, max_tokens)
        gateway_ms: list[float] = []
        direct_ms: list[float] = []
        failures = 0
        last_failure: ProbeResult | None = None
        for i in range(warmup + n):
            if i % 2 == 0:
                g = self._run(gateway_call, attempts=1)
                d = self._run(direct_call, attempts=1)
            else:
                d = self._run(direct_call, attempts=1)
                g = self._run(gateway_call, attempts=1)
            if i < warmup:
                continue
            if not (g.ok and d.ok):
                failures += 1
                last_failure = g if not g.ok else d
                continue
            gateway_ms.append(g.latency_ms)
            direct_ms.append(d.latency_ms)
        if not gateway_ms:
            detail = str(last_failure) if last_failure is not None else "no pair succeeded"
            raise GatewayError(
                f"measuring the gateway's overhead failed: every one of {n} pairs had a failed request ({detail})",
                status=last_failure.status or 0 if last_failure is not None else 0,
                code=last_failure.gateway_error_code if last_failure is not None else None,
                hint="Run the endpoint probes first (notebook 03) and fix what they report",
            )
        overhead = tuple(g - d for g, d in zip(gateway_ms, direct_ms, strict=True))
        return OverheadResult(provider, model, tuple(gateway_ms), tuple(direct_ms), overhead, failures, warmup)
