"""What a notebook's first code cell calls: settings, the target, and (for rehearsal) a local twin.

Notebook conventions (every runbook notebook follows them; ``aigw run`` and the tests rely on them)
--------------------------------------------------------------------------------------------------

1. **Layout.** ``notebooks/NN_name.ipynb``, kernelspec ``python3``, committed **without outputs**
   (a test reads every ``notebooks/*.ipynb``). Build a notebook with nbformat from a throwaway
   script; do not commit the script. Cells: a markdown title saying what the notebook does and which
   contract criteria it proves; the ``parameters`` cell; the session cell; then, per step, a short
   markdown cell (what and why, in ten seconds) and **one library call** per code cell. Logic lives
   in ``aigw.steps.<notebook>``, never in cells. No cell branches on the target.

2. **The parameters cell** is the first code cell, tagged ``parameters``. One assignment per line,
   annotated, with a trailing ``# help`` comment (papermill's ``inspect_notebook`` reads both)::

       gateway_id: str = ""  # empty: CLOUDFLARE_GATEWAY_ID from .dev.vars
       dry_run: bool = False  # plan only, change nothing
       run_id: str = ""  # set by `aigw run`
       run_dir: str = ""  # set by `aigw run`: where evidence goes

   papermill's parser cannot read ``str | None`` (the parameter silently disappears, and ``aigw run``
   then refuses ``-p`` for it): use plain annotations (``str``, ``int``, ``bool``, ``float``,
   ``list[str]``) and a sentinel for "unset" (``""``, ``0``, ``-1``) that the step function maps to
   None. No ``=`` inside the help comment either (papermill then skips the line).
   Every notebook declares ``run_id`` and ``run_dir``. Defaults must be offline-safe (nbval runs the
   source notebooks with their defaults against a twin). **Never a secret as a parameter**:
   papermill writes parameters into the notebook and its metadata. Secrets come from the
   environment / ``.dev.vars`` through ``session.settings``. No derived values in the parameters cell
   (``-p`` would not update them): derive them in a later cell or in the step function.

3. **The session cell** is the second code cell and shows the session (its first output says which
   target, account and gateway the notebook talks to)::

       from aigw import evidence, steps
       from aigw.session import open_session

       session = open_session(run_id=run_id, run_dir=run_dir)
       session

   ``session.settings`` (``aigw.config.Settings``), ``session.client`` (``CloudflareClient``, lazy),
   ``session.prober`` (``GatewayProber``, lazy), ``session.run_dir`` (a ``Path`` that exists: put
   any file you produce there), ``session.run_id``.

4. **Step cells** call one function of ``aigw.steps.<module>`` that takes the session first and
   returns a small result object with ``_repr_markdown_`` (or ``_repr_html_``) and a ``checks`` list
   of ``aigw.evidence.Check``. Leave the result as the cell's last expression so it shows.

5. **Evidence cells** record what a step proved: ``evidence.record_all(result)`` records each check
   (display_data of mimetype ``application/vnd.aigw.check+json``) and raises ``CheckFailed`` when
   one failed, so the notebook stops where the evidence fails. For a single check:
   ``evidence.record(3, "unified endpoint answers 200", "pass", detail)`` (end the line with ``;``
   or assign it, so the returned ``Check`` is not shown twice). ``criterion`` is the contract's
   validation criterion (1-6) or None for a note; ``detail`` is one line (secrets are redacted, but
   never put one there). Record the session's request statistics once at the end with
   ``evidence.record_retries(session)`` if the notebook calls the API (they go in the check's ``data``).

6. **Expected failures are caught inside the step** (papermill fails a run on any error output,
   even in a cell tagged ``raises-exception``). A missing required input is a one-line
   ``aigw.errors`` exception, never ``input()`` (it fails under papermill); ask with an ipywidgets
   ``Password`` only when ``session.interactive`` is true.

Target resolution (``open_session``)
------------------------------------
``AIGW_TARGET`` from the environment (``aigw run`` and the test fixtures set it, with the twin's URLs
and seeded credentials); else ``cloudflare`` when real credentials exist (an account id and API token
that are not placeholders, and an API URL that is not loopback); else ``twin``: a detached
``python -m cftwin serve`` on ``127.0.0.1:8787`` (``AIGW_TWIN_PORT``) with its state and its seed
(``.dev.vars`` values where present, generated ones otherwise; mode 0600) in the user cache dir
(``AIGW_CACHE_DIR``; default ``~/.cache/aigw``), never under outputs/; ``aigw.background_twin`` owns it
(starts it, finds it, checks it is ours, stops it).

Settings come from ``AIGW_ENV_FILE`` when set (``aigw run`` passes the file it chose), from the environment
alone with ``AIGW_NO_ENV_FILE=1`` (a twin run without ``--env-file``), else from the nearest ``.dev.vars``
upwards. Then, before any request, the URLs must fit the target (``aigw.hosts.check_endpoints``): a twin
session talks to loopback only; a Cloudflare one to Cloudflare's hosts unless ``AIGW_ALLOW_CUSTOM_ENDPOINTS=1``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from aigw._http import ClientStats
from aigw.background_twin import ensure_background_twin
from aigw.config import (
    NO_ENV_FILE_VAR,
    PROVIDER_KEY_VARS,
    Settings,
    find_env_file,
    has_real_credentials,
    masked,
    merge_env,
    read_env,
    settings_from_env,
)
from aigw.errors import ConfigError
from aigw.hosts import ALLOW_CUSTOM_VAR, check_endpoints, endpoint_hosts, host_kind
from aigw.notebook_errors import show_errors_as_one_line
from aigw.paths import project_root
from aigw.redaction import use_secrets
from aigw.text import utc_stamp

if TYPE_CHECKING:
    from aigw.cloudflare import CloudflareClient
    from aigw.gateway import GatewayProber

__all__ = [
    "Session",
    "Target",
    "can_ask_user",
    "open_session",
]

Target = Literal["twin", "cloudflare"]
TARGETS: Final = ("twin", "cloudflare")




@dataclass
class Session:
    """What a notebook talks to. Its repr says which target and account, first thing in a notebook."""

    settings: Settings
    target: Target
    run_id: str
    run_dir: Path
    _client: CloudflareClient | None = field(default=None, repr=False)
    _prober: GatewayProber | None = field(default=None, repr=False)
    #: Data-plane requests and retries of every prober of this session (the evidence's ``retries`` note).
    probe_stats: ClientStats = field(default_factory=ClientStats, repr=False)
    #: Where each credential came from: ``.dev.vars``, ``environment``, ``widget``, ``generated for the
    #: rehearsal`` or ``not set`` (names only; the session cell shows it).
    sources: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> CloudflareClient:
        """The v4 API client for this session's settings (made on first use)."""
        if self._client is None:
            from aigw.cloudflare import CloudflareClient

            self._client = CloudflareClient.from_settings(self.settings)
        return self._client

    @property
    def prober(self) -> GatewayProber:
        """The gateway data-plane prober for this session's settings (made on first use)."""
        if self._prober is None:
            from aigw.gateway import GatewayProber

            self._prober = GatewayProber.from_settings(self.settings, run_id=self.run_id, stats=self.probe_stats)
        return self._prober

    @property
    def interactive(self) -> bool:
        """True when a person can answer a prompt now (see ``can_ask_user``)."""
        return can_ask_user()

    def describe(self) -> dict[str, str]:
        """What the session talks to: the hosts first (a label alone proves nothing), then account and run."""
        hosts = endpoint_hosts(self.settings)
        kinds = {host_kind(h) for part, h in hosts.items() if part != "providers"}
        if self.target == "twin":
            where = "local twin: every host below is loopback (checked), nothing leaves this machine"
        elif kinds == {"cloudflare"}:
            where = "Cloudflare (real account; changes are real)"
        else:
            where = "Cloudflare target on custom endpoints (allowed by --allow-custom-endpoints)"
        return {
            "target": f"{self.target}: {where}",
            **{f"{part} host": host for part, host in hosts.items()},
            "account": self.settings.account_id,
            "gateway": self.settings.gateway_id,
            "API": self.settings.api_base_url,
            "settings from": str(self.settings.env_file) if self.settings.env_file else "the environment only",
            "run": self.run_id,
            "evidence folder": str(self.run_dir),
            **({"values from": self.sources_text()} if self.sources else {}),
        }

    def sources_text(self) -> str:
        """``.dev.vars: A, B; generated for the rehearsal: C; not set: D`` (variable names, never values)."""
        by_source: dict[str, list[str]] = {}
        for name, source in self.sources.items():
            by_source.setdefault(source, []).append(name)
        order = [".dev.vars", "environment", "widget", "generated for the rehearsal", "not set"]
        return "; ".join(f"{source}: {', '.join(by_source[source])}" for source in order if source in by_source)

    def __str__(self) -> str:
        return "aigw session — " + "; ".join(f"{k}: {v}" for k, v in self.describe().items())

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| {k} | `{v}` |" for k, v in self.describe().items())
        title = "⚠️ **Target: Cloudflare**" if self.target == "cloudflare" else "🧪 **Target: twin**"
        hosts = ", ".join(f"{part} `{host}`" for part, host in endpoint_hosts(self.settings).items())
        return f"{title} — requests go to {hosts}; account `{self.settings.account_id}`\n\n| | |\n|---|---|\n{rows}\n"

    def __repr__(self) -> str:
        return str(self)

    def close(self) -> None:
        for part in (self._client, self._prober):
            closer: Any = getattr(part, "close", None)
            if callable(closer):
                closer()


