"""Evidence: checks recorded in a notebook, read back, and sealed into a verifiable run folder.

A notebook records what it proved with ``record(criterion, check, status, detail)``: a display_data
output of mimetype ``application/vnd.aigw.check+json`` (plus a line for humans) that lives in the
executed notebook. ``read_checks`` reads them back with the index of the cell that holds them.

``seal_bundle`` turns a run folder into evidence: the executed notebooks, a self-contained HTML
export of each (every cell carries an ``id="cell-N"`` anchor; no script or style is fetched from the
network), ``evidence.json`` (run, target, ids, git commit, tool versions, redacted parameters, every
check, retries, status), ``SUMMARY.md`` (the six criteria of the contract with links to the cells
that show them, then the contract's approval checklist) and ``manifest.json`` (the sha256 of every
file). Before the manifest is written every file is scanned for every configured secret value; a
file that holds one is deleted (it never stays under outputs/), the bundle is marked failed and
``EvidenceError`` is raised. ``verify_bundle`` re-checks a folder against its manifest.

The verdict is never more than the evidence (``summarize_criteria``, ``run_status``): a criterion passes only
when every check it needs ran and passed (criteria 3 and 4: one per provider of the contract); a skip leaves it
``incomplete``; a bundle is ``passed`` only on Cloudflare, ``rehearsal-passed`` on the twin
(``production_evidence`` false), else ``incomplete`` or ``failed``, with a one-line ``why`` and the failed
notebook's ``failure``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from aigw import config
from aigw.config import Secret, redact
from aigw.errors import AigwError, EvidenceError
from aigw.secrets_scan import Finding, scan_paths, scan_text, secrets_from_environ

if TYPE_CHECKING:
    from aigw.config import Settings
    from aigw.signing import Ed25519PrivateKey

__all__ = [
    "CHECK_MIMETYPE",
    "CRITERIA",
    "PARITY_CHECK",
    "Check",
    "CheckFailed",
    "Criterion",
    "CriterionStatus",
    "RunStatus",
    "Status",
    "check_setup_documented",
    "configured_secrets",
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
    "summarize_criteria",
    "use_secrets",
    "verify_bundle",
    "verify_from_args",
]

CHECK_MIMETYPE: Final = "application/vnd.aigw.check+json"
Status = Literal["pass", "fail", "skip"]
_STATUSES: Final = frozenset(get_args(Status))

#: The six validation criteria of the Stage 1 contract, by number.
CRITERIA: Final[Mapping[int, str]] = {
    1: "Gateway created and listed by the API",
    2: "Three provider keys stored and active",
    3: "Unified endpoint responds",
    4: "Provider endpoints respond (200 or a valid provider error, never 401/403)",
    5: "Logs accessible with timestamps and models",
    6: "Setup documented and .dev.vars.example complete",
}
APPROVAL_CHECKLIST: Final = (
    "Immutable Assumptions understood and agreed",
    "Constraints acceptable (latency, API limits)",
    "Integration with Phase 4 features validated",
    "No conflicts with Phase 1/2/3 identified",
    "Validation criteria realistic and testable",
    "Ready to execute Stage 1",
)
REQUIRED_DOCS: Final = ("docs/PHASE4_GATEWAY_SETUP.md", "docs/PHASE4_API_ENDPOINTS.md", "docs/PHASE4_KEY_ROTATION.md")
#: A document shorter than this (in non-blank characters) is a stub, not documentation.
_MIN_DOC_CHARS: Final = 400
_MARK: Final[Mapping[str, str]] = {"pass": "✅", "fail": "❌", "skip": "⏭️"}

CriterionStatus = Literal["pass", "fail", "incomplete", "not run"]
#: ``rehearsal-passed`` on the twin, ``passed`` only on Cloudflare: a rehearsal is never production evidence.
RunStatus = Literal["passed", "rehearsal-passed", "incomplete", "failed"]
#: The contract asks criteria 3 and 4 of each of its three providers: a criterion of this map passes only
#: when each provider has a passing check of it (its ``subject`` is ``provider/model``), none skipped.
REQUIRED_PROVIDERS: Final[Mapping[int, tuple[str, ...]]] = {3: config.PROVIDERS, 4: config.PROVIDERS}
#: The models as the contract writes them (its compat examples); SUMMARY.md shows what the run used instead.
CONTRACT_MODELS: Final = ("google/gemini-2.5-flash", "openai/gpt-4", "anthropic/claude-3-sonnet")
CONTRACT_GATEWAY_ID: Final = "github-ai-agent"
#: Checks whose figure means something only on Cloudflare: on the twin it is what the twin was told to add.
CLOUDFLARE_ONLY_FIGURES: Final = frozenset({"gateway overhead within the contract's budget"})
#: Notes whose name starts so are shown beside the criteria (their own SUMMARY.md row) and never change the
#: verdict: the REST API probed beside the contract's compat endpoint (issue 13), which the contract does not ask.
PARITY_CHECK: Final = "REST API parity"


def counts_for_verdict(check: Check) -> bool:
    """False for a parity note (``PARITY_CHECK``): shown, even when it failed, but never the run's verdict."""
    return not (check.criterion is None and check.check.startswith(PARITY_CHECK))
