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
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from aigw import config
from aigw.config import Secret, redact
from aigw.errors import AigwError, EvidenceError
from aigw.secrets_scan import Finding, scan_paths, secrets_from_environ

if TYPE_CHECKING:
    from aigw.config import Settings

__all__ = [
    "CHECK_MIMETYPE",
    "CRITERIA",
    "Check",
    "CheckFailed",
    "Criterion",
    "Status",
    "check_setup_documented",
    "configured_secrets",
    "export_html",
    "export_run_html",
    "read_checks",
    "record",
    "record_all",
    "record_retries",
    "run_html_path",
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

    @property
    def where(self) -> str:
        """How a reader finds the cell: ``01_create_gateway In [11]`` (its index when it has no count)."""
        shown = f"In [{self.prompt}]" if self.prompt is not None else f"cell {self.cell}"
        return f"{self.notebook} {shown}"

    def payload(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "check": self.check, "status": self.status,
                "detail": self.detail, "time": self.time}

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


def record(criterion: int | None, check: str, status: Status, detail: str = "") -> Check:
    """Record one check as a display_data output of the current cell; returns it.

    **Parameters:**
    * criterion - the contract's validation criterion (1-6) this check proves, or None for a note.
    * check - a short name, e.g. ``"gateway listed with the desired settings"``.
    * status - ``"pass"``, ``"fail"`` or ``"skip"``.
    * detail - one line for the reader; configured secret values are replaced by ``***``.
    """
    if status not in _STATUSES:
        raise ValueError(f"status must be one of pass, fail, skip; got {status!r}")
    if criterion is not None and criterion not in CRITERIA:
        raise ValueError(f"criterion must be 1-6 or None; got {criterion!r}")
    secrets = configured_secrets()
    item = Check(criterion, redact(check, secrets), status, redact(" ".join(detail.split()), secrets))
    _display(item)
    return item


def record_all(checks: Iterable[Check] | Any, *, raise_on_fail: bool = True) -> None:
    """Record every check of a step's result (anything with ``.checks``, or an iterable of ``Check``).

    With ``raise_on_fail`` a failed check stops the cell with ``CheckFailed`` naming it, after all of
    them were recorded, so the notebook (and ``aigw run``) fails where the evidence does.
    """
    items: Iterable[Check] = checks.checks if hasattr(checks, "checks") else checks
    recorded = [record(c.criterion, c.check, c.status, c.detail) for c in items]
    failed = [c for c in recorded if c.status == "fail"]
    if failed and raise_on_fail:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        which = f"criterion {first.criterion} check" if first.criterion is not None else "check"
        raise CheckFailed(f"{which} failed: {first.check}: {first.detail}{more}")


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
            checks.append(Check(
                criterion=payload.get("criterion"),
                check=str(payload.get("check", "")),
                status=status,
                detail=str(payload.get("detail", "")),
                time=str(payload.get("time", "")),
                notebook=name,
                cell=index,
                prompt=cell.get("execution_count"),
            ))
    return checks


# --- criteria -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One of the contract's six validation criteria, as the checks of a run show it."""

    number: int
    title: str
    status: Literal["pass", "fail", "skip", "not run"]
    checks: tuple[Check, ...] = ()

    def links(self) -> list[tuple[str, str]]:
        """``(label, relative link)`` to each cell of the HTML exports that shows this criterion."""
        seen: dict[str, str] = {}
        for check in self.checks:
            if check.notebook is not None and check.cell is not None:
                seen.setdefault(check.where, f"{check.notebook}.html#cell-{check.cell}")
        return list(seen.items())


def summarize_criteria(checks: Sequence[Check]) -> list[Criterion]:
    """Each criterion: ``fail`` if a check of it failed, ``pass`` if one passed, ``skip`` if all were
    skipped, ``not run`` when no check speaks to it."""
    summary: list[Criterion] = []
    for number, title in CRITERIA.items():
        mine = tuple(c for c in checks if c.criterion == number)
        statuses = {c.status for c in mine}
        status: Literal["pass", "fail", "skip", "not run"]
        if not mine:
            status = "not run"
        elif "fail" in statuses:
            status = "fail"
        elif "pass" in statuses:
            status = "pass"
        else:
            status = "skip"
        summary.append(Criterion(number, title, status, mine))
    return summary


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
                 "httpx", "cloudflare", "starlette", "uvicorn")


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundle_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


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

    def table(self) -> str:
        """The criteria as a plain-text table (what ``aigw run`` prints)."""
        lines = [f"{'#':<2} {'result':<8} criterion"]
        lines += [f"{c.number:<2} {c.status:<8} {c.title}" for c in self.criteria]
        return "\n".join(lines)