def can_ask_user() -> bool:
    """True when a person is at the notebook: a Jupyter frontend that allows input (papermill and
    nbval never do), so a widget can be answered."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))


def chosen_env_file(here: Path) -> tuple[Path | None, bool]:
    """The settings file of this session and whether a ``.dev.vars`` may be searched for.

    ``AIGW_ENV_FILE`` names the file (``aigw run`` passes the one it chose); ``AIGW_NO_ENV_FILE=1`` (a twin
    run with generated credentials) means the environment alone; otherwise the nearest ``.dev.vars`` upwards.
    """
    if os.environ.get(NO_ENV_FILE_VAR) == "1":
        return None, False
    configured = os.environ.get("AIGW_ENV_FILE")
    if configured:
        return Path(configured), False
    return find_env_file(here), True


def open_session(*, run_id: str | None = None, run_dir: str | None = None) -> Session:
    """Settings, target, run id and evidence folder for the notebook running in the current folder.

    **Parameters:**
    * run_id - the run's id (``aigw run`` passes it); empty/None: ``$AIGW_RUN_ID``, else the sitting's.
    * run_dir - where evidence goes (created); empty/None: ``$AIGW_RUN_DIR`` or ``outputs/<run_id>``; with
      neither given, the current sitting's ``outputs/interactive-<UTC>/`` (``aigw session new`` starts one).
    """
    show_errors_as_one_line()
    here = Path.cwd()
    env_file, _searched = chosen_env_file(here)
    requested = os.environ.get("AIGW_TARGET", "").strip().lower()
    if requested and requested not in TARGETS:
        raise ConfigError(f"AIGW_TARGET {masked(requested)} is not a target", hint="Use twin or cloudflare")
    # The file is read once: the target, the settings and the sources all come from this reading.
    file_values = read_env(env_file, environ={}) if env_file is not None else {}
    merged = merge_env(file_values, os.environ)
    generated: set[str] = set()
    if requested:
        target: Target = "twin" if requested == "twin" else "cloudflare"
        settings = settings_from_env(merged, env_file=env_file)
    elif has_real_credentials(merged):
        target = "cloudflare"
        settings = settings_from_env(merged, env_file=env_file)
    else:
        target = "twin"
        # The operator's values (file and environment) seed the twin; with a .dev.vars, a key it leaves
        # out is asked for in notebook 02 rather than invented.
        twin_env = ensure_background_twin(merged, withhold_missing_keys=env_file is not None)
        settings = settings_from_env(merge_env(file_values, {**os.environ, **twin_env}), env_file=env_file)
        generated = {name for name in twin_env if name not in merged}
    # Before any request: a twin session that would reach a real host (or the reverse) stops here.
    check_endpoints(target, settings, allow_custom=os.environ.get(ALLOW_CUSTOM_VAR) == "1")
    use_secrets(settings.secrets())
    given_id = run_id or os.environ.get("AIGW_RUN_ID")
    given_dir = run_dir or os.environ.get("AIGW_RUN_DIR")
    if not given_id and not given_dir:
        # A JupyterLab sitting: every notebook joins the same run id and folder (aigw.sitting).
        from aigw.sitting import join_sitting

        sitting = join_sitting(project_root(here) / "outputs", target)
        given_id, given_dir = sitting.run_id, str(sitting.run_dir)
    resolved_id = given_id or f"interactive-{utc_stamp()}"
    folder = Path(given_dir or project_root(here) / "outputs" / resolved_id)
    folder.mkdir(parents=True, exist_ok=True)
    return Session(settings=settings, target=target, run_id=resolved_id, run_dir=folder.resolve(),
                   sources=_sources(merged, file_values, generated))


_CREDENTIALS: Final = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
                       *PROVIDER_KEY_VARS.values())


def _sources(operator: Mapping[str, str], file_values: Mapping[str, str], generated: set[str]) -> dict[str, str]:
    """Where each credential came from, as the settings took it (the environment wins over the file)."""
    sources: dict[str, str] = {}
    for name in _CREDENTIALS:
        if operator.get(name):
            sources[name] = ".dev.vars" if operator[name] == file_values.get(name) else "environment"
        elif name in generated:
            sources[name] = "generated for the rehearsal"
        else:
            sources[name] = "not set"
    return sources
