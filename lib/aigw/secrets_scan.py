"""Find secrets in files: every configured secret value, and the shapes of common keys.

A finding names the file, the line (or the notebook cell and part), what was found and a masked
preview of at most four characters (``sk-a…``); it never holds the secret itself. Notebooks are read
as notebooks: cell sources, outputs, cell metadata and the notebook's metadata (where papermill
keeps its parameters) are all searched; embedded images are skipped for key shapes.

``aigw scan-secrets PATH...`` (``aigw.cli.scan_from_args``) prints the findings and exits 1 when there are any.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aigw.config import PROVIDER_KEY_VARS, Secret

__all__ = [
    "KEY_SHAPES",
    "SECRET_VARIABLES",
    "SHARED_RUN",
    "Finding",
    "find_key_shapes",
    "looks_like_key",
    "mask",
    "scan_paths",
    "scan_text",
    "secrets_from_environ",
    "shares_secret",
]

#: The variables whose values are secrets (the rest of the settings are not).
SECRET_VARIABLES: Final = ("CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN", *PROVIDER_KEY_VARS.values(),
                           "AIGW_LOGPUSH_SECRET_ACCESS_KEY")

_TOKEN_CHARS = r"A-Za-z0-9_\-"
#: Common key shapes, most specific first (an Anthropic key is also an ``sk-`` key).
KEY_SHAPES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("anthropic-key shape", re.compile(rf"sk-ant-[{_TOKEN_CHARS}]{{20,}}")),
    ("openai-key shape", re.compile(rf"sk-(?!ant-)[{_TOKEN_CHARS}]{{20,}}")),
    ("google-key shape", re.compile(rf"AIza[{_TOKEN_CHARS}]{{35}}(?![{_TOKEN_CHARS}])")),
    # A PEM private key (07's Logpush key pair lives in a file; its text must never reach an output).
    ("private-key shape", re.compile(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----")),
    # Cloudflare API tokens are 40 URL-safe characters. A git commit (40 lowercase hex) has the same
    # length, so a token must mix upper case, lower case and digits to count.
    (
        "cloudflare-token shape",
        re.compile(
            rf"(?<![{_TOKEN_CHARS}])(?=[{_TOKEN_CHARS}]*[A-Z])(?=[{_TOKEN_CHARS}]*[a-z])(?=[{_TOKEN_CHARS}]*[0-9])"
            rf"[{_TOKEN_CHARS}]{{40}}(?![{_TOKEN_CHARS}])"
        ),
    ),
)
_DATA_URI: Final = re.compile(r"data:[\w.+-]+/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+")
_SKIP_DIRS: Final = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"})
_MAX_BYTES: Final = 50 * 1024 * 1024


def mask(value: str, keep: int = 4) -> str:
    """At most ``keep`` (<= 4) leading characters and an ellipsis: enough to recognise, never to use."""
    keep = max(0, min(keep, 4, len(value) // 4))
    return f"{value[:keep]}…"


@dataclass(frozen=True)
class Finding:
    """One secret (or key-shaped string) found. Holds no secret: ``preview`` is masked."""

    path: str
    location: str
    kind: str
    preview: str

    def __str__(self) -> str:
        return f"{self.path}: {self.location}: {self.kind} ({self.preview})"


def looks_like_key(text: str) -> str | None:
    """The kind of key ``text`` looks like, or None."""
    for kind, pattern in KEY_SHAPES:
        if pattern.search(text):
            return kind
    return None


#: A value holding this many characters of a secret in a row carries most of it (a secret minus one
#: character is still the secret to anyone who tries 64 endings).
SHARED_RUN: Final = 12


def shares_secret(text: str, secrets: Iterable[Secret], run: int = SHARED_RUN) -> Secret | None:
    """The first of ``secrets`` that ``text`` shares ``run`` or more characters in a row with (a secret
    shorter than ``run``: the whole of it, when 8 characters or more, or ``text`` equal to it); None."""
    for secret in secrets:
        value = secret.reveal()
        if len(value) < run:
            if value and (value == text or (len(value) >= 8 and value in text)):
                return secret
        elif any(value[start:start + run] in text for start in range(len(value) - run + 1)):
            return secret
    return None


def find_key_shapes(text: str) -> Iterator[tuple[str, str]]:
    """``(kind, match)`` for each key-shaped string in ``text`` (embedded base64 images skipped)."""
    text = _DATA_URI.sub(" ", text)
    seen: set[tuple[int, int]] = set()
    for kind, pattern in KEY_SHAPES:
        for match in pattern.finditer(text):
            span = match.span()
            if any(start <= span[0] < end for start, end in seen):
                continue
            seen.add(span)
            yield kind, match.group(0)


def _variants(value: str) -> set[str]:
    """How a value may be written in a file: as is, JSON-escaped, HTML-escaped."""
    return {value, json.dumps(value)[1:-1], html.escape(value), html.escape(json.dumps(value)[1:-1])}


@dataclass(frozen=True)
class _Needle:
    name: str
    forms: frozenset[str]
    preview: str


def _needles(secrets: Iterable[Secret | str]) -> list[_Needle]:
    needles: dict[str, _Needle] = {}
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        name = secret.name if isinstance(secret, Secret) else "secret"
        # Very short values would match everywhere; config never has such secrets.
        if len(value) < 8 or value in needles:
            continue
        needles[value] = _Needle(name, frozenset(_variants(value)), mask(value))
    return list(needles.values())


def scan_text(
    text: str, secrets: Iterable[Secret | str] = (), *, shapes: bool = True, where: str = "text"
) -> list[Finding]:
    """Findings in one string; ``where`` names it (``path``). Locations are line numbers."""
    return _scan_text(text, _needles(secrets), shapes=shapes, path=where, prefix="")


def _scan_text(text: str, needles: list[_Needle], *, shapes: bool, path: str, prefix: str) -> list[Finding]:
    found: list[Finding] = []
    for needle in needles:
        for form in needle.forms:
            index = text.find(form)
            if index >= 0:
                line = text.count("\n", 0, index) + 1
                found.append(Finding(path, f"{prefix}line {line}", f"value of {needle.name}", needle.preview))
                break
    if shapes:
        reported = {f.preview for f in found}
        for kind, match in find_key_shapes(text):
            preview = mask(match)
            if preview in reported:
                continue
            reported.add(preview)
            line = text.count("\n", 0, text.find(match)) + 1
            found.append(Finding(path, f"{prefix}line {line}", kind, preview))
    return found


def _output_text(output: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for key in ("text", "ename", "evalue"):
        value = output.get(key)
        if value:
            parts.append("".join(value) if isinstance(value, list) else str(value))
    if output.get("traceback"):
        parts.append("\n".join(output["traceback"]))
    for mime, data in (output.get("data") or {}).items():
        if mime.startswith("image/") and mime != "image/svg+xml":
            continue
        parts.append(json.dumps(data) if not isinstance(data, str | list) else "".join(data))
    parts.append(json.dumps(output.get("metadata") or {}))
    return "\n".join(parts)


def _scan_notebook(nb: Mapping[str, Any], needles: list[_Needle], *, shapes: bool, path: str) -> list[Finding]:
    found: list[Finding] = []
    found += _scan_text(json.dumps(nb.get("metadata") or {}, indent=1), needles, shapes=shapes, path=path,
                        prefix="notebook metadata ")
    for index, cell in enumerate(nb.get("cells") or []):
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else str(source)
        found += _scan_text(source, needles, shapes=shapes, path=path, prefix=f"cell {index} source ")
        found += _scan_text(json.dumps(cell.get("metadata") or {}, indent=1), needles, shapes=shapes, path=path,
                            prefix=f"cell {index} metadata ")
        for n, output in enumerate(cell.get("outputs") or []):
            found += _scan_text(_output_text(output), needles, shapes=shapes, path=path,
                                prefix=f"cell {index} output {n} ")
        for name, attachment in (cell.get("attachments") or {}).items():
            found += _scan_text(json.dumps(attachment), needles, shapes=False, path=path,
                                prefix=f"cell {index} attachment {name} ")
    return found


def _files(paths: Iterable[Path | str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not _SKIP_DIRS.intersection(child.relative_to(path).parts):
                    yield child
        elif path.is_file():
            yield path


def scan_paths(
    paths: Iterable[Path | str], secrets: Iterable[Secret | str] = (), *, shapes: bool = True
) -> list[Finding]:
    """Every finding in ``paths`` (files, or folders searched recursively).

    **Parameters:**
    * paths - files and folders; ``.git``, ``.venv`` and caches inside folders are skipped.
    * secrets - the configured secret values to look for (any encoding a file may hold: raw, JSON, HTML).
    * shapes - also report strings shaped like OpenAI / Anthropic / Google keys and Cloudflare tokens.
    """
    needles = _needles(secrets)
    found: list[Finding] = []
    for path in _files(paths):
        shown = str(path)
        data = path.read_bytes()[:_MAX_BYTES]
        if b"\x00" in data[:8192]:
            for needle in needles:
                if any(form.encode() in data for form in needle.forms):
                    found.append(Finding(shown, "binary", f"value of {needle.name}", needle.preview))
            continue
        text = data.decode("utf-8", errors="replace")
        if path.suffix == ".ipynb":
            try:
                nb = json.loads(text)
            except ValueError:
                nb = None
            if isinstance(nb, dict):
                in_notebook = _scan_notebook(nb, needles, shapes=shapes, path=shown)
                # A value in a part the reader does not visit still counts.
                found += in_notebook or _scan_text(text, needles, shapes=False, path=shown, prefix="raw ")
                continue
        found += _scan_text(text, needles, shapes=shapes, path=shown, prefix="")
    return found


def secrets_from_environ(env: Mapping[str, str]) -> list[Secret]:
    """The secret values among ``env`` (the variables of ``SECRET_VARIABLES`` that are set)."""
    return [Secret(env[name], name) for name in SECRET_VARIABLES if env.get(name)]