def _summary_markdown(evidence_doc: Mapping[str, Any], criteria: Sequence[Criterion], checks: Sequence[Check],
                      quarantined: Sequence[Mapping[str, Any]]) -> str:
    mark = {"pass": "✅ pass", "fail": "❌ fail", "skip": "⏭️ skip", "not run": "⬜ not run"}
    out = [
        f"# Evidence — run `{evidence_doc['run_id']}`",
        "",
        f"* **Status:** {evidence_doc['status']}",
        f"* **Target:** {evidence_doc['target']}" + (" (local twin: emulated Cloudflare, nothing left the machine)"
                                                     if evidence_doc["target"] == "twin" else " (real Cloudflare)"),
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
        out.append(f"| {criterion.number} | {criterion.title} | {mark[criterion.status]} | {links} |")
    out += ["", "## Checks", ""]
    for check in checks:
        where = f" ([{check.where}]({check.notebook}.html#cell-{check.cell}))" if (
            check.notebook is not None and check.cell is not None) else ""
        out.append(f"* {check.markdown()}{where}")
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
) -> Bundle:
    """Seal ``run_dir``: HTML exports, ``evidence.json``, ``SUMMARY.md``, secret scan, ``manifest.json``.

    **Parameters:**
    * notebooks - the executed notebooks in ``run_dir``, in run order.
    * status - ``"completed"`` or ``"failed"`` (a notebook failed); the bundle's status becomes
      ``failed``, ``passed`` (all six criteria pass) or ``incomplete``.
    * root - the repository whose documents criterion 6 checks (default: this checkout).
    * secrets - values to look for besides the settings' and the environment's.
    * exported - notebooks whose HTML ``export_run_html`` already wrote from their final content.

    Raises ``EvidenceError`` (after sealing, status ``failed``) when a file held a secret value;
    such files are deleted.
    """
    import nbformat

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    root = root or repo_root()
    known = [*configured_secrets(settings), *secrets]
    done = {Path(p).resolve() for p in exported}
    checks: list[Check] = []
    notebook_docs: list[dict[str, Any]] = []
    for raw in notebooks:
        path = Path(raw)
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        checks += [
            Check(c.criterion, c.check, c.status, c.detail, c.time, path.stem, c.cell) for c in read_checks(nb)]
        html_path = run_html_path(folder, path)
        if path.resolve() not in done or not html_path.is_file():
            export_html(nb, html_path, title=f"{path.stem} — run {run_id}")
        notebook_docs.append({"name": path.stem, "file": path.name, "html": html_path.name,
                              "status": _notebook_status(nb)})
    repo_checks = check_setup_documented(root)
    all_checks = checks + repo_checks
    criteria = summarize_criteria(all_checks)
    commit = _git(root, "rev-parse", "HEAD")
    porcelain = _git(root, "status", "--porcelain", "--untracked-files=no")

    def final_status(leaked: bool) -> str:
        if status == "failed" or leaked:
            return "failed"
        return "passed" if all(c.status == "pass" for c in criteria) else "incomplete"

    def write(quarantined: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "run_id": run_id,
            "target": target,
            "account_id": settings.account_id if settings else None,
            "gateway_id": settings.gateway_id if settings else None,
            "git_commit": commit,
            "git_dirty": bool(porcelain) if porcelain is not None else None,
            "tools": _tool_versions(),
            "parameters": _redact_value(dict(parameters), known),
            "notebooks": notebook_docs,
            "criteria": [{"number": c.number, "title": c.title, "status": c.status,
                          "links": [href for _, href in c.links()]} for c in criteria],
            "checks": [{**c.payload(), "notebook": c.notebook, "cell": c.cell} for c in all_checks],
            "retries": _retries(checks, retries),
            "quarantined": quarantined,
            "status": final_status(bool(quarantined)),
            "sealed_at": _now(),
        }
        doc = _redact_value(doc, known)
        (folder / "evidence.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        summary = _summary_markdown(doc, criteria, [Check(c.criterion, redact(c.check, known), c.status,
                                                          redact(c.detail, known), c.time, c.notebook, c.cell)
                                                    for c in all_checks], quarantined)
        (folder / "SUMMARY.md").write_text(summary, encoding="utf-8")
        return doc

    quarantined: list[dict[str, Any]] = []
    write(quarantined)
    leaks = scan_paths(_bundle_files(folder), known, shapes=False)
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
        write(quarantined)
    manifest = {"run_id": run_id, "algorithm": "sha256",
                "files": {str(p.relative_to(folder)): _sha256(p) for p in _bundle_files(folder)}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    bundle = Bundle(folder, final_status(bool(leaks)), tuple(criteria), tuple(leaks))
    if leaks:
        names = ", ".join(sorted({q["file"] for q in quarantined}))
        raise EvidenceError(
            f"a configured secret value was found in {names}; the file(s) were deleted from {folder}",
            hint="Find where the notebook prints or stores it (never pass a secret as a parameter) and run again",
        )
    return bundle


def verify_bundle(run_dir: str | os.PathLike[str]) -> list[str]:
    """The files of ``run_dir`` checked against its manifest; ``EvidenceError`` names any file added,
    missing or changed since sealing."""
    folder = Path(run_dir)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise EvidenceError(f"{folder} has no {MANIFEST}", hint="Seal it with `aigw run`, or check the path")
    try:
        listed: Mapping[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{manifest_path} is not a valid manifest ({type(exc).__name__})") from None
    present = {str(p.relative_to(folder)): p for p in _bundle_files(folder)}
    added = sorted(set(present) - set(listed))
    missing = sorted(set(listed) - set(present))
    changed = sorted(name for name in set(listed) & set(present) if _sha256(present[name]) != listed[name])
    problems = [f"{label}: {', '.join(names)}" for label, names in
                (("changed", changed), ("missing", missing), ("added", added)) if names]
    if problems:
        raise EvidenceError(f"{folder} does not match its manifest — {'; '.join(problems)}",
                            hint="The evidence was altered after sealing; re-run `aigw run` for fresh evidence")
    return sorted(listed)


def verify_from_args(args: argparse.Namespace) -> int:
    """``aigw verify-evidence RUN_DIR``."""
    files = verify_bundle(args.run_dir)
    print(f"aigw: {args.run_dir}: all {len(files)} files match the manifest")
    return 0
