"""SUMMARY.md: what a reader sees first in a sealed bundle (status, why, the criteria with links to the cells
that show them, every check, the contract's approval checklist), and the one-line ``why`` of a verdict."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aigw.evidence.checks import PARITY_CHECK, Check, counts_for_verdict, failures_line, md_escape
from aigw.evidence.criteria import Criterion
from aigw.evidence.marks import status_mark

__all__ = ["APPROVAL_CHECKLIST", "CLOUDFLARE_ONLY_FIGURES", "REHEARSAL_FIGURE_NOTE", "shortened", "summary_markdown",
           "why"]

APPROVAL_CHECKLIST: Final = (
    "Immutable Assumptions understood and agreed",
    "Constraints acceptable (latency, API limits)",
    "Integration with Phase 4 features validated",
    "No conflicts with Phase 1/2/3 identified",
    "Validation criteria realistic and testable",
    "Ready to execute Stage 1",
)
#: Checks whose figure means something only on Cloudflare: on the twin it is what the twin was told to add.
CLOUDFLARE_ONLY_FIGURES: Final = frozenset({"gateway overhead within the contract's budget"})
REHEARSAL_FIGURE_NOTE: Final = "rehearsal: shows the measurement works, not Cloudflare's latency"
#: The bundle's manifest (written by ``sealing``; SUMMARY.md names it).
MANIFEST: Final = "manifest.json"


def target_words(evidence_doc: Mapping[str, Any]) -> str:
    """What the target means, as far as the recorded hosts show it (a label alone proves nothing)."""
    shown = evidence_doc.get("hosts_target")
    if evidence_doc["target"] == "twin":
        return " (local twin: emulated Cloudflare, nothing left the machine)" if shown in {"twin", "none", None} \
            else f" (but requests went to {shown} hosts)"
    if shown == "cloudflare":
        return " (real Cloudflare)"
    return f" (not Cloudflare's hosts: {shown}; see where the requests went)"


def shortened(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def why(status: str, criteria: Sequence[Criterion], checks: Sequence[Check], failure: Mapping[str, Any] | None,
         quarantined: Sequence[Mapping[str, Any]]) -> str:
    """One line: why a bundle is failed or incomplete ("" when it passed)."""
    if status == "failed":
        if quarantined:
            return f"a configured secret value was found in {', '.join(q['file'] for q in quarantined)} (deleted)"
        if failure:
            cell = f" cell {failure['cell']}" if failure.get("cell") is not None else ""
            return f"{failure['notebook']}{cell} failed: {failure['error']}"
        failed = [c for c in checks if c.status == "fail" and counts_for_verdict(c)]
        if failed:
            return failures_line(failed)
    if status in {"failed", "incomplete"}:
        return "; ".join(f"criterion {c.number} {c.status}: {c.reason}" for c in criteria if c.status != "pass")
    return ""


def status_line(doc: Mapping[str, Any]) -> str:
    status = doc["status"]
    if doc.get("production_evidence"):
        what = "production evidence: checked against real Cloudflare"
    else:
        what = "REHEARSAL on the local twin: not production evidence; run with --target cloudflare for that"
    meaning = {"passed": "every criterion passed", "rehearsal-passed": "every criterion passed",
               "incomplete": "a criterion was not run, was skipped or lacks a provider",
               "failed": "a notebook or a check failed"}.get(status, "")
    return f"**Status: {status.upper()}** ({meaning}) · {what}"


def hosts_markdown(evidence_doc: Mapping[str, Any]) -> str:
    from aigw.hosts import hosts_line

    text = md_escape(hosts_line(evidence_doc.get("hosts") or {}))
    if evidence_doc.get("allow_custom_endpoints"):
        text += (" — **custom endpoints allowed** (`--allow-custom-endpoints`): the hosts above, not the target "
                 "label, say where the requests went")
    return text


def _parity_rows(checks: Sequence[Check], mark: Mapping[str, str]) -> list[str]:
    """The ``PARITY_CHECK`` row under the criteria: shown, never a criterion (a dash in the number column)."""
    parity = [c for c in checks if not counts_for_verdict(c)]
    if not parity:
        return []
    status = ("fail" if any(c.status == "fail" for c in parity) else
              "incomplete" if any(c.status == "skip" for c in parity) else "pass")
    detail = "; ".join(f"{c.subject or c.check}: {c.status}" + (f" ({c.detail})" if c.status != "pass" else "")
                       for c in parity)
    links = ", ".join(f"[{c.where}]({c.notebook}.html#cell-{c.cell})" for c in
                      {c.where: c for c in parity if c.notebook is not None and c.cell is not None}.values()) or "—"
    return [f"| — | {PARITY_CHECK}: the REST API (`/ai/v1/chat/completions`) beside compat; not a criterion, never "
            f"the status | {mark[status]} — {md_escape(detail)} | {links} |"]


def summary_markdown(evidence_doc: Mapping[str, Any], criteria: Sequence[Criterion], checks: Sequence[Check],
                      quarantined: Sequence[Mapping[str, Any]]) -> str:
    mark = {status: status_mark(status) for status in ("pass", "fail", "incomplete", "not run")}
    rehearsal = not evidence_doc.get("production_evidence")
    parameters = evidence_doc.get("parameters") or {}
    out = [
        f"# Evidence — run `{evidence_doc['run_id']}`",
        "",
        status_line(evidence_doc),
        "",
    ]
    if evidence_doc.get("why"):
        failure = evidence_doc.get("failure") or {}
        where = (f" ([{failure['notebook']} cell {failure['cell']}]({failure['notebook']}.html#cell-{failure['cell']}))"
                 if failure.get("notebook") and failure.get("cell") is not None else "")
        out += [f"**Why:** {md_escape(evidence_doc['why'])}{where}", ""]
    out += [
        "* **Parameters:** " + (", ".join(f"`{k}` = `{json.dumps(v, default=str)}`" for k, v in parameters.items())
                                if parameters else "none given (every notebook's defaults)"),
        "* **Contract differences:**",
        *[f"  * {item}" for item in evidence_doc.get("contract_differences") or ()],
        f"* **Target:** {evidence_doc['target']}" + target_words(evidence_doc),
        f"* **Requests went to:** {hosts_markdown(evidence_doc)}",
        f"* **Account:** `{evidence_doc.get('account_id') or '-'}` · "
        f"**Gateway:** `{evidence_doc.get('gateway_id') or '-'}`",
        f"* **Git commit:** `{evidence_doc.get('git_commit') or 'unknown'}`"
        + (" (with uncommitted changes)" if evidence_doc.get("git_dirty") else ""),
        f"* **Sealed:** {evidence_doc['sealed_at']} · files and hashes in `{MANIFEST}`; "
        "check with `aigw verify-evidence <this folder>`",
        "",
        "## Validation criteria (Stage 1 execution contract)",
        "",
        "| # | Criterion | Result | Shown in |",
        "|---|---|---|---|",
    ]
    for criterion in criteria:
        links = ", ".join(f"[{label}]({href})" for label, href in criterion.links()) or (
            "repository check (below)" if criterion.number == 6 and criterion.checks else "—")
        reason = f" — {md_escape(criterion.reason)}" if criterion.reason else ""
        out.append(f"| {criterion.number} | {criterion.title} | {mark[criterion.status]}{reason} | {links} |")
    out += _parity_rows(checks, mark)
    out += ["", "## Checks", ""]
    for check in checks:
        where = f" ([{check.where}]({check.notebook}.html#cell-{check.cell}))" if (
            check.notebook is not None and check.cell is not None) else ""
        marker = f" — **{REHEARSAL_FIGURE_NOTE}**" if rehearsal and check.check in CLOUDFLARE_ONLY_FIGURES else ""
        out.append(f"* {check.markdown()}{marker}{where}")
    if quarantined:
        out += ["", "## Quarantined files", "",
                "These files held a configured secret value and were deleted from the bundle:", ""]
        out += [f"* `{q['file']}`: {', '.join(q['findings'])}" for q in quarantined]
    notebooks = evidence_doc.get("notebooks") or []
    if notebooks:
        out += ["", "## Notebooks", ""]
        out += [f"* [{n['name']}]({n['html']}) — {n['status']}" if n.get("html") else f"* {n['name']} — {n['status']}"
                for n in notebooks]
    out += ["", "## Approval checklist (from the contract)", ""]
    out += [f"- [ ] {item}" for item in APPROVAL_CHECKLIST]
    return "\n".join(out) + "\n"
