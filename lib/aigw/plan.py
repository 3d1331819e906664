"""The plan of one ``aigw run``: every setting resolved once, at the entrance, into a frozen ``RunPlan``.

``plan_run`` reads the environment and the settings file once, chooses the target, selects the notebooks,
checks the options, the parameters and the settings, makes the twin's seed and claims the run folder; it
starts nothing. The runner, the kernels' environment and the sealing then take what they need from the plan
and never read the environment or a settings file again (``tests/runbook/test_run_plan.py`` checks). Every
refusal is one line here, before a twin, a kernel or a run folder exists.

The kernels are processes of their own: they read the file the plan chose (``AIGW_ENV_FILE``), or nothing
but their environment (``AIGW_NO_ENV_FILE=1``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from aigw.background_twin import check_faults, rehearsal_seed
from aigw.config import (
    DEFAULT_GATEWAY_ID,
    NO_ENV_FILE_VAR,
    VARIABLES,
    Secret,
    Settings,
    find_env_file,
    has_real_credentials,
    masked,
    merge_env,
    read_env,
    settings_from_env,
    validate_account_id,
    validate_gateway_id,
)
from aigw.errors import ConfigError
from aigw.hosts import ALLOW_CUSTOM_VAR, check_endpoints, endpoint_hosts
from aigw.import_tax import skip_unused_import_tax
from aigw.kernels import KERNEL_FORKS_VAR, kernel_environment
from aigw.notebook_source import notebook_parameters
from aigw.run_folder import check_run_folder, claim_run_dir, release_if_empty
from aigw.secrets_scan import SHARED_RUN, looks_like_key, secrets_from_environ, shares_secret
from aigw.signing import SIGNING_KEY_VAR, key_from_environ, load_private_key
from aigw.text import utc_stamp

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aigw.background_twin import TwinSeed

__all__ = [
    "RunPlan",
    "Target",
    "declared_parameters",
    "discover_notebooks",
    "parse_parameter_value",
    "plan_run",
    "select_notebooks",
    "twin_selection_hint",
]

Target = Literal["twin", "cloudflare"]
_NOTEBOOK_NAME: Final = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
#: Run only when --notebooks names them: key rotation everywhere (it is its own change, after the
#: lifecycle), and on Cloudflare the rollback too (it deletes production).
_ONLY_WHEN_NAMED: Final = ("rotate", "logpush")
_ONLY_WHEN_NAMED_ON_CLOUDFLARE: Final = ("rollback", "rotate", "logpush")
#: Notebooks that need a bucket: on the twin, the run serves one (moto's S3 API on loopback) for them.
_NEEDS_BUCKET: Final = ("logpush",)
_RUN_PARAMETERS: Final = ("run_id", "run_dir")
#: Notebooks that talk only to the gateway (CF_AIG_TOKEN will do); every other one calls the v4 API.
_GATEWAY_TOKEN_ONLY: Final = ("verify_endpoints",)
#: The hosts a twin run implies: the twin serves every part on loopback (checked again once it serves).
_TWIN_HOSTS: Final[Mapping[str, str]] = {"API": "127.0.0.1", "gateway": "127.0.0.1", "providers": "127.0.0.1"}


def discover_notebooks(folder: Path) -> list[Path]:
    """The runbook notebooks (``NN_name.ipynb``) in ``folder``, in order."""
    return sorted(p for p in folder.glob("*.ipynb") if _NOTEBOOK_NAME.match(p.name))


def select_notebooks(folder: Path, spec: str | None, target: str) -> list[Path]:
    """The notebooks ``--notebooks`` names (prefixes like ``01,02``); by default the lifecycle: every
    notebook but key rotation, and on cloudflare not the rollback either."""
    available = discover_notebooks(folder)
    if not available:
        raise ConfigError(f"no notebooks found in {folder}", hint="Run aigw from the repository checkout")
    if not spec:
        named_only = _ONLY_WHEN_NAMED_ON_CLOUDFLARE if target == "cloudflare" else _ONLY_WHEN_NAMED
        return [p for p in available if not any(word in p.stem for word in named_only)]
    chosen: list[Path] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        matches = [p for p in available if p.stem == token or p.stem.startswith(token if "_" in token else f"{token}_")]
        if len(matches) != 1:
            names = ", ".join(p.stem for p in available)
            raise ConfigError(f"--notebooks: {token!r} names {'no' if not matches else 'more than one'} notebook",
                              hint=f"Use a prefix of one of: {names}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return sorted(chosen)



def twin_selection_hint(notebooks: Sequence[Path], target: str, twin_state: str | None) -> str | None:
    """A hint when a twin run leaves out notebook 01 but runs one that needs its gateway: each twin run
    starts empty (unless ``--twin-state`` keeps the state), so 02-06 alone find no gateway."""
    if target != "twin" or twin_state or not notebooks:
        return None
    stems = [p.stem for p in notebooks]
    if any(stem.startswith("01_") for stem in stems):
        return None
    return (f"hint: each twin run starts empty, so {stems[0]} will find no gateway; include 01 (e.g. --notebooks "
            f"01,{stems[0][:2]}) or keep the twin's state between runs with --twin-state FILE")


def parse_parameter_value(text: str) -> Any:
    """papermill's ``-p`` typing: True, False, None, an int, a float, else the string."""
    if text in {"True", "False"}:
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The notebook's parameters, by name, as ``papermill.inspect_notebook`` reads them (without importing
    papermill: ``aigw.notebook_source``)."""
    return dict(notebook_parameters(notebook))


def _check_parameters(
    parameters: Mapping[str, Any], declared: Mapping[Path, Mapping[str, Any]], secrets: Sequence[Secret]
) -> None:
    known = {name for names in declared.values() for name in names}
    for name, value in parameters.items():
        if name in _RUN_PARAMETERS:
            raise ConfigError(f"-p {name}: {name} is set by aigw run", hint="Use --out to choose the run folder")
        if name not in known:
            raise ConfigError(
                f"-p {name}: no selected notebook declares a parameter {name!r}",
                hint=f"Declared: {', '.join(sorted(known - set(_RUN_PARAMETERS))) or 'none'}",
            )
        _check_parameter_type(name, value, declared)
        text = str(value)
        whole = any(s.reveal() == text or (len(s) >= 8 and s.reveal() in text) for s in secrets)
        if whole or looks_like_key(text):
            raise ConfigError(
                f"-p {name}: the value is a secret or looks like a key; secrets are never parameters "
                "(papermill writes parameters into the notebook)",
                hint="Put it in .dev.vars or the environment instead",
            )
        shared = shares_secret(text, secrets)
        if shared is not None:
            raise ConfigError(
                f"-p {name} ({len(text)} characters, not shown): the value shares {SHARED_RUN} or more characters "
                f"in a row with {shared.name}; secrets are never parameters (papermill writes parameters into "
                "the notebook)",
                hint="Put it in .dev.vars or the environment instead",
            )


#: What ``-p NAME VALUE`` may give for each annotation papermill reports (``inferred_type_name``).
_PARAMETER_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    "bool": (bool,), "int": (int,), "float": (int, float), "str": (str, int, float, bool, type(None)),
}
_TYPE_HINTS: Final[Mapping[str, str]] = {
    "bool": "Use True or False", "int": "Use a whole number, e.g. 0", "float": "Use a number, e.g. 0.5",
}


def _check_parameter_type(name: str, value: Any, declared: Mapping[Path, Mapping[str, Any]]) -> None:
    """A value of the wrong type (``-p dry_run maybe``) is refused: a notebook would read the string
    "maybe" as true."""
    for parameters in declared.values():
        kind = str((parameters.get(name) or {}).get("inferred_type_name") or "")
        allowed = _PARAMETER_TYPES.get(kind)
        if allowed is None:  # list[str] and others: the step function checks the value itself
            continue
        if not isinstance(value, allowed) or (kind in {"int", "float"} and isinstance(value, bool)):
            article = "an" if kind[0] in "aeiou" else "a"
            raise ConfigError(f"-p {name} {masked(str(value))}: {name} is {article} {kind} parameter",
                              hint=_TYPE_HINTS.get(kind, "Check the value"))



@dataclass(frozen=True)
class RunPlan:
    """One ``aigw run``, resolved: what runs, against what, with which values, into which folder."""

    target: Target
    notebooks: tuple[Path, ...]
    #: Each notebook's parameters as papermill reads them (``declared_parameters``).
    declared: Mapping[Path, Mapping[str, Any]]
    #: ``-p NAME VALUE``, typed and checked (never a secret).
    parameters: Mapping[str, Any]
    #: What a notebook gets unless ``-p`` says otherwise (on the twin: ``confirm_delete``, the rehearsal's gateway).
    target_defaults: Mapping[str, Any]
    #: The run folder (absolute): claimed by the plan, or ``--out`` checked new or empty.
    run_dir: Path
    #: True when the plan made ``run_dir`` (no ``--out``): a refused run removes it again when still empty.
    claimed: bool
    root: Path
    #: The settings file the kernels read (``AIGW_ENV_FILE``); None: their environment alone.
    env_file: Path | None
    #: The operator's values (the settings file with the environment over it, placeholders dropped): what
    #: the sealing scans for besides the settings' secrets.
    operator_env: Mapping[str, str]
    #: On the twin, ``--env-file`` alone (without the environment): the settings once the twin serves.
    file_values: Mapping[str, str]
    #: The settings the notebooks will have; on the twin None until it serves (its URLs hold its port).
    settings: Settings | None
    #: Where the requests will go, by part (``API``, ``gateway``, ``providers``).
    hosts: Mapping[str, str]
    #: What every kernel gets on top of the runner's environment (the twin's variables come when it serves).
    kernel_env: Mapping[str, str]
    #: What a kernel must not inherit from the runner's environment.
    hidden: tuple[str, ...]
    twin_seed: TwinSeed | None = field(default=None, repr=False)
    twin_state: str | None = None
    faults: str | None = None
    needs_bucket: bool = False
    allow_custom_endpoints: bool = False
    signing_key: Ed25519PrivateKey | None = field(default=None, repr=False)
    started_at: str = ""
    #: Kernels forked by the run's fork server (``aigw.kernels.ForkServer``); False with ``AIGW_KERNEL_FORKS=0``:
    #: each its own interpreter, as jupyter_client starts them.
    kernel_forks: bool = True

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def notebook_parameters(self, notebook: Path) -> dict[str, Any]:
        """What papermill gives ``notebook``: the target's defaults, ``-p``, the run id and folder (of those, the
        ones it declares)."""
        declared = self.declared[notebook]
        mine = {k: v for k, v in {**self.target_defaults, **self.parameters}.items() if k in declared}
        mine.update({k: v for k, v in (("run_id", self.run_id), ("run_dir", str(self.run_dir))) if k in declared})
        return mine


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_options(target: str, *, faults: str | None, twin_account: Mapping[str, str],
                   allow_custom_endpoints: bool) -> None:
    if target not in {"twin", "cloudflare"}:
        raise ConfigError(f"--target {target!r} is not a target", hint="Use twin or cloudflare")
    if faults and target != "twin":
        raise ConfigError("--faults works only with --target twin", hint="Drop --faults, or use --target twin")
    if faults:
        check_faults(faults)
    if twin_account and target != "twin":
        raise ConfigError("--twin-plan and --twin-log-system work only with --target twin",
                          hint="A Cloudflare account's plan and log system are its own: drop them")
    if allow_custom_endpoints and target != "cloudflare":
        raise ConfigError("--allow-custom-endpoints works only with --target cloudflare",
                          hint="A twin run talks to loopback only: drop --allow-custom-endpoints")


class _EnvFiles:
    """Each settings file read once (a plan may consult the same file for several questions)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._read: dict[Path, dict[str, str]] = {}

    def alone(self, path: Path | None) -> dict[str, str]:
        """The file's own values, without the environment."""
        if path is None:
            return {}
        key = path.resolve()
        if key not in self._read:
            self._read[key] = read_env(path, environ={})
        return self._read[key]

    def merged(self, path: Path | None) -> dict[str, str]:
        """The file with the environment over it (as ``read_env`` merges them)."""
        return merge_env(self.alone(path), self.environ)


