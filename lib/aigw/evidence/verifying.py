"""Is a sealed bundle what its run produced, and does it say what its notebooks show? (``verify_bundle``,
``verify_evidence``; ``aigw verify-evidence`` is ``aigw.cli``'s adapter over them.)

In order, each failure one line (``EvidenceError``) naming what is wrong:

1. **Authenticity** (with ``--key``): the DSSE envelope ``provenance.dsse.json`` carries a signature of that
   key over its payload. Without a key an unsigned envelope proves integrity only: anyone who can rewrite
   the files can re-seal them.
2. **Integrity**: every file is a subject of the Statement with the same sha256, and none is added or
   missing; then the same against ``manifest.json``.
3. **Meaning**: every check is re-read from the executed notebooks and must be the one ``evidence.json``
   lists (criterion, name, status, detail, data, cell); a cell that stopped on ``CheckFailed`` must hold that
   check as failed; each notebook's status, each criterion and a passing verdict are re-derived; the hosts
   of ``hosts.json``, ``evidence.json`` and the Statement agree and do not contradict the target; and
   ``SUMMARY.md`` states the same status, criteria and checks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aigw.errors import EvidenceError

if TYPE_CHECKING:
    from aigw.signing import Ed25519PublicKey

__all__ = ["Verified", "verify_bundle", "verify_evidence"]

_PASSING: Final = frozenset({"passed", "rehearsal-passed"})
_CHECK_FAILED: Final = re.compile(r"^(?:criterion \d+ )?check failed: (?P<rest>.*)$", re.S)
# SUMMARY.md's status line: "**Status: REHEARSAL-PASSED** (...)" (the word upper-cased for the reader).
_SUMMARY_STATUS: Final = re.compile(r"\*\*Status:\s*([A-Za-z-]+)\*\*")
_SUMMARY_ROW: Final = re.compile(r"^\|\s*(\d)\s*\|[^|]*\|([^|]*)\|", re.M)
_SUMMARY_CHECK: Final = re.compile(r"^\* .*?\*\*(PASS|FAIL|SKIP)\*\*", re.M)


@dataclass(frozen=True)
class Verified:
    """What a bundle proved: its files, whether it is signed, and by whom (when ``--key`` checked it)."""

    files: tuple[str, ...]
    signed: bool
    verified_key: str | None
    target: str
    hosts_target: str

    def lines(self, folder: Path) -> list[str]:
        out = [f"aigw: {folder}: all {len(self.files)} files match the provenance's digests and the manifest; "
               f"the checks, criteria and status agree with the notebooks; target {self.target} agrees with "
               f"the hosts ({self.hosts_target})"]
        if self.verified_key is not None:
            out.append(f"aigw: signed by key {self.verified_key[:16]}: authentic")
        elif self.signed:
            out.append("aigw: signed, but the signature was not checked (pass --key PUB): integrity only, "
                       "not authenticity")
        else:
            out.append("aigw: unsigned: integrity only, not authenticity")
        return out


def _fail(message: str, hint: str | None = "The evidence was altered after sealing; re-run `aigw run` for "
                                            "fresh evidence") -> EvidenceError:
    return EvidenceError(message, hint=hint)


def _integrity(folder: Path, statement: Mapping[str, Any]) -> list[str]:
    from aigw.evidence.sealing import MANIFEST
    from aigw.provenance import ATTESTATION, bundle_subjects, compare_files, subject_digests

    present = bundle_subjects(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise _fail(f"{folder}: missing: {MANIFEST}", hint="Seal it with `aigw run`, or check the path")
    try:
        listed: Mapping[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(f"{folder}: changed: {MANIFEST} (not a valid manifest: {type(exc).__name__})") from None
    against_statement = compare_files(subject_digests(statement), present)
    against_manifest = compare_files(listed, {name: digest for name, digest in present.items() if name != MANIFEST})
    manifest_as_sealed = subject_digests(statement).get(MANIFEST) == present.get(MANIFEST)
    if against_statement and not against_manifest and manifest_as_sealed:
        # The files agree with the manifest; only the Statement's digests differ: the envelope was edited.
        raise _fail(f"{folder}: changed: {ATTESTATION} (its digests — {'; '.join(against_statement)} — differ "
                    "from the files, which match the manifest)")
    if against_statement:
        raise _fail(f"{folder} does not match its provenance — {'; '.join(against_statement)}")
    if against_manifest:
        raise _fail(f"{folder} does not match its manifest — {'; '.join(against_manifest)}")
    return sorted(present)


def _load_json(folder: Path, name: str) -> dict[str, Any]:
    try:
        doc = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _fail(f"{name} is missing or not JSON") from None
    if not isinstance(doc, dict):
        raise _fail(f"{name} is not a JSON object")
    return doc


def _check_key(check: Mapping[str, Any]) -> tuple[Any, ...]:
    return (check.get("criterion"), check.get("check"), check.get("status"), check.get("detail"), check.get("cell"),
            check.get("subject"), check.get("data"))


def _failed_checks_raised(nb: Any) -> list[tuple[int, str]]:
    """``(cell, error text)`` of each cell that stopped on ``CheckFailed``."""
    raised: list[tuple[int, str]] = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "CheckFailed":
                raised.append((index, str(output.get("evalue", ""))))
    return raised


def _notebooks(folder: Path, doc: Mapping[str, Any]) -> list[Any]:
    """Re-read each notebook's checks; ``EvidenceError`` where evidence.json disagrees. The checks read."""
    import nbformat

    from aigw.evidence.checks import Check
    from aigw.evidence.reading import notebook_status, read_checks

    listed = [n for n in doc.get("notebooks") or [] if isinstance(n, Mapping)]
    names = {str(n.get("file")) for n in listed}
    for path in sorted(folder.glob("*.ipynb")):
        if path.name not in names:
            raise _fail(f"{path.name} is in the bundle but not in evidence.json")
    recorded = [c for c in doc.get("checks") or [] if isinstance(c, Mapping)]
    stems = {str(n.get("name")) for n in listed}
    stray = sorted({str(c.get("notebook")) for c in recorded if c.get("notebook") is not None} - stems)
    if stray:
        raise _fail(f"evidence.json lists checks of {', '.join(stray)}, which is not among its notebooks")
    checks: list[Check] = []
    for entry in listed:
        stem, status = str(entry.get("name")), str(entry.get("status"))
        if status == "quarantined":
            # The file held a secret and was deleted at sealing: its checks can only be taken as listed.
            if (folder / str(entry.get("file"))).exists():
                raise _fail(f"evidence.json says {stem} was quarantined, but its file is in the bundle")
            checks += [_as_check(c) for c in recorded if c.get("notebook") == stem]
            continue
        path = folder / str(entry.get("file"))
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        actual = notebook_status(nb)
        if actual != status:
            raise _fail(f"evidence.json says {stem} {status}, the notebook shows it {actual}")
        mine = read_checks(nb)
        shown = [c for c in recorded if c.get("notebook") == stem]
        read = [{**c.payload(), "cell": c.cell} for c in mine]
        if len(shown) != len(read):
            raise _fail(f"evidence.json lists {len(shown)} checks of {stem}, the notebook records {len(read)}")
        for claimed, found in zip(shown, read, strict=True):
            if _check_key(claimed) != _check_key(found):
                raise _fail(f"evidence.json disagrees with {stem} cell {found['cell']}: check {found['check']!r} "
                            f"is {claimed.get('status')} there, {found['status']} in the notebook")
        for cell, text in _failed_checks_raised(nb):
            match = _CHECK_FAILED.match(text)
            rest = match.group("rest") if match else text
            named = [c for c in mine if c.cell == cell and rest.startswith(f"{c.check}: ")]
            if named and not any(c.status == "fail" for c in named):
                raise _fail(f"{stem} cell {cell} stopped on a failed check {named[0].check!r}, which the "
                            f"notebook's output records as {named[0].status}")
        checks += [dataclasses.replace(c, notebook=stem) for c in mine]
    return checks


