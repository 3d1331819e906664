"""The secret values evidence must never show: a per-process registry, and redaction of nested values.

``open_session`` registers its settings' secrets here (``use_secrets``); ``aigw.evidence`` reads them
(``configured_secrets``) before it records or seals anything. Neither imports the other: both import this.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aigw.config import Secret, redact
from aigw.secrets_scan import secrets_from_environ

if TYPE_CHECKING:
    from aigw.config import Settings

__all__ = ["configured_secrets", "redact_value", "use_secrets"]

# A kernel runs one notebook of one session: the registry lives as long as the process, like the settings.
_registered: dict[str, Secret] = {}


def use_secrets(secrets: Iterable[Secret]) -> None:
    """Make these values part of what ``evidence.record`` redacts (``open_session`` registers the settings')."""
    for secret in secrets:
        _registered[secret.reveal()] = secret


def configured_secrets(settings: Settings | None = None) -> list[Secret]:
    """Every secret value known here: registered ones, the settings', and the environment's."""
    found: dict[str, Secret] = dict(_registered)
    for secret in [*(settings.secrets() if settings else ()), *secrets_from_environ(os.environ)]:
        found.setdefault(secret.reveal(), secret)
    return list(found.values())


def redact_value(value: Any, secrets: Sequence[Secret]) -> Any:
    """``value`` (strings, mappings, lists, tuples, ``Secret``) with every secret value replaced by ``***``."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    if isinstance(value, Secret):
        return "***"
    return value
