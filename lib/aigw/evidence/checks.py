"""One recorded check (``Check``) and how it reads: a line for a log, Markdown for the notebook and SUMMARY.md.

A check carries ``detail`` (one line for a reader) and, when it has figures, ``data``: a JSON-able mapping
kept as it is in the notebook's output and in ``evidence.json`` (the ``retries`` note's statistics), so
that nothing is put into ``detail`` as JSON and parsed back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Union, get_args

from aigw.evidence.marks import status_symbol

__all__ = [
    "CHECK_MIMETYPE",
    "PARITY_CHECK",
    "STATUSES",
    "Check",
    "JSONData",
    "JSONValue",
    "Status",
    "counts_for_verdict",
    "failures_line",
    "md_escape",
    "retries_sentence",
    "utc_now",
]

CHECK_MIMETYPE: Final = "application/vnd.aigw.check+json"
Status = Literal["pass", "fail", "skip"]
STATUSES: Final = frozenset(get_args(Status))
#: Notes whose name starts so are shown beside the criteria (their own SUMMARY.md row) and never change the
#: verdict: the REST API probed beside the contract's compat endpoint (issue 13), which the contract does not ask.
PARITY_CHECK: Final = "REST API parity"

JSONValue = Union[str, int, float, bool, None, Sequence["JSONValue"], Mapping[str, "JSONValue"]]  # noqa: UP007
#: What ``Check.data`` holds: written as it is into the notebook's output and ``evidence.json``.
JSONData = Mapping[str, JSONValue]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Check:
    """One recorded check. ``notebook`` and ``cell`` are set when read back from a notebook."""

    criterion: int | None
    check: str
    status: Status
    detail: str = ""
    time: str = field(default_factory=utc_now)
    notebook: str | None = None
    cell: int | None = None
    #: The cell's execution count: what a reader sees as ``In [N]`` in the notebook and its HTML.
    prompt: int | None = None
    #: What the check is about, as ``provider/model`` (criteria 3 and 4 need one per provider), or None.
    subject: str | None = None
    #: Figures behind the check (JSON-able), e.g. the ``retries`` note's statistics; None when it has none.
    data: JSONData | None = field(default=None, hash=False)

    @property
    def where(self) -> str:
        """How a reader finds the cell: ``01_create_gateway In [11]`` (its index when it has no count)."""
        shown = f"In [{self.prompt}]" if self.prompt is not None else f"cell {self.cell}"
        return f"{self.notebook} {shown}"

    def payload(self) -> dict[str, Any]:
        """What the notebook's output and ``evidence.json`` keep (``data`` only when there is some, so that a
        check without figures reads as it always did)."""
        payload: dict[str, Any] = {"criterion": self.criterion, "check": self.check, "status": self.status,
                                   "detail": self.detail, "time": self.time, "subject": self.subject}
        if self.data is not None:
            payload["data"] = self.data
        return payload

    def line(self) -> str:
        where = f"criterion {self.criterion}" if self.criterion is not None else "note"
        detail = f": {self.detail}" if self.detail else ""
        return f"{status_symbol(self.status)} {self.status.upper()} [{where}] {self.check}{detail}"

    def markdown(self) -> str:
        where = f"criterion {self.criterion}" if self.criterion is not None else "note"
        shown = (retries_sentence(self.data) if self.check == "retries" else None) or self.detail
        detail = f" — {md_escape(shown)}" if shown else ""
        return f"{status_symbol(self.status)} **{self.status.upper()}** · {where} · {md_escape(self.check)}{detail}"


def counts_for_verdict(check: Check) -> bool:
    """False for a parity note (``PARITY_CHECK``): shown, even when it failed, but never the run's verdict."""
    return not (check.criterion is None and check.check.startswith(PARITY_CHECK))


def retries_sentence(stats: JSONData | None) -> str | None:
    """The ``retries`` note's statistics as a sentence for a reader; None when ``stats`` are not such."""
    if stats is None or not isinstance(stats.get("requests"), int):
        return None

    def counted(total: Any, by: Any) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by.items())) if isinstance(by, Mapping) and by else ""
        return f"{total} ({parts})" if parts else f"{total}"

    data_plane = stats.get("data_plane")
    to_gateway = data_plane.get("requests", 0) if isinstance(data_plane, Mapping) else 0
    text = f"{stats['requests']} requests" + (f" ({to_gateway} through the gateway)" if to_gateway else "")
    text += f", {counted(stats.get('retries', 0), stats.get('retries_by_reason'))} retried"
    waits, wait_s = stats.get("budget_waits"), stats.get("budget_wait_s", 0)
    if waits:
        seconds = float(wait_s) if isinstance(wait_s, int | float | str) else 0.0
        text += f", {waits} waits for the API budget ({seconds:.1f} s)"
    if stats.get("recoveries"):
        text += f", {counted(stats['recoveries'], stats.get('recoveries_by_outcome'))} checked before a retry"
    return text


_URL: Final = re.compile(r"https?://[^\s`]+")
#: A dollar sign that MathJax (JupyterLab) and nbconvert's math plugin never read as TeX (see aigw.steps.DOLLAR).
_DOLLAR: Final = "<span>&#36;</span>"


def md_escape(text: str) -> str:
    """Markdown-safe text; URLs become code spans (not links: the evidence fetches and links nothing);
    ``$`` is written so that MathJax and nbconvert's math plugin never read an amount as TeX."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        parts.append(re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text[last:match.start()]).replace("$", _DOLLAR))
        parts.append(f"`{match.group(0)}`")
        last = match.end()
    parts.append(re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text[last:]).replace("$", _DOLLAR))
    return "".join(parts).replace("\n", " ")


def failures_line(failed: Sequence[Check]) -> str:
    """The failed checks in one line: what ``CheckFailed`` says and a failed bundle's ``why``."""
    def one(check: Check) -> str:
        return check.check + (f": {check.detail}" if check.detail else "")

    def which(check: Check) -> str:
        return f"criterion {check.criterion}" if check.criterion is not None else "note"

    if len(failed) == 1:
        first = failed[0]
        return f"{which(first) + ' check' if first.criterion is not None else 'check'} failed: {one(first)}"
    return f"{len(failed)} checks failed: " + "; ".join(
        f"({n}) {which(c)}: {one(c)}" for n, c in enumerate(failed, 1))
