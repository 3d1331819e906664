"""The contract's six validation criteria and the verdict, from the evidence only.

A criterion passes only when every check it needs ran and passed (criteria 3 and 4: one per provider of the
contract); a skip leaves it ``incomplete``; a run is ``passed`` only on Cloudflare, ``rehearsal-passed`` on
the twin, else ``incomplete`` or ``failed`` (``summarize_criteria``, ``run_status``). Criterion 6 is read
from the repository (``check_setup_documented``); ``contract_differences`` lists where a run departs from
the contract's spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from aigw import config
from aigw.evidence.checks import Check, counts_for_verdict

__all__ = [
    "CONTRACT_GATEWAY_ID",
    "CONTRACT_MODELS",
    "CRITERIA",
    "REQUIRED_DOCS",
    "REQUIRED_PROVIDERS",
    "Criterion",
    "CriterionStatus",
    "RunStatus",
    "check_setup_documented",
    "contract_differences",
    "run_status",
    "summarize_criteria",
]

#: The six validation criteria of the Stage 1 contract, by number.
CRITERIA: Final[Mapping[int, str]] = {
    1: "Gateway created and listed by the API",
    2: "Three provider keys stored and active",
    3: "Unified endpoint responds",
    4: "Provider endpoints respond (200 or a valid provider error, never 401/403)",
    5: "Logs accessible with timestamps and models",
    6: "Setup documented and .dev.vars.example complete",
}
REQUIRED_DOCS: Final = ("docs/PHASE4_GATEWAY_SETUP.md", "docs/PHASE4_API_ENDPOINTS.md", "docs/PHASE4_KEY_ROTATION.md")
#: A document shorter than this (in non-blank characters) is a stub, not documentation.
_MIN_DOC_CHARS: Final = 400

CriterionStatus = Literal["pass", "fail", "incomplete", "not run"]
#: ``rehearsal-passed`` on the twin, ``passed`` only on Cloudflare: a rehearsal is never production evidence.
RunStatus = Literal["passed", "rehearsal-passed", "incomplete", "failed"]
#: The contract asks criteria 3 and 4 of each of its three providers: a criterion of this map passes only
#: when each provider has a passing check of it (its ``subject`` is ``provider/model``), none skipped.
REQUIRED_PROVIDERS: Final[Mapping[int, tuple[str, ...]]] = {3: config.PROVIDERS, 4: config.PROVIDERS}
#: The models as the contract writes them (its compat examples); SUMMARY.md shows what the run used instead.
CONTRACT_MODELS: Final = ("google/gemini-2.5-flash", "openai/gpt-4", "anthropic/claude-3-sonnet")
CONTRACT_GATEWAY_ID: Final = "github-ai-agent"


@dataclass(frozen=True)
class Criterion:
    """One of the contract's six validation criteria, as the checks of a run show it."""

    number: int
    title: str
    status: CriterionStatus
    checks: tuple[Check, ...] = ()
    #: Why it is not ``pass``, in one line ("" when it passes).
    reason: str = ""

    def links(self) -> list[tuple[str, str]]:
        """``(label, relative link)`` to each cell of the HTML exports that shows this criterion."""
        seen: dict[str, str] = {}
        for check in self.checks:
            if check.notebook is not None and check.cell is not None:
                seen.setdefault(check.where, f"{check.notebook}.html#cell-{check.cell}")
        return list(seen.items())


def _skip_reason(detail: str) -> str:
    return "probe budget" if "probe_budget_usd" in detail else (detail or "no reason given")


def _judge(mine: tuple[Check, ...], required: Sequence[str]) -> tuple[CriterionStatus, str]:
    failed = [c for c in mine if c.status == "fail"]
    if failed:
        return "fail", "failed: " + "; ".join(f"{c.check} ({c.detail})" if c.detail else c.check for c in failed)
    if not mine:
        return "not run", "no check of it ran: its notebook was not run"
    skipped = [c for c in mine if c.status == "skip"]
    covered = {(c.subject or "").partition("/")[0] for c in mine if c.status == "pass"}
    missing = [p for p in required if p not in covered and not any(
        (c.subject or "").partition("/")[0] == p for c in skipped)]
    by_reason: dict[str, list[str]] = {}
    for check in skipped:
        by_reason.setdefault(_skip_reason(check.detail), []).append(check.subject or check.check)
    reasons = [f"skipped: {why} ({', '.join(what)})" for why, what in by_reason.items()]
    if missing:
        reasons.append(f"not checked: {', '.join(missing)} (the contract asks it of each of "
                       f"{', '.join(required)}; add the provider to models)")
    return ("incomplete", "; ".join(reasons)) if reasons else ("pass", "")


