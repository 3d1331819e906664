"""Checking a sealed bundle from the library and the CLI (``aigw verify-evidence``); the checks themselves
are ``aigw.verify``'s."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["verify_bundle", "verify_from_args"]


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
