"""The twin's own error for bad settings (a seed file, a fault spec, a bind address).

The twin shares no code with the runbook it checks, so it has its own: ``cftwin serve`` prints it as one
line, and whoever embeds the twin (the runbook's rehearsal code) translates it into its own errors.
"""

from __future__ import annotations

__all__ = ["TwinConfigError"]


class TwinConfigError(Exception):
    """A setting of the twin is missing or invalid. ``str(e)`` is one line: what, then how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.message}. {self.hint}" if self.hint else self.message
        return " ".join(text.split())