REHEARSAL_FIGURE_NOTE: Final = "rehearsal: shows the measurement works, not Cloudflare's latency"

_registered_secrets: dict[str, Secret] = {}


def use_secrets(secrets: Iterable[Secret]) -> None:
    """Make these values part of what ``record`` redacts (``open_session`` registers the settings')."""
    for secret in secrets:
        _registered_secrets[secret.reveal()] = secret


def configured_secrets(settings: Settings | None = None) -> list[Secret]:
    """Every secret value known here: registered ones, the settings', and the environment's."""
    found: dict[str, Secret] = dict(_registered_secrets)
    for secret in [*(settings.secrets() if settings else ()), *secrets_from_environ(os.environ)]:
        found.setdefault(secret.reveal(), secret)
    return list(found.values())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Check:
    """One recorded check. ``notebook`` and ``cell`` are set when read back from a notebook."""

    criterion: int | None
    check: str
    status: Status
    detail: str = ""
    time: str = field(default_factory=_now)
    notebook: str | None = None
    cell: int | None = None
    #: The cell's execution count: what a reader sees as ``In [N]`` in the notebook and its HTML.
    prompt: int | None = None
    #: What the check is about, as ``provider/model`` (criteria 3 and 4 need one per provider), or None.
    subject: str | None = None

    @property
    def where(self) -> str:
        """How a reader finds the cell: ``01_create_gateway In [11]`` (its index when it has no count)."""
        shown = f"In [{self.prompt}]" if self.prompt is not None else f"cell {self.cell}"
        return f"{self.notebook} {shown}"

    def payload(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "check": self.check, "status": self.status,
                "detail": self.detail, "time": self.time, "subject": self.subject}

    def line(self) -> str:
        where = f"criterion {self.criterion}" if self.criterion is not None else "note"
        detail = f": {self.detail}" if self.detail else ""
        return f"{_MARK[self.status]} {self.status.upper()} [{where}] {self.check}{detail}"

    def markdown(self) -> str:
        where = f"criterion {self.criterion}" if self.criterion is not None else "note"
        shown = (_retries_sentence(self.detail) if self.check == "retries" else None) or self.detail
        detail = f" — {_md_escape(shown)}" if shown else ""
        return f"{_MARK[self.status]} **{self.status.upper()}** · {where} · {_md_escape(self.check)}{detail}"


def _retries_sentence(detail: str) -> str | None:
    """The ``retries`` note's statistics (JSON, which ``evidence.json`` keeps) as a sentence for a reader;
    None when ``detail`` is not such statistics."""
    try:
        stats = json.loads(detail)
    except ValueError:
        return None
    if not isinstance(stats, dict) or not isinstance(stats.get("requests"), int):
        return None

    def counted(total: Any, by: Any) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by.items())) if isinstance(by, dict) and by else ""
        return f"{total} ({parts})" if parts else f"{total}"

    data_plane = stats.get("data_plane")
    to_gateway = data_plane.get("requests", 0) if isinstance(data_plane, dict) else 0
    text = f"{stats['requests']} requests" + (f" ({to_gateway} through the gateway)" if to_gateway else "")
    text += f", {counted(stats.get('retries', 0), stats.get('retries_by_reason'))} retried"
    if stats.get("budget_waits"):
        text += f", {stats['budget_waits']} waits for the API budget ({float(stats.get('budget_wait_s', 0)):.1f} s)"
    if stats.get("recoveries"):
        text += f", {counted(stats['recoveries'], stats.get('recoveries_by_outcome'))} checked before a retry"
    return text