def _as_check(entry: Mapping[str, Any]) -> Any:
    """A check as evidence.json lists it (an unknown status counts as a failure, as ``read_checks`` does)."""
    from aigw.evidence.checks import Check, Status

    status: Status = "pass" if entry.get("status") == "pass" else "skip" if entry.get("status") == "skip" else "fail"
    notebook = entry.get("notebook")
    subject = entry.get("subject")
    data = entry.get("data")
    return Check(entry.get("criterion"), str(entry.get("check")), status, str(entry.get("detail", "")),
                 str(entry.get("time", "")), str(notebook) if notebook is not None else None, entry.get("cell"),
                 subject=str(subject) if subject is not None else None,
                 data=data if isinstance(data, Mapping) else None)


def _criteria(doc: Mapping[str, Any], checks: Sequence[Any]) -> None:
    from aigw.evidence.criteria import summarize_criteria

    repository = [_as_check(c) for c in doc.get("checks") or [] if isinstance(c, Mapping) and c.get("notebook") is None]
    derived = {c.number: c.status for c in summarize_criteria([*checks, *repository])}
    claimed = {c.get("number"): c.get("status") for c in doc.get("criteria") or [] if isinstance(c, Mapping)}
    for number, status in derived.items():
        if claimed.get(number) != status:
            raise _fail(f"evidence.json says criterion {number} {claimed.get(number)}, the notebooks show {status}")
    failed = [n.get("name") for n in doc.get("notebooks") or [] if isinstance(n, Mapping)
              and n.get("status") != "completed"]
    if doc.get("status") in _PASSING:
        short = [f"criterion {n} {s}" for n, s in derived.items() if s != "pass"]
        short += [f"{name} not completed" for name in failed]
        if short:
            raise _fail(f"evidence.json says {doc.get('status')}, but the notebooks show {', '.join(short)}")


