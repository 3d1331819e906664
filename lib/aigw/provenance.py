"""The bundle's provenance: an in-toto Statement v1 in a DSSE envelope (``provenance.dsse.json``).

* Subjects: every file of the bundle but the envelope itself (``manifest.json`` included), by path
  relative to the run folder, each with its sha256.
* Predicate (``PREDICATE_TYPE``): the run (id, target, status, start and end), the code (git commit, dirty
  state, sha256 of the requirements files and of each notebook's source), every parameter each notebook
  ran with (the operator's ``-p`` and those ``aigw run`` injected, as papermill recorded them in the
  executed notebook), the hosts the run talked to, whether custom endpoints were allowed, and the CI job
  when ``CI`` is set.
* Signed with Ed25519 when a key is given (``aigw.signing``); otherwise the envelope has no signature and
  proves integrity only: anyone can re-make it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aigw.errors import EvidenceError

if TYPE_CHECKING:
    from aigw.signing import Ed25519PrivateKey, Ed25519PublicKey, Opened

__all__ = [
    "ATTESTATION",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "bundle_subjects",
    "ci_job",
    "compare_files",
    "file_sha256",
    "notebook_parameters",
    "read_attestation",
    "requirement_hashes",
    "subject_digests",
    "write_attestation",
]

ATTESTATION: Final = "provenance.dsse.json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://aigw-runbook/provenance/v1"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
REQUIREMENT_FILES: Final = ("requirements.txt", "tests/requirements.txt", "pyproject.toml")
#: What identifies a CI job, per CI system (only the names that are set are recorded).
_CI_VARIABLES: Final = (
    "CI", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB", "GITHUB_SHA", "GITHUB_REF", "CI_PROJECT_PATH", "CI_PIPELINE_ID", "CI_JOB_ID", "CI_JOB_URL",
    "CI_COMMIT_SHA", "BUILDKITE_BUILD_URL", "BUILDKITE_JOB_ID",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requirement_hashes(root: Path) -> dict[str, str]:
    return {name: file_sha256(root / name) for name in REQUIREMENT_FILES if (root / name).is_file()}


def ci_job(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The CI job's identity when ``CI`` is set; None otherwise."""
    env = os.environ if environ is None else environ
    if not env.get("CI"):
        return None
    return {name: env[name] for name in _CI_VARIABLES if env.get(name)}


def notebook_parameters(nb: Any) -> dict[str, Any]:
    """The parameters papermill executed ``nb`` with (injected ones too), from its metadata."""
    papermill = nb.get("metadata", {}).get("papermill", {}) if isinstance(nb, Mapping) else {}
    parameters = papermill.get("parameters") if isinstance(papermill, Mapping) else None
    return dict(parameters) if isinstance(parameters, Mapping) else {}


def bundle_subjects(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of the bundle but the envelope."""
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ATTESTATION}


def write_attestation(folder: Path, predicate: Mapping[str, Any], key: Ed25519PrivateKey | None) -> dict[str, Any]:
    """Write ``provenance.dsse.json`` over the bundle's files as they are now; the Statement."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in bundle_subjects(folder).items()],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }
    from aigw.signing import seal_envelope

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    envelope = seal_envelope(payload, PAYLOAD_TYPE, key)
    (folder / ATTESTATION).write_text(_envelope_text(envelope), encoding="utf-8")
    return statement


def _envelope_text(envelope: Mapping[str, Any]) -> str:
    return json.dumps(envelope, indent=2) + "\n"


def read_attestation(folder: Path, public_key: Ed25519PublicKey | None = None) -> tuple[dict[str, Any], Opened]:
    """The Statement of ``folder``'s envelope (its signature checked with ``public_key`` when given)."""
    from aigw.signing import open_envelope

    path = folder / ATTESTATION
    if not path.is_file():
        raise EvidenceError(f"{folder}: missing: {ATTESTATION} (the bundle's provenance)",
                            hint="Seal the run with `aigw run` (which writes it), or check the path")
    try:
        text = path.read_text(encoding="utf-8")
        envelope = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise EvidenceError(f"{ATTESTATION} is not valid JSON (the envelope was altered)") from None
    # Written in one canonical form: any other byte (even in whitespace or in an unsigned key id) is an edit.
    if not isinstance(envelope, dict) or _envelope_text(envelope) != text:
        raise EvidenceError(f"{ATTESTATION} was altered: it is not byte for byte the envelope that was sealed",
                            hint="Fetch the bundle again from where it was sealed")
    opened = open_envelope(envelope, PAYLOAD_TYPE, public_key, name=ATTESTATION)
    try:
        statement = json.loads(opened.payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise EvidenceError(f"{ATTESTATION}: the payload is not an in-toto Statement (not JSON)") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise EvidenceError(f"{ATTESTATION}: the payload is not an in-toto Statement v1")
    if statement.get("predicateType") != PREDICATE_TYPE or not isinstance(statement.get("predicate"), dict):
        raise EvidenceError(f"{ATTESTATION}: predicateType is not {PREDICATE_TYPE}")
    if not isinstance(statement.get("subject"), list):
        raise EvidenceError(f"{ATTESTATION}: the Statement has no subjects")
    return statement, opened


def subject_digests(statement: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for subject in statement.get("subject", []):
        if isinstance(subject, Mapping) and isinstance(subject.get("digest"), Mapping):
            found[str(subject.get("name"))] = str(subject["digest"].get("sha256", ""))
    return found


def compare_files(listed: Mapping[str, str], present: Mapping[str, str]) -> list[str]:
    """``["changed: a", "missing: b", "added: c"]`` between ``listed`` digests and ``present`` ones."""
    added = sorted(set(present) - set(listed))
    missing = sorted(set(listed) - set(present))
    changed = sorted(name for name in set(listed) & set(present) if present[name] != listed[name])
    return [f"{what}: {', '.join(names)}" for what, names in
            (("changed", changed), ("missing", missing), ("added", added)) if names]