_URL: Final = re.compile(r"https?://[^\s`]+")
#: A dollar sign that MathJax (JupyterLab) and nbconvert's math plugin never read as TeX (see aigw.steps.DOLLAR).
_DOLLAR: Final = "<span>&#36;</span>"


def _md_escape(text: str) -> str:
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


class CheckFailed(AigwError):
    """A recorded check failed: the cell stops here, with the check's line as the error."""


#: The latest result of every check ``record`` recorded in this process (a notebook's kernel), for
#: ``raise_failures``: a cell run again in JupyterLab replaces what it recorded before.
_recorded: dict[tuple[int | None, str, str | None], Check] = {}


def record(criterion: int | None, check: str, status: Status, detail: str = "", *,
           subject: str | None = None) -> Check:
    """Record one check as a display_data output of the current cell; returns it.

    **Parameters:**
    * criterion - the contract's validation criterion (1-6) this check proves, or None for a note.
    * check - a short name, e.g. ``"gateway listed with the desired settings"``.
    * status - ``"pass"``, ``"fail"`` or ``"skip"``.
    * detail - one line for the reader; configured secret values are replaced by ``***``.
    * subject - what it is about, ``provider/model`` (criteria 3 and 4 need a passing one per provider).
    """
    if status not in _STATUSES:
        raise ValueError(f"status must be one of pass, fail, skip; got {status!r}")
    if criterion is not None and criterion not in CRITERIA:
        raise ValueError(f"criterion must be 1-6 or None; got {criterion!r}")
    secrets = configured_secrets()
    item = Check(criterion, redact(check, secrets), status, redact(" ".join(detail.split()), secrets),
                 subject=subject)
    _display(item)
    _recorded.pop((item.criterion, item.check, item.subject), None)
    _recorded[(item.criterion, item.check, item.subject)] = item
    return item


def _failures_line(failed: Sequence[Check]) -> str:
    def one(check: Check) -> str:
        return check.check + (f": {check.detail}" if check.detail else "")

    def which(check: Check) -> str:
        return f"criterion {check.criterion}" if check.criterion is not None else "note"

    if len(failed) == 1:
        first = failed[0]
        return f"{which(first) + ' check' if first.criterion is not None else 'check'} failed: {one(first)}"
    return f"{len(failed)} checks failed: " + "; ".join(
        f"({n}) {which(c)}: {one(c)}" for n, c in enumerate(failed, 1))


def record_all(checks: Iterable[Check] | Any, *, raise_on_fail: bool = True) -> None:
    """Record every check of a step's result (anything with ``.checks``, or an iterable of ``Check``).

    With ``raise_on_fail`` a failed check stops the cell with ``CheckFailed`` naming it, after all of
    them were recorded, so the notebook (and ``aigw run``) fails where the evidence does.
    """
    items: Iterable[Check] = checks.checks if hasattr(checks, "checks") else checks
    recorded = [record(c.criterion, c.check, c.status, c.detail, subject=c.subject) for c in items]
    failed = [c for c in recorded if c.status == "fail"]
    # A failed parity note alone never stops a notebook; when another check fails, the line lists it too.
    if raise_on_fail and any(counts_for_verdict(c) for c in failed):
        raise CheckFailed(_failures_line(failed))


def raise_failures() -> None:
    """The last cell of a notebook that runs every check before failing: ``CheckFailed`` listing, in one
    line, every failed check recorded in this kernel (``record_all(..., raise_on_fail=False)``); else nothing."""
    failed = [c for c in _recorded.values() if c.status == "fail"]
    if any(counts_for_verdict(c) for c in failed):
        raise CheckFailed(_failures_line(failed))


