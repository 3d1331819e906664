"""Evidence: checks recorded in a notebook, read back, and sealed into a verifiable run folder.

A notebook records what it proved with ``record(criterion, check, status, detail)``: a display_data
output of mimetype ``application/vnd.aigw.check+json`` (plus a line for humans) that lives in the
executed notebook. ``read_checks`` reads them back with the index of the cell that holds them.

``seal_bundle`` turns a run folder into evidence: the executed notebooks, a self-contained HTML
export of each (every cell carries an ``id="cell-N"`` anchor; no script or style is fetched from the
network), ``evidence.json``, ``SUMMARY.md`` (the six criteria of the contract with links to the cells
that show them, then the contract's approval checklist) and ``manifest.json`` (the sha256 of every
file). ``verify_bundle`` re-checks a folder against its manifest.

One module per concern; this package re-exports the names other modules use:

* ``checks`` - ``Check`` (with its typed ``data``), its line and Markdown, ``PARITY_CHECK``
* ``marks`` - the one status mark (✅ / ❌ / ⏭️ / ⚠️ / ⬜)
* ``recording`` - ``record``, ``record_all``, ``raise_failures``, ``record_retries`` (in a notebook's kernel)
* ``reading`` - ``read_checks``, a notebook's status
* ``criteria`` - the contract's criteria, the verdict (``summarize_criteria``, ``run_status``), criterion 6
* ``html_export`` - the HTML export (an nbconvert template: ``templates/``)
* ``summary`` - SUMMARY.md and a verdict's one-line ``why``
* ``sealing`` - ``seal_bundle``, ``Bundle``, ``own_files``
* ``verifying`` - ``verify_evidence`` (signature, files, meaning), ``verify_bundle``

The registry of secret values to redact is ``aigw.redaction``'s; the checkout's root is ``aigw.paths``'.
"""

from __future__ import annotations

from aigw.evidence.checks import CHECK_MIMETYPE, PARITY_CHECK, Check, Status, counts_for_verdict
from aigw.evidence.criteria import (
    CRITERIA,
    REQUIRED_DOCS,
    Criterion,
    CriterionStatus,
    RunStatus,
    check_setup_documented,
    contract_differences,
    run_status,
    summarize_criteria,
)
from aigw.evidence.html_export import export_html, export_run_html, run_html_path
from aigw.evidence.marks import status_mark
from aigw.evidence.reading import read_checks
from aigw.evidence.recording import CheckFailed, raise_failures, record, record_all, record_retries
from aigw.evidence.sealing import MANIFEST, Bundle, own_files, seal_bundle
from aigw.evidence.verifying import Verified, verify_bundle, verify_evidence
from aigw.redaction import use_secrets

__all__ = [
    "CHECK_MIMETYPE",
    "CRITERIA",
    "MANIFEST",
    "PARITY_CHECK",
    "REQUIRED_DOCS",
    "Bundle",
    "Check",
    "CheckFailed",
    "Criterion",
    "CriterionStatus",
    "RunStatus",
    "Status",
    "Verified",
    "check_setup_documented",
    "contract_differences",
    "counts_for_verdict",
    "export_html",
    "export_run_html",
    "own_files",
    "raise_failures",
    "read_checks",
    "record",
    "record_all",
    "record_retries",
    "run_html_path",
    "run_status",
    "seal_bundle",
    "status_mark",
    "summarize_criteria",
    "use_secrets",
    "verify_bundle",
    "verify_evidence",
]
