"""The emulated providers by Cloudflare slug."""

from __future__ import annotations

from typing import Final

from cftwin.providers.anthropic import PROVIDER as ANTHROPIC
from cftwin.providers.engine import Provider
from cftwin.providers.google import PROVIDER as GOOGLE
from cftwin.providers.openai import PROVIDER as OPENAI

__all__ = ["PROVIDERS", "get_provider"]

PROVIDERS: Final[dict[str, Provider]] = {p.slug: p for p in (OPENAI, ANTHROPIC, GOOGLE)}


def get_provider(slug: str) -> Provider | None:
    return PROVIDERS.get(slug)
