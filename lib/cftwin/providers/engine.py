"""What every emulated provider shares: the request/result types, deterministic answers, token
counts, latency and faults.

An answer is a pure function of the provider, the model and the prompt text (a SHA-256 of them picks
the words), so a test can compare two answers, and a cache hit is visibly the stored answer (ids and
timestamps differ between calls; the text does not). Token counts follow from the text: one token
per 4 characters of prompt text (at least 1), and one token per generated word. The output never
exceeds the request's limit; a capped answer says so (``length`` / ``max_tokens`` / ``MAX_TOKENS``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from cftwin.context import TwinContext

__all__ = [
    "Completion",
    "Provider",
    "ProviderRequest",
    "ProviderResult",
    "bearer_value",
    "complete",
    "dumps",
    "estimate_tokens",
    "json_result",
    "sse_event",
    "upstream_conditions",
]

_WORDS: Final = (
    "twin", "gate", "node", "path", "edge", "mesh", "flow", "data", "sync", "port", "loop", "test",
    "okay", "done", "link", "host", "byte", "rule", "log", "zone", "cost", "load", "fast", "safe",
    "echo", "mode", "plan", "step", "note", "code", "unit", "tone", "wave", "core", "beam", "grid",
    "leaf", "root", "seed", "tree", "lake", "hill", "moon", "star", "rain", "snow", "wind", "fire",
    "gold", "blue", "calm", "bold", "wise", "kind", "true", "real", "open", "free", "warm", "cool",
    "keen", "neat", "pure", "firm",
)


#: Made once: ``json.dumps`` with any option builds a new encoder on every call. What it encodes is a tree (parsed
#: JSON, or built fresh by the twin), never cyclic: the cycle check is skipped.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, as the providers send them."""
    return _ENCODER.encode(value).encode("utf-8")


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: ``event: name`` (optional) and ``data: <json>``."""
    payload = data if isinstance(data, str) else dumps(data).decode("utf-8")
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def estimate_tokens(text: str) -> int:
    """About one token per 4 characters, at least 1."""
    return max(1, (len(text) + 3) // 4)


def bearer_value(header: str | None) -> str | None:
    """The credential of ``Authorization: Bearer <x>`` (or a bare value); None when empty."""
    if header is None:
        return None
    value = header.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    elif value.lower() == "bearer":
        value = ""
    return value or None


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider-neutral answer: what every format renders."""

    text: str
    tokens_in: int
    tokens_out: int
    finish: Literal["stop", "length"]
    words: tuple[str, ...]

    def deltas(self) -> list[str]:
        """The text in stream pieces: one word each (a leading space after the first)."""
        return [w if i == 0 else " " + w for i, w in enumerate(self.words)]


@functools.lru_cache(maxsize=1024)  # deterministic, and a Completion is frozen: a repeat is a lookup
def complete(provider: str, model: str, prompt_text: str, max_tokens: int | None) -> Completion:
    """The deterministic answer to ``prompt_text``; at most ``max_tokens`` tokens."""
    seed = hashlib.sha256(f"{provider}\x00{model}\x00{prompt_text}".encode()).digest()
    natural = 8 + seed[0] % 24
    count = natural if max_tokens is None else min(natural, max_tokens)
    # natural <= 31, so seed[1..31] is enough: one byte picks one word.
    words = [_WORDS[seed[i + 1] % len(_WORDS)] for i in range(count)]
    if words:
        words[0] = words[0].capitalize()
    if count == natural and words:
        words[-1] = words[-1] + "."
    return Completion(
        text=" ".join(words),
        tokens_in=estimate_tokens(prompt_text),
        tokens_out=count,
        finish="stop" if count == natural else "length",
        words=tuple(words),
    )


@dataclass(slots=True)
class ProviderRequest:
    """One call to a provider, whether it came over HTTP or from the gateway in-process.

    **Parameters:**
    * method - ``GET`` / ``POST``.
    * path - the provider's own path without a leading slash (``v1/chat/completions``).
    * query - the query parameters.
    * headers - the request headers (case-insensitive mapping).
    * body - the raw body.
    * key - the credential to check (None: none was sent); the caller resolved it.
    * parsed - the body already parsed as JSON, when the caller did it (saves a second parse).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    key: str | None
    parsed: Any = None


@dataclass(slots=True)
class ProviderResult:
    """A provider's answer: a JSON value (``data``, encoded on first use of ``body``), raw bytes
    (``raw``), or a stream (``chunks``: whole SSE events)."""

    status: int
    data: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    chunks: list[bytes] | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        """The body's bytes (``data`` encoded once; an answer the gateway rewrites is never encoded twice)."""
        if self.raw is None:
            self.raw = dumps(self.data) if self.data is not None else b""
        return self.raw

    @property
    def streamed(self) -> bool:
        return self.chunks is not None

    @property
    def payload(self) -> bytes:
        """The whole response body (a stream's events joined), for logs and the cache."""
        return b"".join(self.chunks) if self.chunks is not None else self.body


def json_result(status: int, body: Any, **extra: Any) -> ProviderResult:
    return ProviderResult(status=status, data=body, **extra)


class Provider(Protocol):
    """An emulated provider: its slug, where its key travels, and its request handler."""

    slug: str

    def request_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The provider key sent on the request, or None (an empty header counts as absent)."""
        ...

    async def handle(self, ctx: TwinContext, request: ProviderRequest) -> ProviderResult:
        ...

    def error_for_status(self, status: int) -> ProviderResult:
        """The provider's own body for a server-side failure (500, 503, 429, 529)."""
        ...


async def upstream_conditions(ctx: TwinContext, provider: Provider) -> ProviderResult | None:
    """Wait out the provider's latency (and any injected delay); the injected error answer, if any.

    Latency is ``TwinOptions.provider_latency_ms[slug]`` +/- ``provider_jitter_ms`` (uniform), slept with
    ``asyncio.sleep`` so the event loop keeps serving other requests. ``ctx.faults`` is asked once per
    call (ASSUMPTION: on the direct ``/__providers__`` path too: the fault is the provider's). An error
    fault is answered in the provider's own format (a 429 with ``Retry-After``); a slow fault adds its
    delay (a "hang" is a slow fault longer than the caller's timeout).
    """
    options = ctx.options
    delay_ms = options.provider_latency_ms.get(provider.slug, 0.0)
    jitter = options.provider_jitter_ms
    if jitter > 0:
        delay_ms += random.uniform(-jitter, jitter)
    injected: ProviderResult | None = None
    if ctx.faults is not None:
        fault = ctx.faults.provider_decision(provider.slug)
        if fault.kind == "slow":
            delay_ms += fault.delay_ms
        elif fault.kind == "error":
            injected = provider.error_for_status(fault.status)
            if fault.retry_after:
                injected.headers["retry-after"] = str(fault.retry_after)
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)
    return injected
