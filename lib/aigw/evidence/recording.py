"""Recording checks in a notebook: ``record`` (one), ``record_all`` (a step's), ``raise_failures`` (the last
cell), ``record_retries`` (the ``retries`` note). Each check is a display_data output of mimetype
``application/vnd.aigw.check+json`` plus a line and Markdown for people; configured secrets are redacted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from aigw.config import redact
from aigw.errors import AigwError
from aigw.evidence.checks import (
    CHECK_MIMETYPE,
    STATUSES,
    Check,
    JSONData,
    Status,
    counts_for_verdict,
    failures_line,
    retries_sentence,
)
from aigw.evidence.criteria import CRITERIA
from aigw.redaction import configured_secrets, redact_value

__all__ = ["CheckFailed", "raise_failures", "record", "record_all", "record_retries"]


class CheckFailed(AigwError):
    """A recorded check failed: the cell stops here, with the check's line as the error."""


#: The latest result of every check ``record`` recorded in this process (a notebook's kernel), for
#: ``raise_failures``: a cell run again in JupyterLab replaces what it recorded before.
_recorded: dict[tuple[int | None, str, str | None], Check] = {}


def record(criterion: int | None, check: str, status: Status, detail: str = "", *,
           subject: str | None = None, data: JSONData | None = None) -> Check:
    """Record one check as a display_data output of the current cell; returns it.

    **Parameters:**
    * criterion - the contract's validation criterion (1-6) this check proves, or None for a note.
    * check - a short name, e.g. ``"gateway listed with the desired settings"``.
    * status - ``"pass"``, ``"fail"`` or ``"skip"``.
    * detail - one line for the reader; configured secret values are replaced by ``***``.
    * subject - what it is about, ``provider/model`` (criteria 3 and 4 need a passing one per provider).
    * data - figures behind it (JSON-able; its strings redacted too), kept as they are in ``evidence.json``.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of pass, fail, skip; got {status!r}")
    if criterion is not None and criterion not in CRITERIA:
        raise ValueError(f"criterion must be 1-6 or None; got {criterion!r}")
    secrets = configured_secrets()
    item = Check(criterion, redact(check, secrets), status, redact(" ".join(detail.split()), secrets),
                 subject=subject, data=redact_value(data, secrets) if data is not None else None)
    _display(item)
    _recorded.pop((item.criterion, item.check, item.subject), None)
    _recorded[(item.criterion, item.check, item.subject)] = item
    return item


def record_all(checks: Iterable[Check] | Any, *, raise_on_fail: bool = True) -> None:
    """Record every check of a step's result (anything with ``.checks``, or an iterable of ``Check``).

    With ``raise_on_fail`` a failed check stops the cell with ``CheckFailed`` naming it, after all of
    them were recorded, so the notebook (and ``aigw run``) fails where the evidence does.
    """
    items: Iterable[Check] = checks.checks if hasattr(checks, "checks") else checks
    recorded = [record(c.criterion, c.check, c.status, c.detail, subject=c.subject, data=c.data) for c in items]
    failed = [c for c in recorded if c.status == "fail"]
    # A failed parity note alone never stops a notebook; when another check fails, the line lists it too.
    if raise_on_fail and any(counts_for_verdict(c) for c in failed):
        raise CheckFailed(failures_line(failed))


def raise_failures() -> None:
    """The last cell of a notebook that runs every check before failing: ``CheckFailed`` listing, in one
    line, every failed check recorded in this kernel (``record_all(..., raise_on_fail=False)``); else nothing."""
    failed = [c for c in _recorded.values() if c.status == "fail"]
    if any(counts_for_verdict(c) for c in failed):
        raise CheckFailed(failures_line(failed))


def record_retries(source: Any) -> Check:
    """Record retry statistics as the ``retries`` note that ``seal_bundle`` collects (its ``data``).

    ``source``: a ``Session`` (its API client's stats plus its probers' data-plane stats, summed, with the
    data plane's also apart under ``data_plane``), anything with ``.stats.snapshot()`` or ``.snapshot()``,
    or a mapping.
    """
    probes = getattr(source, "probe_stats", None)
    stats: Any = source
    if hasattr(stats, "client"):
        stats = stats.client
    if hasattr(stats, "stats"):
        stats = stats.stats
    if hasattr(stats, "snapshot"):
        stats = stats.snapshot()
    totals = dict(stats)
    if probes is not None:
        data_plane = probes.snapshot()
        if data_plane["requests"]:
            by_reason: Counter[str] = Counter(totals.get("retries_by_reason", {}))
            by_reason.update(data_plane["retries_by_reason"])
            totals["requests"] = totals.get("requests", 0) + data_plane["requests"]
            totals["retries"] = totals.get("retries", 0) + data_plane["retries"]
            totals["retries_by_reason"] = dict(by_reason)
            totals["data_plane"] = data_plane
    # Normalised to JSON (a value JSON cannot hold becomes its text), as the notebook's output will hold it.
    data: JSONData = json.loads(json.dumps(totals, sort_keys=True, default=str))
    return record(None, "retries", "pass", retries_sentence(data) or "", data=data)


def _display(item: Check) -> None:
    bundle = {CHECK_MIMETYPE: item.payload(), "text/plain": item.line(), "text/markdown": item.markdown()}
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a runtime requirement
        print(item.line())
        return
    if InteractiveShell.initialized():
        display(bundle, raw=True)  # type: ignore[no-untyped-call]
    else:
        print(item.line())