def _hosts(folder: Path, doc: Mapping[str, Any], predicate: Mapping[str, Any]) -> str:
    from aigw.hosts import HOSTS_FILE, derive_target

    hosts_doc = _load_json(folder, HOSTS_FILE)
    hosts = hosts_doc.get("hosts") or {}
    if not isinstance(hosts, Mapping):
        raise _fail(f"{HOSTS_FILE} holds no hosts object")
    if doc.get("hosts") != hosts or predicate.get("hosts") != hosts:
        raise _fail(f"the hosts of {HOSTS_FILE}, evidence.json and the provenance differ")
    shown = derive_target(hosts)
    target = doc.get("target")
    if predicate.get("target") != target:
        raise _fail(f"evidence.json says target {target}, the provenance {predicate.get('target')}")
    allowed = bool(doc.get("allow_custom_endpoints"))
    if allowed != bool(predicate.get("allow_custom_endpoints")):
        raise _fail("evidence.json and the provenance differ on --allow-custom-endpoints")
    production = bool(doc.get("production_evidence"))
    if production != bool(predicate.get("production_evidence", production)):
        raise _fail("evidence.json and the provenance differ on production_evidence")
    if production and (target != "cloudflare" or shown != "cloudflare"):
        raise _fail(f"evidence.json claims production evidence, but the run's requests went to {shown} hosts "
                    f"({', '.join(hosts) or 'none'})",
                    hint="Only requests to Cloudflare's hosts are production evidence")
    if doc.get("status") == "passed" and not production:
        raise _fail("evidence.json says passed (production), but the bundle is not production evidence",
                    hint="A rehearsal's best status is rehearsal-passed")
    if target == "twin" and shown not in {"twin", "none"}:
        raise _fail(f"target twin, but the run's requests went to {shown} hosts ({', '.join(hosts)})",
                    hint="A rehearsal talks to loopback only; this bundle is not a rehearsal")
    if target == "cloudflare" and shown != "cloudflare" and not (allowed and shown != "none"):
        where = ", ".join(hosts) or "no host at all"
        raise _fail(f"target cloudflare, but the run's requests went to {where} ({shown}), not Cloudflare's hosts",
                    hint="The target label contradicts where the requests went: this is not production evidence")
    return shown


def _summary(folder: Path, doc: Mapping[str, Any]) -> None:
    try:
        text = (folder / "SUMMARY.md").read_text(encoding="utf-8")
    except OSError:
        raise _fail("SUMMARY.md is missing") from None
    status = _SUMMARY_STATUS.search(text)
    if status is None or status.group(1).lower() != doc.get("status"):
        raise _fail(f"SUMMARY.md says status {status.group(1) if status else 'nothing'}, "
                    f"evidence.json {doc.get('status')}")
    rows = {int(m.group(1)): m.group(2) for m in _SUMMARY_ROW.finditer(text)}
    for criterion in doc.get("criteria") or []:
        cell = rows.get(int(criterion.get("number", 0)), "")
        if str(criterion.get("status")) not in cell:
            raise _fail(f"SUMMARY.md shows criterion {criterion.get('number')} as {cell.strip() or 'nothing'}, "
                        f"evidence.json as {criterion.get('status')}")
    section = text.split("## Checks", 1)[1] if "## Checks" in text else ""
    section = section.split("\n## ", 1)[0]
    shown = Counter(m.group(1).lower() for m in _SUMMARY_CHECK.finditer(section))
    listed = Counter(str(c.get("status")) for c in doc.get("checks") or [] if isinstance(c, Mapping))
    if shown != listed:
        raise _fail(f"SUMMARY.md lists checks {dict(sorted(shown.items()))}, evidence.json "
                    f"{dict(sorted(listed.items()))}")


def verify_evidence(run_dir: str | Path, public_key: Ed25519PublicKey | None = None) -> Verified:
    """Check ``run_dir`` (see the module docstring); ``EvidenceError`` names the first thing wrong."""
    from aigw.provenance import read_attestation

    folder = Path(run_dir)
    if not folder.is_dir():
        raise EvidenceError(f"{folder} is not a folder", hint="Pass the run folder `aigw run` printed")
    statement, opened = read_attestation(folder, public_key)
    files = _integrity(folder, statement)
    doc = _load_json(folder, "evidence.json")
    predicate: Mapping[str, Any] = statement["predicate"]
    if predicate.get("run_id") != doc.get("run_id") or predicate.get("status") != doc.get("status"):
        raise _fail("evidence.json and the provenance name a different run or status")
    checks = _notebooks(folder, doc)
    _criteria(doc, checks)
    shown = _hosts(folder, doc, predicate)
    _summary(folder, doc)
    return Verified(tuple(files), opened.signed, opened.verified_key, str(doc.get("target")), shown)


def verify_bundle(run_dir: str | os.PathLike[str], public_key: Ed25519PublicKey | None = None) -> list[str]:
    """Check ``run_dir``: its signature (with ``public_key``), its files against the provenance and the manifest,
    and what evidence.json and SUMMARY.md say against its notebooks (``verify_evidence``). ``EvidenceError``
    names the first thing wrong; otherwise the files, by path in the run folder."""
    return list(verify_evidence(Path(run_dir), public_key).files)