def record_retries(source: Any) -> Check:
    """Record retry statistics as the ``retries`` note that ``seal_bundle`` collects.

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
    return record(None, "retries", "pass", json.dumps(totals, sort_keys=True, default=str))


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


def _load_notebook(notebook: Any) -> tuple[Any, str | None]:
    import nbformat

    if isinstance(notebook, str | os.PathLike):
        path = Path(notebook)
        return nbformat.read(path, as_version=4), path.stem  # type: ignore[no-untyped-call]
    return notebook, None


def read_checks(notebook: str | os.PathLike[str] | Any) -> list[Check]:
    """The checks recorded in a notebook (a path or a NotebookNode), in order, with their cell index."""
    nb, name = _load_notebook(notebook)
    checks: list[Check] = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(CHECK_MIMETYPE) if output.get("output_type") in {
                "display_data", "execute_result"} else None
            if not isinstance(payload, Mapping):
                continue
            raw_status = payload.get("status")
            status: Status = raw_status if raw_status in ("pass", "skip") else "fail"
            subject = payload.get("subject")
            checks.append(Check(
                criterion=payload.get("criterion"),
                check=str(payload.get("check", "")),
                status=status,
                detail=str(payload.get("detail", "")),
                time=str(payload.get("time", "")),
                notebook=name,
                cell=index,
                prompt=cell.get("execution_count"),
                subject=str(subject) if subject is not None else None,
            ))
    return checks


# --- criteria -----------------------------------------------------------------------------------


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


# --- HTML ---------------------------------------------------------------------------------------

_REMOTE_SCRIPT: Final = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?https?://[^>]*>\s*</script>", re.I | re.S)
_MODULE_SCRIPT: Final = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>",
                                   re.I | re.S)
_REMOTE_LINK: Final = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?https?://[^>]*>", re.I)
_REMOTE_CSS: Final = re.compile(r"@import\s+url\(\s*[\"']?https?://[^)]*\)\s*;?", re.I)
_CELL_ANCHOR: Final = re.compile(r'id="cell-id=cell-(\d+)"')
_REMOTE_ANCHOR: Final = re.compile(r"(<a\b[^>]*?)\bhref\s*=\s*([\"'])(https?://[^\"']*)\2", re.I)


def export_html(notebook: str | os.PathLike[str] | Any, destination: Path, *, title: str | None = None) -> Path:
    """A self-contained HTML export: every cell has ``id="cell-N"`` (N = its index in the notebook);
    nothing is fetched from the network (require.js, MathJax, mermaid and widget scripts are removed).
    """
    import copy

    from nbconvert import HTMLExporter

    nb, _ = _load_notebook(notebook)
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab")  # type: ignore[no-untyped-call]
    body, _resources = exporter.from_notebook_node(nb)
    body = _CELL_ANCHOR.sub(r'id="cell-\1"', body)
    body = _REMOTE_SCRIPT.sub("", body)
    body = _MODULE_SCRIPT.sub("", body)
    body = _REMOTE_LINK.sub("", body)
    body = _REMOTE_CSS.sub("", body)
    # Links out are kept as text (data-href), so that nothing in the evidence points at the network.
    body = _REMOTE_ANCHOR.sub(r"\1data-href=\2\3\2", body)
    destination.write_text(body, encoding="utf-8")
    return destination


# --- bundle -------------------------------------------------------------------------------------

MANIFEST: Final = "manifest.json"
_TOOLS: Final = ("aigw-runbook", "papermill", "nbclient", "nbconvert", "nbformat", "ipykernel", "jupyter_client",
                 "httpx", "cloudflare", "starlette", "uvicorn", "cryptography")


def run_html_path(folder: Path, notebook: str | os.PathLike[str]) -> Path:
    """Where a run folder keeps the HTML export of ``notebook``."""
    return folder / f"{Path(notebook).stem}.html"


def export_run_html(notebook: str | os.PathLike[str], folder: Path, run_id: str) -> Path:
    """The HTML export ``seal_bundle`` makes for an executed notebook of run ``run_id`` (``aigw run``
    makes it while the next notebook runs, and tells ``seal_bundle`` through ``exported``)."""
    path = Path(notebook)
    return export_html(path, run_html_path(folder, path), title=f"{path.stem} — run {run_id}")


def repo_root() -> Path:
    """The checkout this library runs from (where notebooks/ and docs/ are)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    from aigw.session import project_root

    return project_root()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tool_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for tool in _TOOLS:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _bundle_files(run_dir: Path) -> list[Path]:
    from aigw.provenance import ATTESTATION

    return sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name not in {MANIFEST, ATTESTATION})


