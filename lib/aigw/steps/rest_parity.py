"""Notebook 03's REST API step: each model through ``/client/v4/accounts/{a}/ai/v1/chat/completions`` beside its
compat probe, with cost and payer (BYOK or Unified Billing) from the request's log. Never a criterion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aigw.errors import AigwError, NotFoundError
from aigw.evidence import PARITY_CHECK, Check
from aigw.gateway import ProbeResult, rest_model
from aigw.session import Session
from aigw.steps import markdown_table
from aigw.steps.probe_plan import PROMPT, PlannedProbe, ProbePlan, attempts_note, probe_client
from aigw.steps.probe_record import EndpointChecks, endpoint_checks_table, save_step

__all__ = ["REST_LOG_WAITS_S", "PaidBy", "RestParity", "RestRow", "RestSent", "send_rest", "verify_rest"]

#: How ``verify_rest`` waits for a REST request's log (it reaches the logs API seconds later, cloudflare/ai#255):
#: soon, then every quarter second, 15 s in all as before. That costs at most 62 reads of Cloudflare's 1,200 per
#: 5 minutes, and finds a log at most 0.25 s after it appears (every 0.5 s found it up to 0.5 s late, about 0.3 s
#: in the twin's runs; waits of 1, 2, 4, 8 s up to 4 s late).
REST_LOG_WAITS_S: Final = (0.1, 0.2, 0.2, *(0.25,) * 58)


PaidBy = Literal["byok", "unified billing", "unknown"]


@dataclass(frozen=True)
class RestRow:
    """One model through the REST API, beside its compat probe; cost and payer from the request's log."""

    model: str  # the REST API's author/model
    compat: str  # the compat probe's status ("-" when it was not sent)
    probe: ProbeResult | None  # None: not sent (probe budget)
    cost_usd: float | None = None
    paid_by: PaidBy = "unknown"
    log_note: str = ""