def plan_run(
    *,
    target: str | None = None,
    notebooks: Sequence[Path] | str | None = None,
    run_dir: Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    env_file: Path | None = None,
    faults: str | None = None,
    twin_state: str | None = None,
    twin_account: Mapping[str, str] | None = None,
    root: Path | None = None,
    allow_custom_endpoints: bool = False,
    signing_key: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> RunPlan:
    """Resolve one run (see the module docstring). ``ConfigError`` (one line) for whatever would stop it.

    **Parameters:**
    * target - ``twin`` or ``cloudflare``; None: cloudflare when the settings hold real credentials, else twin.
    * notebooks - the notebooks themselves, or ``--notebooks``' prefixes (``"01,02"``; None: the lifecycle).
    * run_dir - ``--out`` (new or empty); None: a fresh ``outputs/<UTC time>-<target>`` under ``root``,
      claimed now and removed again (while still empty) when the plan refuses the run.
    * environ, cwd - the environment and working folder to plan from (default: this process's).
    * say - where the operator's lines go as the plan finds them: a hint about the selection, the run's
      first line (target, notebooks, folder), notes about the settings. None: nowhere.
    """
    from aigw.paths import repo_root

    root = root or repo_root()
    files = _EnvFiles(dict(os.environ if environ is None else environ))
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"--env-file {str(env_file)!r} does not exist", hint="Check the path")
    near = env_file or find_env_file(cwd or Path.cwd())
    chosen = target or ("cloudflare" if has_real_credentials(files.merged(near)) else "twin")
    if isinstance(notebooks, str) or notebooks is None:
        notebooks = select_notebooks(root / "notebooks", notebooks, chosen)
    selected = tuple(notebooks)
    claimed = run_dir is None
    folder = run_dir or claim_run_dir(root / "outputs" / f"{utc_stamp()}-{chosen}")
    if say is not None:
        if (hint := twin_selection_hint(selected, chosen, twin_state)) is not None:
            say(hint)
        say(f"target {chosen}; notebooks {', '.join(p.stem for p in selected)}; run folder {folder}")
    try:
        return _resolve(
            chosen, selected, folder, claimed=claimed, files=files, near=near, env_file=env_file, root=root,
            parameters=dict(parameters or {}), faults=faults, twin_state=twin_state,
            twin_account=dict(twin_account or {}), allow_custom_endpoints=allow_custom_endpoints,
            signing_key=signing_key, say=say or (lambda _line: None),
        )
    except BaseException:
        if claimed:
            release_if_empty(folder)
        raise


