"""Who may use the admin API (``/__twin__``): a loopback client, naming the twin itself, with its token.

A web page in the user's browser can reach ``127.0.0.1:8787`` too: a ``text/plain`` POST needs no CORS
preflight (CSRF), and a name the attacker's DNS points at 127.0.0.1 passes a client-address check (DNS
rebinding). So besides the loopback client address, a request must:

* name the twin itself in ``Host``: a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``, or the
  address the twin listens on) and the port it listens on;
* carry no foreign ``Origin`` (a browser sends one on every cross-site POST; ``null`` is foreign too);
* send the twin's admin token in the ``cftwin-admin-token`` header (a browser cannot add it without a
  preflight the twin never answers, and a page cannot read it): a random value made per twin start and
  written, mode 0600, beside the state (``<state>.admin-token``) or where ``--admin-token-file`` says;
* send a body, if any, as ``application/json`` (the one media type of the admin API).

Every client of the admin API (tests, bench, the runbook's background twin) reads the token with
``read_admin_token`` and sends ``admin_headers(token)``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from starlette.responses import JSONResponse

from cftwin.validation import is_loopback_host

__all__ = [
    "ADMIN_TOKEN_HEADER",
    "admin_error",
    "admin_headers",
    "admin_refusal",
    "admin_token_path",
    "new_admin_token",
    "read_admin_token",
    "write_admin_token",
]

ADMIN_TOKEN_HEADER: Final = "cftwin-admin-token"
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def new_admin_token() -> str:
    return secrets.token_urlsafe(32)


def admin_headers(token: str) -> dict[str, str]:
    return {ADMIN_TOKEN_HEADER: token}


def admin_token_path(state: str | Path) -> Path | None:
    """Where a twin serving ``state`` writes its admin token by default (None for ``:memory:``)."""
    return None if str(state) == ":memory:" else Path(f"{state}.admin-token")


def write_admin_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, mode 0600 from the first byte, replacing any earlier one atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_admin_token(path: Path) -> str | None:
    """The token a twin wrote to ``path``; None when there is none."""
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _split_host(value: str) -> tuple[str, int | None]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    try:
        return host.lower(), int(port_text) if port_text else None
    except ValueError:
        return host.lower(), -1


def _names_the_twin(host_port: str, server: tuple[str, int] | None, default_port: int) -> bool:
    host, port = _split_host(host_port)
    if server is None:
        return False
    listening_host, listening_port = str(server[0]).lower(), int(server[1])
    if not (is_loopback_host(host) or host == listening_host):
        return False
    return (port if port is not None else default_port) == listening_port


def admin_error(status: int, message: str) -> JSONResponse:
    """The admin API's error answer: ``{"error": "<one line>"}``."""
    return JSONResponse({"error": message}, status_code=status)


def admin_refusal(method: str, headers: Mapping[str, str], server: tuple[str, int] | None,
                  token: str) -> tuple[int, str] | None:
    """Why an admin request from a loopback client is refused, ``(status, one line)``; None: allowed.

    ``headers`` are the request's (lowercase names); ``server`` is where the twin listens (ASGI's).
    """
    host = headers.get("host", "")
    if not _names_the_twin(host, server, 80):
        return 403, "the admin API answers requests to the twin's own loopback address and port only (Host)"
    origin = headers.get("origin")
    if origin is not None:
        scheme, _, rest = origin.partition("://")
        if scheme != "http" or not _names_the_twin(rest.rstrip("/"), server, 80):
            return 403, "the admin API refuses requests from another origin (Origin)"
    sent = headers.get(ADMIN_TOKEN_HEADER, "")
    if not sent or not secrets.compare_digest(sent.encode(), token.encode()):
        return 401, (f"the admin API needs the twin's admin token in the {ADMIN_TOKEN_HEADER} header "
                     "(written beside the state, or to --admin-token-file)")
    has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
    if method.upper() in _BODY_METHODS and has_body:
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return 415, "the admin API takes application/json bodies only (Content-Type)"
    return None
