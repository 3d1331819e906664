"""Seeded fault injection for the control plane (``/client/v4``) and the emulated providers.

Grammar of a spec string (also accepted as a JSON object with the same keys)::

    spec   := item ("," item)*          whitespace around items is ignored; empty spec = no faults
    item   := key "=" number
    key    := "seed"                    integer seed of the random generator (default: 0)
            | "control." c_rate         probability 0..1 per /client/v4 request
            | "control.retry_after"     seconds in Retry-After of an injected 429 (default 1)
            | "control.hang_s"          how long a hung response sleeps (default 120 s)
            | scope "." p_rate          probability 0..1 per upstream provider call
            | scope ".slow_ms"          delay of a slow call, milliseconds (default 30000)
            | scope ".retry_after"      seconds in Retry-After of an injected provider 429 (default 1)
    c_rate := "5xx" | "429" | "hang_after_apply"
    scope  := "provider"                every provider
            | <provider slug>           one provider (openai, anthropic, google-ai-studio, ...),
                                        overriding "provider" key by key
    p_rate := "5xx" | "429" | "slow"

Example: ``seed=7,control.5xx=0.2,control.429=0.1,control.retry_after=1,provider.slow=0.05,
provider.slow_ms=30000,openai.5xx=0.5``.

Each decision draws from one ``random.Random(seed)`` under a lock, so the same seed and the same
sequence of requests give the same faults. The rates of one scope are stacked on a single draw:
``[0, 5xx)`` is a 5xx (500, 502 or 503, drawn too), the next ``429`` a 429, the next
``hang_after_apply`` / ``slow`` that fault; the rest pass. ``hang_after_apply`` lets the handler run
and commit, then withholds the answer until the client gives up (the "did my write happen?" case).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from cftwin import jsonbody

__all__ = [
    "ControlFault",
    "FaultInjector",
    "FaultSpec",
    "ProviderFault",
    "ProviderRates",
    "parse_fault_spec",
]

_SERVER_ERRORS: Final = (500, 502, 503)


@dataclass(frozen=True)
class ProviderRates:
    p_5xx: float = 0.0
    p_429: float = 0.0
    p_slow: float = 0.0
    slow_ms: float = 30000.0
    retry_after: int = 1


@dataclass(frozen=True)
class FaultSpec:
    seed: int = 0
    control_5xx: float = 0.0
    control_429: float = 0.0
    control_hang_after_apply: float = 0.0
    control_retry_after: int = 1
    control_hang_s: float = 120.0
    provider: ProviderRates = field(default_factory=ProviderRates)
    per_provider: dict[str, ProviderRates] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | dict[str, Any]) -> FaultSpec:
        return parse_fault_spec(text)

    def rates_for(self, provider: str) -> ProviderRates:
        return self.per_provider.get(provider, self.provider)

    def to_string(self) -> str:
        parts = [f"seed={self.seed}"]
        for key, value in (("5xx", self.control_5xx), ("429", self.control_429),
                           ("hang_after_apply", self.control_hang_after_apply)):
            if value:
                parts.append(f"control.{key}={value:g}")
        parts.append(f"control.retry_after={self.control_retry_after}")
        parts.append(f"control.hang_s={self.control_hang_s:g}")
        for scope, rates in (("provider", self.provider), *sorted(self.per_provider.items())):
            parts += [f"{scope}.5xx={rates.p_5xx:g}", f"{scope}.429={rates.p_429:g}",
                      f"{scope}.slow={rates.p_slow:g}", f"{scope}.slow_ms={rates.slow_ms:g}",
                      f"{scope}.retry_after={rates.retry_after}"]
        return ",".join(parts)


_PROVIDER_KEYS: Final = {"5xx": "p_5xx", "429": "p_429", "slow": "p_slow", "slow_ms": "slow_ms",
                         "retry_after": "retry_after"}
_CONTROL_KEYS: Final = {"5xx": "control_5xx", "429": "control_429", "hang_after_apply": "control_hang_after_apply",
                        "retry_after": "control_retry_after", "hang_s": "control_hang_s"}
_PROBABILITIES: Final = {"5xx", "429", "slow", "hang_after_apply"}


def _number(key: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"fault spec: {key} needs a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"fault spec: {key} must be a non-negative number, got {raw!r}")
    return value


def _items(text: str | dict[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(text, dict):
        flat: list[tuple[str, Any]] = []
        for key, value in text.items():
            if isinstance(value, dict):
                flat += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                flat.append((str(key), value))
        return flat
    stripped = text.strip()
    if stripped.startswith("{"):
        parsed = jsonbody.loads(stripped)
        if not isinstance(parsed, dict):
            raise ValueError("fault spec: JSON form must be an object")
        return _items(parsed)
    pairs: list[tuple[str, Any]] = []
    for item in stripped.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"fault spec: {item.strip()!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


def parse_fault_spec(text: str | dict[str, Any]) -> FaultSpec:
    """Parse the grammar above; ValueError names the bad item."""
    spec = FaultSpec()
    per_provider: dict[str, dict[str, float]] = {}
    base_provider: dict[str, float] = {}
    for key, raw in _items(text):
        if key == "seed":
            value = _number(key, raw)
            if not value.is_integer():
                raise ValueError(f"fault spec: seed must be an integer, got {raw!r}")
            spec = replace(spec, seed=int(value))
            continue
        scope, _, name = key.rpartition(".")
        if not scope:
            raise ValueError(f"fault spec: unknown key {key!r} (see the grammar in cftwin.faults)")
        value = _number(key, raw)
        if name in _PROBABILITIES and value > 1:
            raise ValueError(f"fault spec: {key} is a probability (0..1), got {raw!r}")
        if scope == "control":
            if name not in _CONTROL_KEYS:
                raise ValueError(f"fault spec: unknown key {key!r}; control keys: {sorted(_CONTROL_KEYS)}")
            changes: dict[str, Any] = {_CONTROL_KEYS[name]: math.ceil(value) if name == "retry_after" else value}
            spec = replace(spec, **changes)
        else:
            if name not in _PROVIDER_KEYS:
                raise ValueError(f"fault spec: unknown key {key!r}; provider keys: {sorted(_PROVIDER_KEYS)}")
            target = base_provider if scope == "provider" else per_provider.setdefault(scope, {})
            target[_PROVIDER_KEYS[name]] = value
    if spec.control_5xx + spec.control_429 + spec.control_hang_after_apply > 1:
        raise ValueError("fault spec: control rates add up to more than 1")

    def rates(values: dict[str, float], base: ProviderRates) -> ProviderRates:
        changes: dict[str, Any] = {k: (math.ceil(v) if k == "retry_after" else v) for k, v in values.items()}
        merged = replace(base, **changes)
        if merged.p_5xx + merged.p_429 + merged.p_slow > 1:
            raise ValueError("fault spec: provider rates add up to more than 1")
        return merged

    provider = rates(base_provider, ProviderRates())
    return replace(
        spec,
        provider=provider,
        per_provider={slug: rates(values, provider) for slug, values in per_provider.items()},
    )


@dataclass(frozen=True)
class ControlFault:
    kind: Literal["none", "error", "rate_limited", "hang_after_apply"] = "none"
    status: int = 200
    retry_after: int = 0
    hang_s: float = 0.0

    @property
    def is_none(self) -> bool:
        return self.kind == "none"


@dataclass(frozen=True)
class ProviderFault:
    kind: Literal["none", "error", "slow"] = "none"
    status: int = 200
    delay_ms: float = 0.0
    retry_after: int = 0

    @property
    def is_none(self) -> bool:
        return self.kind == "none"


_NO_PROVIDER_FAULT: Final = ProviderFault()


class FaultInjector:
    """Decides, per request, which fault (if any) to inject. Thread-safe; deterministic per seed."""

    def __init__(self, spec: FaultSpec | str | None = None) -> None:
        self._lock = threading.Lock()
        self.spec = FaultSpec()
        self._rng = random.Random(0)
        self.set_spec(spec if spec is not None else FaultSpec())

    def set_spec(self, spec: FaultSpec | str) -> None:
        """Replace the spec and restart the random sequence from its seed."""
        parsed = parse_fault_spec(spec) if isinstance(spec, str) else spec
        with self._lock:
            self.spec = parsed
            self._rng = random.Random(parsed.seed)

    def _draw(self, *rates: float) -> tuple[int | None, int]:
        """Which of ``rates`` (probabilities, in order) one seeded draw falls in (None: none of them), and
        the 5xx status to use. No rate at all draws nothing, so a fault-free twin leaves the sequence alone."""
        if not any(rates):
            return None, 500
        with self._lock:
            draw = self._rng.random()
            status = self._rng.choice(_SERVER_ERRORS)
        for index, rate in enumerate(rates):
            if draw < rate:
                return index, status
            draw -= rate
        return None, status

    # control_decision and provider_decision are alike in shape but map the draw to different faults.
    def control_decision(self, method: str, path: str) -> ControlFault:
        spec = self.spec
        which, status = self._draw(spec.control_5xx, spec.control_429, spec.control_hang_after_apply)
        if which == 0:
            return ControlFault("error", status=status)
        if which == 1:
            return ControlFault("rate_limited", status=429, retry_after=spec.control_retry_after)
        if which == 2:
            return ControlFault("hang_after_apply", hang_s=spec.control_hang_s)
        return ControlFault()

    def provider_decision(self, provider: str) -> ProviderFault:
        rates = self.spec.rates_for(provider)
        if not (rates.p_5xx or rates.p_429 or rates.p_slow):
            return _NO_PROVIDER_FAULT  # what _draw would decide, without making a fault per request
        which, status = self._draw(rates.p_5xx, rates.p_429, rates.p_slow)
        if which == 0:
            return ProviderFault("error", status=status)
        if which == 1:
            return ProviderFault("error", status=429, retry_after=rates.retry_after)
        if which == 2:
            return ProviderFault("slow", delay_ms=rates.slow_ms)
        return ProviderFault()