@dataclass
class RestParity:
    """``verify_rest``: the rows, and the ``REST API parity`` notes (criterion None: never the verdict)."""

    rows: list[RestRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def probes(self) -> list[ProbeResult]:
        return [r.probe for r in self.rows if r.probe is not None]

    def _repr_markdown_(self) -> str:
        rows = []
        for row in self.rows:
            probe = row.probe
            if probe is None:
                rows.append((row.model, row.compat, "not sent", "-", "-", "-", "-"))
                continue
            code = f" code {probe.gateway_error_code}" if probe.gateway_error_code is not None else ""
            tokens = (f"{probe.tokens_in} in / {probe.tokens_out} out" if probe.tokens_in is not None
                      or probe.tokens_out is not None else "-")
            cost = f"${row.cost_usd:.6f}" if row.cost_usd is not None else "unknown"
            rows.append((row.model, row.compat, f"{probe.status} {probe.outcome}{code}", tokens, cost,
                         probe.log_id or "-", row.paid_by))
        table = markdown_table(["model (REST)", "compat", "REST", "tokens", "cost (log)", "cf-aig-log-id", "paid by"],
                               rows)
        return ("**REST API parity** (`/ai/v1/chat/completions`, beside compat; not a criterion)\n\n"
                + endpoint_checks_table(self.checks) + "\n\n" + table)


def _compat_status(compat: EndpointChecks | None, provider: str, model: str) -> str:
    if compat is None:
        return "-"
    probe = next((p for p in compat.probes if p.provider == provider and p.model == model), None)
    return f"{probe.status} {probe.outcome}" if probe is not None else "not sent"


def _paid_by(session: Session, log_id: str) -> PaidBy:
    """From the log's ``wholesale`` (Unified Billing), a filter key of the logs API: the log detail does not show
    it. ASSUMPTION: a request that sent no provider key and was not wholesale was paid by the gateway's stored key
    (BYOK); ``wholesale`` is Unified Billing (the name third parties use for its credits)."""
    gateway_id = session.settings.gateway_id
    answers: tuple[tuple[bool, PaidBy], ...] = ((True, "unified billing"), (False, "byok"))
    for wholesale, paid in answers:
        filters: list[dict[str, Any]] = [{"key": "id", "operator": "eq", "value": [log_id]},
                   {"key": "wholesale", "operator": "eq", "value": [wholesale]}]
        if session.client.list_logs(gateway_id, filters=filters, per_page=5).logs:
            return paid
    return "unknown"


def _log_facts(session: Session, log_id: str, *, wait: bool = True,
               sleep: Any = time.sleep) -> tuple[float | None, PaidBy, str]:
    """``(cost, paid by, note)`` from the request's log, waiting ``REST_LOG_WAITS_S`` for it to appear (``wait``
    False: one look)."""
    waits = [0.0, *REST_LOG_WAITS_S] if wait else [0.0]
    for attempt, pause in enumerate(waits):
        if pause:
            sleep(pause)
        try:
            log = session.client.get_log(session.settings.gateway_id, log_id)
        except NotFoundError:
            if attempt == len(waits) - 1:
                return None, "unknown", f"log not listed after {sum(waits):g} s of waiting"
            continue
        except AigwError as exc:
            return None, "unknown", f"log not read: {exc}"
        try:
            paid = _paid_by(session, log_id)
        except AigwError as exc:
            return log.cost, "unknown", f"payer not read: {exc}"
        return log.cost, paid, ""
    return None, "unknown", "log not read"


@dataclass(frozen=True)
class RestSent:
    """The REST API probes as sent (``send_rest``), before their logs are read (``verify_rest``)."""

    sent: tuple[tuple[PlannedProbe, ProbeResult | None], ...]  # None: not sent (probe budget)

    @property
    def probes(self) -> list[ProbeResult]:
        return [p for _, p in self.sent if p is not None]

    def _repr_markdown_(self) -> str:
        return (f"Sent **{len(self.probes)}** REST API probe(s) of {len(self.sent)}; their logs (cost, payer) are "
                "read in the REST API cell below, once the logs API lists them.")


def send_rest(session: Session, plan: ProbePlan) -> RestSent:
    """Send each model through the REST API (what fits the budget), without waiting for the logs.

    Notebook 03 sends these before its cache and overhead steps, so that by ``verify_rest`` the logs have had those
    seconds to reach the logs API (Cloudflare lists a log seconds after its request): the wait overlaps work.
    """
    sent: list[tuple[PlannedProbe, ProbeResult | None]] = []
    with probe_client(session, plan) as prober:
        for planned in plan.find("rest"):
            probe = (prober.probe_rest(planned.provider, planned.model, PROMPT, max_tokens=plan.max_tokens)
                     if planned.fits else None)
            sent.append((planned, probe))
    result = RestSent(tuple(sent))
    save_step(session, "rest", [p.as_dict() for p in result.probes])
    return result


def verify_rest(session: Session, plan: ProbePlan, compat: EndpointChecks | None = None, *,
                sent: RestSent | None = None) -> RestParity:
    """Each model through the REST API (``/ai/v1/chat/completions``, ``cf-aig-gateway-id`` our gateway), beside its
    compat probe: status, tokens, cost and log id, and whether BYOK or Unified Billing paid (from the log).

    The checks are ``REST API parity`` notes: shown in their own SUMMARY.md row, never the verdict (the contract
    asks compat, criterion 3). A REST request the gateway's stored key did not pay cost Unified Billing credits.
    """
    result = RestParity()
    # Every probe is sent before any log is waited for (by ``send_rest``, earlier in the notebook, or here): their
    # logs travel to the logs API together, so the run waits out Cloudflare's log delay once, not once per model.
    if sent is None:
        sent = send_rest(session, plan)
    # Once a log never appeared (e.g. an account whose logs live elsewhere), the next models look once, not again
    # for the whole wait.
    wait_for_logs = True
    for planned, probe in sent.sent:
        shown = rest_model(planned.provider, planned.model)
        name = f"{PARITY_CHECK}: {shown} answers like compat"
        subject = f"{planned.provider}/{planned.model}"
        compat_status = _compat_status(compat, planned.provider, planned.model)
        if probe is None:
            result.rows.append(RestRow(shown, compat_status, None))
            result.checks.append(Check(None, name, "skip", f"not sent: its worst case ${planned.cost_usd:.5f} "
                                       "would pass probe_budget_usd", subject=subject))
            continue
        cost: float | None
        paid: PaidBy
        if not probe.ok:
            cost, paid, note = None, "unknown", "no completion, nothing to pay for"
        elif probe.log_id:
            cost, paid, note = _log_facts(session, probe.log_id, wait=wait_for_logs)
            wait_for_logs = wait_for_logs and not note.startswith("log not listed")
        else:
            cost, paid, note = None, "unknown", "no cf-aig-log-id"
        row = RestRow(shown, compat_status, probe, cost, paid, note)
        result.rows.append(row)
        shown_cost = f"${cost:.6f}" if cost is not None else "cost unknown"
        facts = (f"tokens {probe.tokens_in}/{probe.tokens_out}, {shown_cost}, paid by {paid}, log "
                 f"{probe.log_id or 'none'}" + (f" ({note})" if note else ""))
        if probe.ok:
            result.checks.append(Check(None, name, "pass", f"{probe.status} (compat {compat_status}); {facts}",
                                       subject=subject))
        else:
            code = f" code {probe.gateway_error_code}" if probe.gateway_error_code is not None else ""
            hint = (" (no Unified Billing credits and no BYOK key for the provider on the gateway)"
                    if probe.status == 402 else "")
            result.checks.append(Check(None, name, "fail", f"{probe.status} {probe.outcome}{code}{hint}"
                                       f"{attempts_note(probe)}: {probe.excerpt} (compat {compat_status})",
                                       subject=subject))
    save_step(session, "rest", [p.as_dict() for p in result.probes])
    return result