#: Untracked files here change what runs (a module, a notebook, a pin), so they make the checkout dirty.
_CODE_PATHS: Final = ("lib", "notebooks", "requirements.txt", "tests/requirements.txt", "pyproject.toml")


def _git_dirty(root: Path) -> bool | None:
    """True when a tracked file changed, or an untracked file sits under lib/, notebooks/ or the requirements
    (ignored files do not count); None outside a git checkout."""
    tracked = _git(root, "status", "--porcelain", "--untracked-files=no")
    if tracked is None:
        return None
    untracked = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *_CODE_PATHS)
    return bool(tracked) or bool(untracked)


def own_files(run_dir: str | os.PathLike[str], preexisting: Collection[str] = ()) -> list[Path]:
    """The files the run wrote in ``run_dir``: all but the manifest and ``preexisting`` (paths relative
    to ``run_dir`` that were there before the run took the folder). Only these are sealed, scanned and,
    on a secret hit, deleted: a file the run did not write is never touched."""
    folder = Path(run_dir)
    return [p for p in _bundle_files(folder) if str(p.relative_to(folder)) not in preexisting]


def _redact_value(value: Any, secrets: Sequence[Secret]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, secrets) for v in value]
    if isinstance(value, Secret):
        return "***"
    return value


def _retries(checks: Sequence[Check], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = dict(extra or {})
    for check in checks:
        if check.check == "retries":
            try:
                found[check.notebook or "run"] = json.loads(check.detail)
            except ValueError:
                found[check.notebook or "run"] = check.detail
    return found


@dataclass(frozen=True)
class Bundle:
    """A sealed run folder."""

    run_dir: Path
    status: str
    criteria: tuple[Criterion, ...]
    leaks: tuple[Finding, ...] = ()
    #: The SUMMARY.md "Why:" line of a failed or incomplete bundle ("" otherwise).
    why: str = ""

    def table(self) -> str:
        """The criteria as a plain-text table (what ``aigw run`` prints)."""
        lines = [f"{'#':<2} {'result':<10} criterion"]
        lines += [f"{c.number:<2} {c.status:<10} {c.title}" + (f" ({_shortened(c.reason)})" if c.reason else "")
                  for c in self.criteria]
        return "\n".join(lines)


def _target_words(evidence_doc: Mapping[str, Any]) -> str:
    """What the target means, as far as the recorded hosts show it (a label alone proves nothing)."""
    shown = evidence_doc.get("hosts_target")
    if evidence_doc["target"] == "twin":
        return " (local twin: emulated Cloudflare, nothing left the machine)" if shown in {"twin", "none", None} \
            else f" (but requests went to {shown} hosts)"
    if shown == "cloudflare":
        return " (real Cloudflare)"
    return f" (not Cloudflare's hosts: {shown}; see where the requests went)"


def _shortened(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _why(status: str, criteria: Sequence[Criterion], checks: Sequence[Check], failure: Mapping[str, Any] | None,
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
            return _failures_line(failed)
    if status in {"failed", "incomplete"}:
        return "; ".join(f"criterion {c.number} {c.status}: {c.reason}" for c in criteria if c.status != "pass")
    return ""


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


def _status_line(doc: Mapping[str, Any]) -> str:
    status = doc["status"]
    if doc.get("production_evidence"):
        what = "production evidence: checked against real Cloudflare"
    else:
        what = "REHEARSAL on the local twin: not production evidence; run with --target cloudflare for that"
    meaning = {"passed": "every criterion passed", "rehearsal-passed": "every criterion passed",
               "incomplete": "a criterion was not run, was skipped or lacks a provider",
               "failed": "a notebook or a check failed"}.get(status, "")
    return f"**Status: {status.upper()}** ({meaning}) · {what}"


def _hosts_markdown(evidence_doc: Mapping[str, Any]) -> str:
    from aigw.hosts import hosts_line

    text = _md_escape(hosts_line(evidence_doc.get("hosts") or {}))
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
            f"the status | {mark[status]} — {_md_escape(detail)} | {links} |"]


def _summary_markdown(evidence_doc: Mapping[str, Any], criteria: Sequence[Criterion], checks: Sequence[Check],
                      quarantined: Sequence[Mapping[str, Any]]) -> str:
    mark = {"pass": "✅ pass", "fail": "❌ fail", "incomplete": "⚠️ incomplete", "not run": "⬜ not run"}
    rehearsal = not evidence_doc.get("production_evidence")
    parameters = evidence_doc.get("parameters") or {}
    out = [
        f"# Evidence — run `{evidence_doc['run_id']}`",
        "",
        _status_line(evidence_doc),
        "",
    ]
    if evidence_doc.get("why"):
        failure = evidence_doc.get("failure") or {}
        where = (f" ([{failure['notebook']} cell {failure['cell']}]({failure['notebook']}.html#cell-{failure['cell']}))"
                 if failure.get("notebook") and failure.get("cell") is not None else "")
        out += [f"**Why:** {_md_escape(evidence_doc['why'])}{where}", ""]
    out += [
        "* **Parameters:** " + (", ".join(f"`{k}` = `{json.dumps(v, default=str)}`" for k, v in parameters.items())
                                if parameters else "none given (every notebook's defaults)"),
        "* **Contract differences:**",
        *[f"  * {item}" for item in evidence_doc.get("contract_differences") or ()],
        f"* **Target:** {evidence_doc['target']}" + _target_words(evidence_doc),
        f"* **Requests went to:** {_hosts_markdown(evidence_doc)}",
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
        reason = f" — {_md_escape(criterion.reason)}" if criterion.reason else ""
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


def _notebook_status(nb: Any) -> str:
    for cell in nb.cells:
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "failed":
            return "failed"
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return "failed"
    statuses = {c.get("metadata", {}).get("papermill", {}).get("status") for c in nb.cells if c.cell_type == "code"}
    return "not finished" if statuses & {"pending", "running"} else "completed"


def seal_bundle(
    run_dir: str | os.PathLike[str],
    *,
    run_id: str,
    target: str,
    settings: Settings | None,
    parameters: Mapping[str, Any],
    notebooks: Sequence[str | os.PathLike[str]],
    status: str,
    retries: Mapping[str, Any] | None = None,
    root: Path | None = None,
    secrets: Iterable[Secret] = (),
    exported: Iterable[str | os.PathLike[str]] = (),
    failure: Mapping[str, Any] | None = None,
    started_at: str | None = None,
    allow_custom_endpoints: bool = False,
    signing_key: Ed25519PrivateKey | None = None,
    preexisting: Collection[str] = (),
) -> Bundle:
    """Seal ``run_dir``: HTML exports, ``evidence.json``, ``SUMMARY.md``, secret scan, ``manifest.json``.

    **Parameters:**
    * notebooks - the executed notebooks in ``run_dir``, in run order.
    * status - ``"completed"`` or ``"failed"`` (a notebook failed); the bundle's status becomes
      ``failed``, ``incomplete``, or (every criterion passed) ``passed`` on Cloudflare and
      ``rehearsal-passed`` on the twin (``run_status``).
    * root - the repository whose documents criterion 6 checks (default: this checkout).
    * secrets - values to look for besides the settings' and the environment's.
    * exported - notebooks whose HTML ``export_run_html`` already wrote from their final content.
    * failure - the failed notebook's ``{notebook, cell, error}`` (``evidence.json``'s ``failure``), if any.
    * started_at - when the run started (ISO 8601 UTC), for the provenance.
    * allow_custom_endpoints - the operator allowed a Cloudflare target on other hosts (recorded, shown).
    * signing_key - signs the provenance (``provenance.dsse.json``); default: ``AIGW_SIGNING_KEY``, else unsigned.
    * preexisting - files (relative paths) that were in ``run_dir`` before the run: left out of the
      scan and the manifest, never deleted (see ``own_files``).

    Raises ``EvidenceError`` (after sealing, status ``failed``) when a file held a secret value;
    such files are deleted.
    """
    import nbformat

    from aigw.hosts import collect_hosts, derive_target
    from aigw.provenance import ci_job, file_sha256, notebook_parameters, requirement_hashes, write_attestation
    from aigw.signing import SIGNING_KEY_VAR, key_from_environ, private_key_text

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    root = root or repo_root()
    # Before anything is written: a bad key is one line, and no half-sealed bundle.
    key = signing_key if signing_key is not None else key_from_environ()
    hosts = collect_hosts(folder)
    extra_secrets = [Secret(private_key_text(key), SIGNING_KEY_VAR)] if key is not None else []
    known = [*configured_secrets(settings), *secrets, *extra_secrets]
    done = {Path(p).resolve() for p in exported}
    checks: list[Check] = []
    notebook_docs: list[dict[str, Any]] = []
    ran_with: dict[str, dict[str, Any]] = {}
    for raw in notebooks:
        path = Path(raw)
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        ran_with[path.stem] = notebook_parameters(nb)
        checks += [
            Check(c.criterion, c.check, c.status, c.detail, c.time, path.stem, c.cell, subject=c.subject)
            for c in read_checks(nb)]
        html_path = run_html_path(folder, path)
        if path.resolve() not in done or not html_path.is_file():
            export_html(nb, html_path, title=f"{path.stem} — run {run_id}")
        notebook_docs.append({"name": path.stem, "file": path.name, "html": html_path.name,
                              "status": _notebook_status(nb)})
    repo_checks = check_setup_documented(root)
    all_checks = checks + repo_checks
    criteria = summarize_criteria(all_checks)
    commit = _git(root, "rev-parse", "HEAD")
    dirty = _git_dirty(root)

    failed = dict(failure) if failure else None
    if status == "failed" and failed is None:
        failed = {"notebook": None, "cell": None, "error": "a notebook failed (no further detail was given)"}

    hosts_target = derive_target(hosts)
    # Production evidence needs the requests to have gone to Cloudflare's hosts, not only the target label
    # (--allow-custom-endpoints, or a bundle re-sealed as "cloudflare", is a rehearsal at most).
    production = target == "cloudflare" and hosts_target == "cloudflare"

    def final_status(leaked: bool) -> str:
        return run_status(criteria, all_checks, target="cloudflare" if production else "twin",
                          notebook_failed=status == "failed", leaked=leaked)

    def write(quarantined: list[dict[str, Any]]) -> dict[str, Any]:
        verdict = final_status(bool(quarantined))
        doc: dict[str, Any] = {
            "run_id": run_id,
            "target": target,
            "account_id": settings.account_id if settings else None,
            "gateway_id": settings.gateway_id if settings else None,
            "git_commit": commit,
            "git_dirty": dirty,
            "tools": _tool_versions(),
            "parameters": _redact_value(dict(parameters), known),
            "notebooks": notebook_docs,
            "criteria": [{"number": c.number, "title": c.title, "status": c.status, "reason": c.reason,
                          "links": [href for _, href in c.links()]} for c in criteria],
            "checks": [{**c.payload(), "notebook": c.notebook, "cell": c.cell} for c in all_checks],
            "retries": _retries(checks, retries),
            "hosts": hosts,
            "hosts_target": hosts_target,
            "allow_custom_endpoints": allow_custom_endpoints,
            "quarantined": quarantined,
            "status": verdict,
            # Only a run against Cloudflare is evidence about production; a rehearsal shows the runbook works.
            "production_evidence": production,
            "failure": failed,
            "why": _why(verdict, criteria, all_checks, failed, quarantined) or None,
            "contract_differences": contract_differences(all_checks, settings.gateway_id if settings else None),
            "sealed_at": _now(),
        }
        doc = _redact_value(doc, known)
        (folder / "evidence.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        summary = _summary_markdown(doc, criteria, [Check(c.criterion, redact(c.check, known), c.status,
                                                          redact(c.detail, known), c.time, c.notebook, c.cell,
                                                          subject=c.subject)
                                                    for c in all_checks], quarantined)
        (folder / "SUMMARY.md").write_text(summary, encoding="utf-8")
        return doc

    quarantined: list[dict[str, Any]] = []
    written = write(quarantined)
    leaks = scan_paths(own_files(folder, preexisting), known, shapes=False)
    if leaks:
        by_file: dict[str, list[str]] = {}
        for finding in leaks:
            by_file.setdefault(finding.path, []).append(f"{finding.location}: {finding.kind} ({finding.preview})")
        for file, findings in by_file.items():
            Path(file).unlink(missing_ok=True)
            quarantined.append({"file": str(Path(file).relative_to(folder)), "findings": findings})
        for doc in notebook_docs:
            if any(q["file"] in {doc["file"], doc["html"]} for q in quarantined):
                doc["status"] = "quarantined"
        written = write(quarantined)
    manifest = {"run_id": run_id, "algorithm": "sha256",
                "files": {str(p.relative_to(folder)): file_sha256(p) for p in own_files(folder, preexisting)}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    verdict = final_status(bool(leaks))
    predicate = {
        "run_id": run_id,
        "target": target,
        # What evidence.json says, so that the two cannot disagree however the status is derived.
        "status": written["status"],
        "started_at": started_at,
        "finished_at": _now(),
        "git_commit": commit,
        "git_dirty": dirty,
        "requirements": requirement_hashes(root),
        "notebooks": {stem: file_sha256(source) for stem in ran_with
                      if (source := root / "notebooks" / f"{stem}.ipynb").is_file()},
        "parameters": _redact_value({"operator": dict(parameters), "notebooks": ran_with}, known),
        "hosts": hosts,
        "hosts_target": hosts_target,
        "production_evidence": production,
        "allow_custom_endpoints": allow_custom_endpoints,
        "ci": ci_job(),
    }
    statement = json.dumps(predicate, default=str)
    if scan_text(statement, known, shapes=False):
        raise EvidenceError("the provenance would hold a configured secret value; it was not written",
                            hint="A parameter holds a secret: secrets come from .dev.vars, never -p")
    write_attestation(folder, predicate, key)
    bundle = Bundle(folder, verdict, tuple(criteria), tuple(leaks),
                    _why(verdict, criteria, all_checks, failed, quarantined))
    if leaks:
        names = ", ".join(sorted({q["file"] for q in quarantined}))
        raise EvidenceError(
            f"a configured secret value was found in {names}; the file(s) were deleted from {folder}",
            hint="Find where the notebook prints or stores it (never pass a secret as a parameter) and run again",
        )
    return bundle


def verify_bundle(run_dir: str | os.PathLike[str], public_key: Any = None) -> list[str]:
    """Check ``run_dir``: its signature (with ``public_key``), its files against the provenance and the manifest,
    and what evidence.json and SUMMARY.md say against its notebooks (``aigw.verify``). ``EvidenceError``
    names the first thing wrong; otherwise the files, by path in the run folder."""
    from aigw.verify import verify_evidence

    return list(verify_evidence(Path(run_dir), public_key).files)


def verify_from_args(args: argparse.Namespace) -> int:
    """``aigw verify-evidence RUN_DIR [--key PUB]``."""
    from aigw.signing import load_public_key
    from aigw.verify import verify_evidence

    key_path = getattr(args, "key", None)
    public_key = load_public_key(key_path) if key_path is not None else None
    for line in verify_evidence(args.run_dir, public_key).lines(args.run_dir):
        print(line)
    print(f"aigw: {_sealed_status(Path(args.run_dir))}")
    return 0


def _sealed_status(folder: Path) -> str:
    """What the sealed bundle says of itself: its status, production or rehearsal, and why (an intact
    bundle may still be a failed or incomplete one: integrity is not approval)."""
    try:
        doc = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "status unknown: evidence.json is missing or unreadable"
    status = str(doc.get("status", "unknown"))
    kind = "production evidence" if doc.get("production_evidence") else "rehearsal: not production evidence"
    why = f"; why: {doc['why']}" if doc.get("why") else ""
    return f"status {status} ({kind}){why}"
