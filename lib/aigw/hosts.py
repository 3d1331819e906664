"""Where the requests went: every host the run's HTTP clients talked to, counted, and what that makes the target.

* ``count_request`` is an httpx ``request`` event hook (``EVENT_HOOKS``): the v4 API client and the prober
  install it, so every attempt (retries too) is counted by ``host[:port]``; never a path, query or header.
* A kernel cannot hand its counts back to ``aigw run``: when ``AIGW_RUN_DIR`` is set, each process keeps
  a log in ``<run dir>/.hosts/<pid>-<random>.log`` (a line per request, appended), and ``collect_hosts``
  merges them into the bundle's ``hosts.json`` when sealing.
* ``host_kind``: loopback is ``twin``; ``api.cloudflare.com`` and ``gateway.ai.cloudflare.com`` are
  ``cloudflare``; the providers' own API hosts are ``provider``; anything else is ``custom``.
  ``derive_target`` reads the target off the hosts (providers left aside: a real run calls them directly
  to measure the gateway's overhead).
* ``check_endpoints``: a twin session talks to loopback only; a Cloudflare session to Cloudflare's hosts
  unless custom endpoints were allowed explicitly. One line, before anything runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _random
import shutil
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from aigw.errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from aigw.config import Settings

__all__ = [
    "CLOUDFLARE_HOSTS",
    "EVENT_HOOKS",
    "HOSTS_FILE",
    "PROVIDER_HOSTS",
    "HostKind",
    "check_endpoints",
    "collect_hosts",
    "count_request",
    "count_url",
    "derive_target",
    "endpoint_urls",
    "host_kind",
    "hosts_line",
]

HostKind = Literal["twin", "cloudflare", "provider", "custom"]
#: Cloudflare's hosts for the v4 API and the AI Gateway data plane.
CLOUDFLARE_HOSTS: Final = frozenset({"api.cloudflare.com", "gateway.ai.cloudflare.com"})
#: The providers' own API hosts (the prober calls them directly for the overhead comparison).
PROVIDER_HOSTS: Final = frozenset({"api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"})
HOSTS_FILE: Final = "hosts.json"
_PARTS_DIR: Final = ".hosts"
#: Set by ``aigw run --allow-custom-endpoints`` for its kernels.
ALLOW_CUSTOM_VAR: Final = "AIGW_ALLOW_CUSTOM_ENDPOINTS"

_lock = threading.Lock()
_counts: dict[str, Counter[str]] = {}
# One name per process: a kernel's pid may be reused by a later kernel of the same run.
_part_name = f"{os.getpid()}-{_random.token_hex(4)}.log"
_logs: dict[str, int] = {}


def _hostname(host: str) -> str:
    """``host`` without its port (``[::1]:80`` gives ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_kind(host: str) -> HostKind:
    """What ``host`` (``name[:port]``) is: ``twin`` (loopback), ``cloudflare``, ``provider`` or ``custom``."""
    name = _hostname(host).lower().rstrip(".")
    if name in {"localhost", "::1"} or name.startswith("127."):
        return "twin"
    if name in CLOUDFLARE_HOSTS:
        return "cloudflare"
    if name in PROVIDER_HOSTS:
        return "provider"
    return "custom"


def _url_host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def derive_target(hosts: Mapping[str, Any]) -> str:
    """The target the recorded hosts show: ``twin``, ``cloudflare``, ``custom`` (a mix, or another host),
    or ``none`` when no request was recorded. Provider hosts do not count either way."""
    kinds = {host_kind(host) for host in hosts} - {"provider"}
    if not kinds:
        return "none"
    if len(kinds) == 1:
        return next(iter(kinds))
    return "custom"


def count_url(url: str) -> None:
    """Count one request to ``url`` (for the few plain ``httpx.get`` calls that have no client)."""
    _count(_url_host(url))


def count_request(request: httpx.Request) -> None:
    """The httpx ``request`` event hook: count the request's ``host[:port]``."""
    host = request.url.host
    if ":" in host:
        host = f"[{host}]"
    _count(f"{host}:{request.url.port}" if request.url.port else host)


#: ``httpx.Client(event_hooks=EVENT_HOOKS)``.
EVENT_HOOKS: Final[Mapping[str, list[Any]]] = {"request": [count_request], "response": []}


def _count(host: str) -> None:
    run_dir = os.environ.get("AIGW_RUN_DIR", "")
    with _lock:
        _counts.setdefault(run_dir, Counter())[host] += 1
        if not run_dir:
            return
        try:
            fd = _logs.get(run_dir)
            if fd is None:
                folder = Path(run_dir) / _PARTS_DIR
                folder.mkdir(parents=True, exist_ok=True)
                fd = _logs[run_dir] = os.open(folder / _part_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            # One line per request, one write: a kernel that dies keeps every line written before (measured:
            # ~6 us a request; rewriting a JSON file each time took ~2 ms).
            os.write(fd, f"{host}\n".encode())
        except OSError:
            # Counting must never break a request; a missing line shows as a gap in hosts.json.
            return


def counts_in_process(run_dir: str = "") -> dict[str, int]:
    """This process's counts for ``run_dir`` (``""``: requests made outside any run)."""
    with _lock:
        return dict(_counts.get(run_dir, Counter()))


def collect_hosts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Merge every process's counts (``.hosts/*.json``) into ``hosts.json`` and remove them; the merged
    ``{host: {"requests": n, "kind": ...}}``. A ``hosts.json`` from an earlier sealing is kept and added to."""
    total: Counter[str] = Counter()
    merged = run_dir / HOSTS_FILE
    if merged.is_file():
        try:
            for host, entry in json.loads(merged.read_text(encoding="utf-8")).get("hosts", {}).items():
                total[str(host)] += int(entry.get("requests", 0))
        except (ValueError, AttributeError, TypeError):
            pass
    parts = run_dir / _PARTS_DIR
    with _lock:
        # This process's own log of the run is read now; a later request starts a new one.
        for key in [k for k in _logs if k and Path(k).resolve() == run_dir.resolve()]:
            os.close(_logs.pop(key))
    for part in sorted(parts.glob("*.log")) if parts.is_dir() else ():
        with contextlib.suppress(OSError):
            total.update(line for line in part.read_text(encoding="utf-8", errors="replace").splitlines() if line)
    shutil.rmtree(parts, ignore_errors=True)
    hosts = {host: {"requests": count, "kind": host_kind(host)} for host, count in sorted(total.items())}
    doc = {"hosts": hosts, "target": derive_target(hosts)}
    merged.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return hosts


def hosts_line(hosts: Mapping[str, Mapping[str, Any]]) -> str:
    """``127.0.0.1:5000 (twin) 120 requests, ...`` for a reader; ``no request recorded`` when empty."""
    if not hosts:
        return "no request recorded"
    return ", ".join(f"{host} ({entry.get('kind', host_kind(host))}) {entry.get('requests', 0)} requests"
                     for host, entry in hosts.items())


def endpoint_urls(settings: Settings) -> dict[str, str]:
    """The settings' URLs by variable name (the provider one only when set)."""
    urls = {"CLOUDFLARE_API_BASE_URL": settings.api_base_url,
            "CLOUDFLARE_GATEWAY_BASE_URL": settings.gateway_base_url}
    if settings.provider_base_url:
        urls["AIGW_PROVIDER_BASE_URL"] = settings.provider_base_url
    return urls


def endpoint_hosts(settings: Settings) -> dict[str, str]:
    """The settings' hosts by what they serve (``API``, ``gateway``, ``providers``)."""
    urls = endpoint_urls(settings)
    labels = {"CLOUDFLARE_API_BASE_URL": "API", "CLOUDFLARE_GATEWAY_BASE_URL": "gateway",
              "AIGW_PROVIDER_BASE_URL": "providers"}
    hosts = {labels[name]: _url_host(url) for name, url in urls.items()}
    if "providers" not in hosts:
        hosts["providers"] = ", ".join(sorted(PROVIDER_HOSTS))
    return hosts


def check_endpoints(target: str, settings: Settings, *, allow_custom: bool = False) -> None:
    """``ConfigError`` (one line) when the settings' URLs contradict ``target``: a twin session whose URLs
    are not loopback, or a Cloudflare session whose URLs are not Cloudflare's (or, for the providers, the
    providers' own) unless ``allow_custom``."""
    for name, url in endpoint_urls(settings).items():
        host = _url_host(url)
        kind = host_kind(host)
        if target == "twin" and kind != "twin":
            raise ConfigError(
                f"target twin, but {name} is {url} ({host} is not loopback): a rehearsal sends nothing off this "
                "machine",
                hint=f"Unset {name} (the twin's URLs are set for you), or use target cloudflare for a real run",
            )
        wanted: tuple[str, ...] = ("provider",) if name == "AIGW_PROVIDER_BASE_URL" else ("cloudflare",)
        if target == "cloudflare" and kind not in wanted and not allow_custom:
            what = "loopback, a local twin?" if kind == "twin" else "not a Cloudflare host"
            raise ConfigError(
                f"target cloudflare, but {name} is {url} ({host}: {what})",
                hint=f"Unset {name} to reach Cloudflare, rehearse with --target twin, or pass "
                "--allow-custom-endpoints (recorded in the evidence)",
            )
