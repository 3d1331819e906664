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
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx

from aigw._http import ClientStats, RetryPolicy, parse_retry_after
from aigw.config import DEFAULT_GATEWAY_BASE_URL, PROVIDERS, Secret, Settings, redact
from aigw.errors import ConfigError, GatewayError
from aigw.hosts import EVENT_HOOKS
from aigw.text import one_line

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MODELS",
    "DIRECT_HOSTS",
    "MAX_METADATA_ENTRIES",
    "REST_AUTHORS",
    "GatewayProber",
    "OverheadResult",
    "ProbeResult",
    "classify",
    "percentile",
    "rest_model",
]

ANTHROPIC_VERSION: Final = "2023-06-01"
MAX_METADATA_ENTRIES: Final = 5
#: The real providers, when no ``provider_base_url`` is configured.
DIRECT_HOSTS: Final[Mapping[str, str]] = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "google-ai-studio": "https://generativelanguage.googleapis.com",
}
#: A cheap model per provider, for the lock checks when the caller names none.
DEFAULT_MODELS: Final[Mapping[str, str]] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "google-ai-studio": "gemini-2.0-flash",
}
_EXCERPT_CHARS: Final = 160
#: The REST API names a model's author, the gateway its provider slug: ``google/gemini-2.5-flash`` on
#: ``/ai/v1/chat/completions`` is ``google-ai-studio/gemini-2.5-flash`` on ``compat`` (cloudflare-docs
#: ``ai-gateway/usage/rest-api.mdx``). The one place the runbook maps between them.
REST_AUTHORS: Final[Mapping[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google-ai-studio": "google",
}


def rest_model(provider: str, model: str) -> str:
    """The REST API's ``author/model`` for a gateway provider slug and model."""
    author = REST_AUTHORS.get(provider)
    if author is None:
        raise ConfigError(f"no REST API author is known for provider {provider!r}",
                          hint=f"Use one of {', '.join(REST_AUTHORS)}")
    return f"{author}/{model}"

Outcome = Literal["ok", "provider_error", "gateway_error", "error", "no_answer"]


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw. Never holds a key: the excerpt is redacted, headers are not kept.

    ``outcome``: ``ok`` (2xx), ``provider_error`` (the provider's own error body: the gateway forwarded
    the request), ``gateway_error`` (Cloudflare's ``AiGatewayError`` or a v4 error envelope), ``error``
    (anything else, e.g. an HTML 502), ``no_answer`` (connection failure or timeout).
    """

    check: str
    provider: str | None
    model: str | None
    url: str
    status: int | None
    outcome: Outcome
    latency_ms: float
    attempts: int = 1
    log_id: str | None = None
    cache_status: str | None = None
    step: int | None = None
    served_model: str | None = None
    gateway_error_code: int | None = None
    provider_error_type: str | None = None
    excerpt: str = ""
    #: The answer's own usage (OpenAI ``prompt_tokens``/``completion_tokens``, Anthropic ``input_tokens``/
    #: ``output_tokens``), when a 2xx carried it.
    tokens_in: int | None = None
    tokens_out: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def key_rejected(self) -> bool:
        """The provider itself refused the key: 401/403, or Google's 400 with reason ``API_KEY_INVALID``."""
        if self.outcome != "provider_error":
            return False
        return self.status in (401, 403) or self.provider_error_type == "API_KEY_INVALID"

    @property
    def provider_unavailable(self) -> bool:
        """The provider's own 429 or 5xx, still there after the retries: it proves nothing about the path
        (an outage answers the same whether the path is right or not), so it is a failed probe."""
        return self.outcome == "provider_error" and self.status is not None and (
            self.status == 429 or self.status >= 500)

    @property
    def healthy(self) -> bool:
        """The path works: a 2xx, or a provider's own 4xx that is not about credentials nor a rate limit
        (e.g. an unknown model: the request reached the provider, which judged it). A 429, a 5xx, no answer
        or the gateway's own error never counts."""
        if self.outcome == "ok":
            return True
        return (self.outcome == "provider_error" and self.status is not None and 400 <= self.status < 500
                and not self.key_rejected and not self.provider_unavailable)

    @property
    def rejected_by_gateway(self) -> bool:
        """The gateway itself refused the request for its credentials (401/403, e.g. code 2009)."""
        return self.outcome == "gateway_error" and self.status in (401, 403)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "provider": self.provider,
            "model": self.model,
            "url": self.url,
            "status": self.status,
            "outcome": self.outcome,
            "ok": self.ok,
            "healthy": self.healthy,
            "latency_ms": round(self.latency_ms, 1),
            "attempts": self.attempts,
            "log_id": self.log_id,
            "cache_status": self.cache_status,
            "step": self.step,
            "served_model": self.served_model,
            "gateway_error_code": self.gateway_error_code,
            "provider_error_type": self.provider_error_type,
            "excerpt": self.excerpt,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }

    def __str__(self) -> str:
        code = f" code {self.gateway_error_code}" if self.gateway_error_code is not None else ""
        kind = f" {self.provider_error_type}" if self.provider_error_type else ""
        return f"{self.check} {self.provider or ''}/{self.model or ''}: {self.status} {self.outcome}{code}{kind}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class OverheadResult:
    """Gateway latency minus direct latency, per interleaved pair. Samples are kept for a plot."""

    provider: str
    model: str
    gateway_ms: tuple[float, ...]
    direct_ms: tuple[float, ...]
    overhead_ms: tuple[float, ...]
    failures: int = 0
    warmup: int = 0

    @property
    def n(self) -> int:
        return len(self.overhead_ms)

    @property
    def median_ms(self) -> float:
        return percentile(self.overhead_ms, 0.5)

    @property
    def p95_ms(self) -> float:
        return percentile(self.overhead_ms, 0.95)

    @property
    def mean_ms(self) -> float:
        return sum(self.overhead_ms) / len(self.overhead_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "n": self.n,
            "failures": self.failures,
            "warmup": self.warmup,
            "median_ms": round(self.median_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "mean_ms": round(self.mean_ms, 2),
            "gateway_median_ms": round(percentile(self.gateway_ms, 0.5), 2),
            "direct_median_ms": round(percentile(self.direct_ms, 0.5), 2),
        }


# --- classification --------------------------------------------------------------------------------------


def _first_text(body: Mapping[str, Any]) -> str | None:
    """The generated text of an OpenAI, Anthropic or Google answer."""
    try:
        choices = body.get("choices")
        if isinstance(choices, list) and choices:
            content = choices[0]["message"]["content"]
            return content if isinstance(content, str) else None
        content = body.get("content")
        if isinstance(content, list) and content:
            text = content[0].get("text")
            return text if isinstance(text, str) else None
        candidates = body.get("candidates")
        if isinstance(candidates, list) and candidates:
            text = candidates[0]["content"]["parts"][0].get("text")
            return text if isinstance(text, str) else None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _usage(status: int, content: bytes) -> tuple[int | None, int | None]:
    """``(tokens_in, tokens_out)`` of a 2xx answer's ``usage`` (OpenAI or Anthropic names); None when absent."""
    if not 200 <= status < 300:
        return None, None
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    tokens_in = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    return tokens_in, _int(usage.get("completion_tokens", usage.get("output_tokens")))


def _google_reason(error: Mapping[str, Any]) -> str | None:
    """The ``ErrorInfo`` reason of a Google error (``API_KEY_INVALID``), which says more than its status."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def classify(status: int, content: bytes) -> tuple[Outcome, int | None, str | None, str]:
    """``(outcome, gateway_error_code, provider_error_type, excerpt)`` of one data-plane answer.

    Gateway errors are Cloudflare's ``AiGatewayError`` (``{"error": [{"code": 2009, ...}], "name":
    "AiGatewayError"}``) or a v4 envelope (``{"success": false, "errors": [...]}``); provider errors are
    the provider's own body: OpenAI ``{"error": {"type": ...}}``, Anthropic ``{"type": "error", "error":
    {"type": ...}}``, Google ``{"error": {"status": ...}}``. The excerpt is not redacted here.
    """
    try:
        body: Any = json.loads(content) if content.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if body is None or not isinstance(body, Mapping):
        # Not JSON: never a completion, whatever the status (a probe's "ok" means a valid completion).
        text = content[:400].decode("utf-8", "replace")
        return "error", None, None, one_line(text, _EXCERPT_CHARS)
    error = body.get("error")
    errors = body.get("errors")
    is_gateway = body.get("name") == "AiGatewayError" or (
        isinstance(error, list) and (not error or isinstance(error[0], Mapping))
    )
    if not is_gateway and body.get("success") is False and isinstance(errors, list):
        is_gateway = True
        error = errors
    if is_gateway and (status >= 400 or body.get("success") is False):
        items = error if isinstance(error, list) else []
        first = items[0] if items and isinstance(items[0], Mapping) else {}
        code = _int(first.get("code"))
        if code is None:
            code = _int(body.get("internalCode"))
        message = first.get("message") or body.get("message") or ""
        return "gateway_error", code, None, one_line(str(message), _EXCERPT_CHARS)
    if 200 <= status < 300:
        generated = _first_text(body)
        if generated is None:
            return "error", None, None, one_line("2xx without a completion: " + json.dumps(body)[:380], _EXCERPT_CHARS)
        return "ok", None, None, one_line(generated, _EXCERPT_CHARS)
    if isinstance(error, Mapping):
        kind = _google_reason(error) or error.get("type") or error.get("status") or error.get("code")
        message = error.get("message") or ""
        return "provider_error", None, None if kind is None else str(kind), one_line(str(message), _EXCERPT_CHARS)
    return "error", None, None, one_line(json.dumps(body)[:400], _EXCERPT_CHARS)


# --- the prober -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One request as built: where to, what, with which headers (the headers hold keys: never shown)."""

    check: str
    provider: str | None
    model: str | None
    url: str
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)


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
        self.retry = retry or RetryPolicy(attempts=3, base_s=0.25, max_s=4.0, max_retry_after_s=10.0)
        self._token = gateway_token
        self._keys = dict(provider_keys or {})
        self._rng = random.Random(seed)
        self._sleep = time.sleep
        # One client, one keep-alive pool, for the gateway and the direct calls alike: a fair comparison.
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": "aigw-runbook"},
                                  event_hooks=dict(EVENT_HOOKS))

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

    def _native_path(self, provider: str, model: str, *, direct: bool) -> str:
        if provider == "openai":
            # Through the gateway, ".../openai" replaces "https://api.openai.com/v1".
            return "v1/chat/completions" if direct else "chat/completions"
        if provider == "anthropic":
            return "v1/messages"
        if provider == "google-ai-studio":
            return f"v1beta/models/{quote(model, safe='')}:generateContent"
        raise ConfigError(f"unknown provider {provider!r}", hint=f"Use one of {', '.join(PROVIDERS)}")

    def direct_url(self, provider: str, model: str) -> str:
        """The provider's own endpoint: ``{provider_base_url}/{slug}/...`` or the real host."""
        path = self._native_path(provider, model, direct=True)
        if self.provider_base_url:
            return f"{self.provider_base_url}/{provider}/{path}"
        return f"{DIRECT_HOSTS[provider]}/{path}"

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
        if provider == "openai":
            return {"Authorization": f"Bearer {key.reveal()}"}
        if provider == "anthropic":
            return {"x-api-key": key.reveal()}
        return {"x-goog-api-key": key.reveal()}

    @staticmethod
    def _native_body(provider: str, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
        if provider == "google-ai-studio":
            return {
                "contents": [{"role": "user", "parts": [{"text": prompt}]}],
                "generationConfig": {"maxOutputTokens": max_tokens},
            }
        return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}

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
        url = f"{self.gateway_url(provider)}/{self._native_path(provider, model, direct=False)}"
        headers = self._gateway_headers(check, metadata, extra_headers, token, send_token)
        if provider == "anthropic":
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
        if use_provider_key:
            headers.update(self._key_headers(provider))
        return _Call(check, provider, model, url, self._native_body(provider, model, prompt, max_tokens), headers)

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
        tokens_in, tokens_out = _usage(response.status_code, response.content) if outcome == "ok" else (None, None)
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
            step=_int(headers.get("cf-aig-step")),
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
        headers = {"Content-Type": "application/json", **self._key_headers(provider)}
        if provider == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
        call = _Call("direct", provider, model, self.direct_url(provider, model),
                     self._native_body(provider, model, prompt, max_tokens), headers)
        return self._run(call)

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
        direct_headers = {"Content-Type": "application/json", **self._key_headers(provider)}
        if provider == "anthropic":
            direct_headers["anthropic-version"] = ANTHROPIC_VERSION
        direct_call = _Call("overhead_direct", provider, model, self.direct_url(provider, model),
                            self._native_body(provider, model, prompt, max_tokens), direct_headers)
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
