"""Notebook 03's record: a step's probes and checks (``EndpointChecks``), saved after every step in the run
folder's ``03_probes.json``, which notebook 04 reads the log ids from (``load_probe_log_ids``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aigw.evidence import Check
from aigw.evidence.marks import status_symbol
from aigw.gateway import ProbeResult
from aigw.session import Session
from aigw.steps import markdown_table

__all__ = [
    "PROBES_FILE",
    "EndpointChecks",
    "SavedProbes",
    "endpoint_checks_table",
    "load_probe_log_ids",
    "save_step",
    "saved_probes",
    "saved_step",
]

#: Where the probes' results go in the run folder (notebook 04 reads the log ids from it).
PROBES_FILE: Final = "03_probes.json"


def endpoint_checks_table(checks: Sequence[Check]) -> str:
    return markdown_table(["", "criterion", "check", "detail"],
                          [(status_symbol(c.status), c.criterion if c.criterion is not None else "—", c.check, c.detail)
                           for c in checks])


@dataclass
class EndpointChecks:
    """The probes of one step and what they prove."""

    title: str
    probes: list[ProbeResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        parts = [f"**{self.title}**", endpoint_checks_table(self.checks)]
        if self.probes:
            rows = [(p.check, f"{p.provider}/{p.model}", p.status, p.outcome,
                     p.gateway_error_code if p.gateway_error_code is not None else p.provider_error_type,
                     f"{p.latency_ms:.0f}", p.cache_status, p.log_id, p.excerpt[:60]) for p in self.probes]
            parts.append(markdown_table(
                ["probe", "model", "status", "outcome", "error", "ms", "cache", "cf-aig-log-id", "answer"], rows))
        parts.extend(f"_{note}_" for note in self.notes)
        return "\n\n".join(parts)


def save_step(session: Session, step: str, data: Any) -> None:
    """Merge one step's results into the run folder's probe record (notebook 04 reads the log ids from it).

    Written after every step, so a notebook that stops at a failed check keeps what it saw.
    """
    path = session.run_dir / PROBES_FILE
    payload: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except ValueError:
            loaded = None
        if isinstance(loaded, dict) and loaded.get("run_id") == session.run_id:
            payload = loaded
    payload["run_id"] = session.run_id
    payload.setdefault("steps", {})[step] = data
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True))
    partial.replace(path)


def saved_step(session: Session, step: str, result: EndpointChecks) -> EndpointChecks:
    save_step(session, step, [p.as_dict() for p in result.probes])
    return result


# --- the record for notebook 04 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedProbes:
    """What the run folder holds of notebook 03's probes."""

    path: Path
    probes: int
    log_ids: tuple[str, ...]
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        return (f"**{self.probes}** probe results ({len(self.log_ids)} with a `cf-aig-log-id`) are in "
                f"`{self.path.name}` in the run folder; notebook 04 looks for them in the logs.")


def saved_probes(session: Session) -> SavedProbes:
    """The probe results this run saved (each step saves its own as it finishes)."""
    path = session.run_dir / PROBES_FILE
    log_ids = load_probe_log_ids(session.run_dir, session.run_id) or []
    count = 0
    if path.is_file():
        steps = json.loads(path.read_text()).get("steps", {})
        count = sum(len(v) for v in steps.values() if isinstance(v, list))
    return SavedProbes(path, count, tuple(log_ids))


def load_probe_log_ids(run_dir: Path, run_id: str | None = None) -> list[str] | None:
    """The ``cf-aig-log-id`` of every probe notebook 03 saved in ``run_dir`` (None when it saved none,
    or saved them for another run)."""
    path = Path(run_dir) / PROBES_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except ValueError:
        return None
    if not isinstance(payload, Mapping) or (run_id is not None and payload.get("run_id") != run_id):
        return None
    steps = payload.get("steps")
    if not isinstance(steps, Mapping):
        return None
    return [str(p["log_id"]) for probes in steps.values() if isinstance(probes, list)
            for p in probes if isinstance(p, Mapping) and p.get("log_id")]