def _resolve(
    chosen: str, selected: tuple[Path, ...], folder: Path, *, claimed: bool, files: _EnvFiles, near: Path | None,
    env_file: Path | None, root: Path, parameters: dict[str, Any], faults: str | None, twin_state: str | None,
    twin_account: dict[str, str], allow_custom_endpoints: bool, signing_key: Path | None,
    say: Callable[[str], None],
) -> RunPlan:
    _check_options(chosen, faults=faults, twin_account=twin_account, allow_custom_endpoints=allow_custom_endpoints)
    resolved: Target = "twin" if chosen == "twin" else "cloudflare"
    started_at = _iso_now()
    # The key is read now: a bad key is one line before anything runs, not an unsigned bundle afterwards.
    key = load_private_key(str(signing_key)) if signing_key is not None else key_from_environ(files.environ)
    check_run_folder(folder, twin_state=twin_state)
    skip_unused_import_tax()  # before anything of the run imports nbformat
    declared = {nb: declared_parameters(nb) for nb in selected}
    hidden: tuple[str, ...] = (SIGNING_KEY_VAR, ALLOW_CUSTOM_VAR, NO_ENV_FILE_VAR)
    seed: TwinSeed | None = None
    settings: Settings | None = None
    target_defaults: dict[str, Any] = {}
    file_values: dict[str, str] = {}
    if resolved == "cloudflare":
        # Checked here, before a kernel starts or the run folder is used: a missing or malformed setting
        # is one line now, not a failed notebook and a sealed bundle. The kernels get the same file.
        kernels_file = near or find_env_file(selected[0].parent if selected else root)
        kernel_env = {"AIGW_ENV_FILE": str(kernels_file)} if kernels_file is not None else {}
        if allow_custom_endpoints:
            kernel_env[ALLOW_CUSTOM_VAR] = "1"
        operator_env = files.merged(kernels_file)
        settings = settings_from_env(operator_env, env_file=kernels_file)
        check_endpoints("cloudflare", settings, allow_custom=allow_custom_endpoints)
        if any(not any(word in nb.stem for word in _GATEWAY_TOKEN_ONLY) for nb in selected):
            settings.require_api_token()
        settings.require_gateway_token()
        if (warning := settings.gateway_token_warning()) is not None:
            # Whether the API token holds Run cannot be read from Cloudflare: said once, not refused.
            say(f"note: {warning}")
        known_secrets: list[Secret] = [*settings.secrets(), *secrets_from_environ(operator_env)]
        hosts: Mapping[str, str] = endpoint_hosts(settings)
    else:
        operator_env = files.merged(near)
        # Generated credentials rehearse the user's own gateway id (from .dev.vars), if there is one.
        gateway_id = validate_gateway_id(operator_env.get("CLOUDFLARE_GATEWAY_ID", DEFAULT_GATEWAY_ID))
        file_values = files.alone(env_file)
        if file_values.get("CLOUDFLARE_ACCOUNT_ID"):
            # The runbook's own rule and message first: the twin's seeding has its own, in its own words.
            validate_account_id(file_values["CLOUDFLARE_ACCOUNT_ID"])
        hidden = (*hidden, *VARIABLES, "AIGW_ENV_FILE")
        # The twin reads the file with the environment over it: without the environment's settings.
        with kernel_environment({}, drop=hidden):
            seed = rehearsal_seed(env_file, gateway_id=gateway_id, twin_state=twin_state, account=twin_account)
        if seed.aig_token is None:
            # The twin gives CLOUDFLARE_API_TOKEN what .dev.vars.example asks for it, not Run: the rehearsal
            # would fail at the first probe (401 / 2009), as the real run would. Said now, in one line.
            raise ConfigError(
                f"CF_AIG_TOKEN is not set in {env_file}: the gateway would get CLOUDFLARE_API_TOKEN, which holds "
                "AI Gateway Read, Write and Secrets Store Write but not Run, so every probe would answer 401 / code "
                "2009",
                hint="Put a token with AI Gateway Run in CF_AIG_TOKEN (the API token's own value if it holds Run too)",
            )
        # One source of settings: the kernels read --env-file, or nothing but this environment.
        kernel_env = {"AIGW_ENV_FILE": str(env_file.resolve())} if env_file is not None else {NO_ENV_FILE_VAR: "1"}
        known_secrets = list(secrets_from_environ({**operator_env, **seed.to_environ()}))
        # A rehearsal on the twin is the whole lifecycle: its rollback deletes for real (the twin is
        # disposable), unless the operator passed confirm_delete. On Cloudflare only the operator confirms.
        target_defaults["confirm_delete"] = seed.gateway_id
        hosts = _TWIN_HOSTS
    # Before the twin starts: a bad -p is one line, with nothing started.
    _check_parameters(parameters, declared, known_secrets)
    folder = folder.resolve()
    kernel_env.update({"AIGW_TARGET": resolved, "AIGW_RUN_ID": folder.name, "AIGW_RUN_DIR": str(folder)})
    return RunPlan(
        target=resolved, notebooks=selected, declared=declared, parameters=parameters, target_defaults=target_defaults,
        run_dir=folder, claimed=claimed, root=root, env_file=settings.env_file if settings else env_file,
        operator_env=operator_env, file_values=file_values, settings=settings, hosts=dict(hosts),
        kernel_env=kernel_env, hidden=hidden, twin_seed=seed, twin_state=twin_state, faults=faults,
        needs_bucket=resolved == "twin" and any(word in nb.stem for nb in selected for word in _NEEDS_BUCKET),
        allow_custom_endpoints=allow_custom_endpoints, signing_key=key, started_at=started_at,
        kernel_forks=files.environ.get(KERNEL_FORKS_VAR) != "0",
    )
