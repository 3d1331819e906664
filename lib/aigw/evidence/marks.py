"""The one status mark: a symbol for each status of a check or a criterion, and the symbol with its word."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["SYMBOLS", "status_mark", "status_symbol"]

SYMBOLS: Final[Mapping[str, str]] = {"pass": "✅", "fail": "❌", "skip": "⏭️", "incomplete": "⚠️", "not run": "⬜"}


def status_symbol(status: str) -> str:
    """``✅`` for ``pass`` (a check's or a criterion's status); "" for a status it does not know."""
    return SYMBOLS.get(status, "")


def status_mark(status: str) -> str:
    """A status for people: the symbol and the word (the word still reads where no emoji font is)."""
    symbol = status_symbol(status)
    return f"{symbol} {status}" if symbol else status
