"""Sealing a run folder into evidence (``seal_bundle``): HTML exports, ``evidence.json``, ``SUMMARY.md``, a
secret scan, ``manifest.json`` and the signed provenance.

``evidence.json`` holds the run, target, ids, git commit, tool versions, redacted parameters, every check,
retries and status. Before the manifest is written every file is scanned for every configured secret value;
a file that holds one is deleted (it never stays under outputs/), the bundle is marked failed and
``EvidenceError`` is raised.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aigw.config import Secret, redact
from aigw.errors import EvidenceError
from aigw.evidence.checks import Check, utc_now
from aigw.evidence.criteria import (
    Criterion,
    check_setup_documented,
    contract_differences,
    run_status,
    summarize_criteria,
)
from aigw.evidence.html_export import export_html, run_html_path
from aigw.evidence.reading import notebook_status, read_checks
from aigw.evidence.summary import MANIFEST, shortened, summary_markdown, why
from aigw.paths import repo_root
from aigw.redaction import configured_secrets, redact_value
from aigw.secrets_scan import Finding, scan_paths, scan_text

if TYPE_CHECKING:
    from aigw.config import Settings
    from aigw.signing import Ed25519PrivateKey

__all__ = ["MANIFEST", "Bundle", "own_files", "seal_bundle"]

_TOOLS: Final = ("aigw-runbook", "papermill", "nbclient", "nbconvert", "nbformat", "ipykernel", "jupyter_client",
                 "httpx", "cloudflare", "starlette", "uvicorn", "cryptography")


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


def _retries(checks: Sequence[Check], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = dict(extra or {})
    for check in checks:
        if check.check == "retries":
            # A notebook recorded before checks had ``data`` keeps its statistics as text in ``detail``.
            found[check.notebook or "run"] = dict(check.data) if check.data is not None else check.detail
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
        lines += [f"{c.number:<2} {c.status:<10} {c.title}" + (f" ({shortened(c.reason)})" if c.reason else "")
                  for c in self.criteria]
        return "\n".join(lines)


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
        checks += [dataclasses.replace(c, notebook=path.stem, prompt=None) for c in read_checks(nb)]
        html_path = run_html_path(folder, path)
        if path.resolve() not in done or not html_path.is_file():
            export_html(nb, html_path, title=f"{path.stem} — run {run_id}")
        notebook_docs.append({"name": path.stem, "file": path.name, "html": html_path.name,
                              "status": notebook_status(nb)})
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
            "parameters": redact_value(dict(parameters), known),
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
            "why": why(verdict, criteria, all_checks, failed, quarantined) or None,
            "contract_differences": contract_differences(all_checks, settings.gateway_id if settings else None),
            "sealed_at": utc_now(),
        }
        doc = redact_value(doc, known)
        (folder / "evidence.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shown = [dataclasses.replace(c, check=redact(c.check, known), detail=redact(c.detail, known),
                                     data=redact_value(c.data, known) if c.data is not None else None)
                 for c in all_checks]
        summary = summary_markdown(doc, criteria, shown, quarantined)
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
        "finished_at": utc_now(),
        "git_commit": commit,
        "git_dirty": dirty,
        "requirements": requirement_hashes(root),
        "notebooks": {stem: file_sha256(source) for stem in ran_with
                      if (source := root / "notebooks" / f"{stem}.ipynb").is_file()},
        "parameters": redact_value({"operator": dict(parameters), "notebooks": ran_with}, known),
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
                    why(verdict, criteria, all_checks, failed, quarantined))
    if leaks:
        names = ", ".join(sorted({q["file"] for q in quarantined}))
        raise EvidenceError(
            f"a configured secret value was found in {names}; the file(s) were deleted from {folder}",
            hint="Find where the notebook prints or stores it (never pass a secret as a parameter) and run again",
        )
    return bundle