def summarize_criteria(checks: Sequence[Check],
                       required: Mapping[int, Sequence[str]] = REQUIRED_PROVIDERS) -> list[Criterion]:
    """Each criterion, from the evidence only: ``fail`` if a check of it failed; ``not run`` when no check
    speaks to it; ``incomplete`` if one was skipped (for the probe budget or any reason) or a provider in
    ``required`` has no passing check; ``pass`` only when every check it needs ran and passed."""
    summary: list[Criterion] = []
    for number, title in CRITERIA.items():
        mine = tuple(c for c in checks if c.criterion == number)
        status, reason = _judge(mine, required.get(number, ()))
        summary.append(Criterion(number, title, status, mine, reason))
    return summary


def run_status(criteria: Sequence[Criterion], checks: Sequence[Check], *, target: str,
               notebook_failed: bool = False, leaked: bool = False) -> RunStatus:
    """``failed`` (a notebook failed, a check failed, a secret was found), else ``incomplete`` (a criterion
    not run or incomplete), else ``passed`` on Cloudflare and ``rehearsal-passed`` on the twin."""
    if notebook_failed or leaked or any(c.status == "fail" and counts_for_verdict(c) for c in checks) or any(
            c.status == "fail" for c in criteria):
        return "failed"
    if any(c.status != "pass" for c in criteria):
        return "incomplete"
    return "passed" if target == "cloudflare" else "rehearsal-passed"


def _config_variables() -> list[str]:
    """Every variable ``aigw.config`` reads."""
    return list(config.VARIABLES)


def check_setup_documented(root: Path) -> list[Check]:
    """Criterion 6 from the repository at ``root``: the three PHASE4 documents exist and are not stubs,
    and ``.dev.vars.example`` names every variable of ``aigw.config``."""
    checks: list[Check] = []
    for name in REQUIRED_DOCS:
        path = root / name
        if not path.is_file():
            checks.append(Check(6, f"{name} exists", "fail", f"{name} is missing"))
            continue
        size = len("".join(path.read_text(encoding="utf-8", errors="replace").split()))
        ok = size >= _MIN_DOC_CHARS
        checks.append(Check(6, f"{name} exists and is not a stub", "pass" if ok else "fail",
                            f"{size} non-blank characters (at least {_MIN_DOC_CHARS} needed)"))
    example = root / ".dev.vars.example"
    if not example.is_file():
        checks.append(Check(6, ".dev.vars.example names every variable", "fail", ".dev.vars.example is missing"))
    else:
        text = example.read_text(encoding="utf-8", errors="replace")
        named = set(re.findall(r"^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=", text, flags=re.MULTILINE))
        missing = [v for v in _config_variables() if v not in named]
        checks.append(Check(6, ".dev.vars.example names every variable of aigw.config",
                            "fail" if missing else "pass",
                            f"missing: {', '.join(missing)}" if missing else f"{len(_config_variables())} variables"))
    return checks


def _probed_models(checks: Sequence[Check]) -> list[str]:
    return list(dict.fromkeys(c.subject for c in checks if c.criterion == 3 and c.subject))


def contract_differences(checks: Sequence[Check], gateway_id: str | None) -> list[str]:
    """Where this run departs from the contract's spelling (models, slugs, paths), one item each."""
    models = _probed_models(checks)
    items = [
        f"models: the contract names {', '.join(f'`{m}`' for m in CONTRACT_MODELS)}; this run probed "
        + (", ".join(f"`{m}`" for m in models) if models else "none (notebook 03 did not run)"),
        "provider slug: the contract's `google` is Cloudflare's `google-ai-studio` (compat model "
        "`google-ai-studio/...`, native path `google-ai-studio/v1beta/models/{model}:generateContent`)",
        "Anthropic's native path is `anthropic/v1/messages` (the contract writes `anthropic/messages`)",
    ]
    if gateway_id and gateway_id != CONTRACT_GATEWAY_ID:
        items.append(f"gateway id `{gateway_id}` (the contract's is `{CONTRACT_GATEWAY_ID}`)")
    items.append("all of them: docs/PHASE4_API_ENDPOINTS.md, \"Where the contract and Cloudflare differ\"")
    return items
