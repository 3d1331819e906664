"""``aigw run``: execute the runbook's notebooks with papermill, in one process, into a sealed run folder.

* Target ``twin``: a ``TwinServer`` thread on a free loopback port (state in memory, or the file of
  ``--twin-state``), seeded from ``--env-file`` or with generated credentials; stopped at the end.
* Target ``cloudflare``: the real API, with ``.dev.vars`` / ``--env-file`` / the environment.
* The notebooks reach the target through the kernel's **environment** (``CLOUDFLARE_*``, tokens, keys,
  ``AIGW_TARGET``, ``AIGW_RUN_ID``, ``AIGW_RUN_DIR``). Only non-secret values are papermill parameters
  (``run_id``, ``run_dir``, and ``-p NAME VALUE`` for the notebooks that declare ``NAME``); a value
  that is a configured secret or looks like a key is refused.
* Progress goes to stderr: a bar per notebook (on a terminal) and a line when it finishes; ``-v`` adds a
  line per cell. A failing notebook stops the run: its
  partial output is kept, the bundle is sealed with status ``failed`` and ``RunError`` names the
  notebook, the cell and the error in one line (also ``evidence.json``'s ``failure``).
* Exit code (``EXIT_CODES``): 0 when the bundle is ``passed`` (Cloudflare) or ``rehearsal-passed``
  (twin); 1 when it is ``failed`` (and for every other error); 3 when it is ``incomplete`` (a criterion
  not run, skipped or missing a provider: e.g. ``--notebooks 01,02``). 2 is argparse's, for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aigw.config import (
    DEFAULT_GATEWAY_ID,
    PROVIDERS,
    VARIABLES,
    Secret,
    Settings,
    find_env_file,
    load_settings,
    masked,
    read_env,
    redact,
    validate_account_id,
    validate_gateway_id,
)
from aigw.errors import AigwError, ConfigError, RunError
from aigw.evidence import Bundle, export_run_html, own_files, seal_bundle
from aigw.hosts import ALLOW_CUSTOM_VAR, check_endpoints
from aigw.paths import repo_root
from aigw.progress import progress
from aigw.secrets_scan import SHARED_RUN, looks_like_key, secrets_from_environ, shares_secret
from aigw.session import NO_ENV_FILE_VAR, has_real_credentials
from aigw.signing import SIGNING_KEY_VAR, key_from_environ, load_private_key
from aigw.text import utc_stamp

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "NotebookFailure",
    "RunInterrupted",
    "RunResult",
    "check_run_folder",
    "claim_run_dir",
    "declared_parameters",
    "discover_notebooks",
    "parse_parameter_value",
    "run_from_args",
    "run_notebooks",
    "select_notebooks",
    "twin_selection_hint",
]

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
_ENGINE: Final = "aigw"
#: ``aigw run``'s exit code by bundle status: only a bundle whose every criterion passed exits 0.
EXIT_FAILED: Final = 1
EXIT_INCOMPLETE: Final = 3
EXIT_CODES: Final[Mapping[str, int]] = {"passed": 0, "rehearsal-passed": 0, "incomplete": EXIT_INCOMPLETE,
                                        "failed": EXIT_FAILED}


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


def _with_account(seed: Any, account: Mapping[str, str]) -> Any:
    """The rehearsal seed with the plan and log system asked for (``--twin-plan``, ``--twin-log-system``)."""
    import dataclasses

    from cftwin.accounts import created_at_for

    changes: dict[str, str] = {}
    if "plan" in account:
        changes["plan"] = account["plan"]
    if "log_system" in account:
        changes["created_at"] = created_at_for(account["log_system"])  # type: ignore[arg-type]
    return dataclasses.replace(seed, **changes) if changes else seed


def check_run_folder(run_dir: Path, *, twin_state: str | None = None) -> None:
    """The run folder must be new or empty: sealing lists, scans and (on a secret hit) deletes what the
    run wrote there, so a user's files or an earlier run's must not be in it. Checked before anything runs."""
    if run_dir.exists() or run_dir.is_symlink():
        hint = "Choose a new or empty folder, or leave --out out for a fresh outputs/<UTC time>-<target>"
        if not run_dir.is_dir():
            raise ConfigError(f"--out {str(run_dir)!r} is not a folder", hint=hint)
        try:
            entries = sum(1 for _ in run_dir.iterdir())
        except OSError as exc:
            raise ConfigError(f"--out {str(run_dir)!r} cannot be read ({exc.strerror})", hint=hint) from None
        if entries:
            raise ConfigError(f"--out {str(run_dir)!r} is not empty ({entries} entries): the run would seal "
                              "them into its evidence", hint=hint)
    if twin_state and twin_state != ":memory:" and Path(twin_state).resolve().is_relative_to(run_dir.resolve()):
        raise ConfigError(f"--twin-state {twin_state!r} is inside the run folder (the twin's state would be "
                          "sealed into the evidence)", hint="Keep the state file outside --out")


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
    """``papermill.inspect_notebook``: the notebook's parameters, by name."""
    import papermill

    declared: dict[str, Any] = papermill.inspect_notebook(str(notebook))
    return declared


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
class NotebookFailure:
    notebook: str
    cell: int | None
    error: str

    def __str__(self) -> str:
        where = f" cell {self.cell}" if self.cell is not None else ""
        return f"{self.notebook}{where}: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        """``evidence.json``'s ``failure``: the notebook, the index of its failed cell, the error line."""
        return {"notebook": self.notebook, "cell": self.cell, "error": self.error}


@dataclass
class RunResult:
    run_dir: Path
    target: str
    run_id: str
    executed: list[Path] = field(default_factory=list)
    failure: NotebookFailure | None = None
    bundle: Bundle | None = None


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_faults(spec: str) -> None:
    """A bad ``--faults`` is one line before anything starts (the twin's parser says what is wrong)."""
    from cftwin.faults import parse_fault_spec

    try:
        parse_fault_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}", hint="Fix the spec (grammar: docs/TWIN.md#fault-injection)") from None


def _create_private(path: Path) -> None:
    """Create ``path`` (empty) with mode 0600 before SQLite does, with the runbook's own line for a folder
    that does not exist. The twin then makes any state file 0600, an existing one too (cftwin.db)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"--twin-state {str(path)!r}: cannot create it ({exc.strerror})",
                          hint="Choose a file in a folder that exists and that you can write") from None


def _progress(message: str) -> None:
    print(f"aigw: {message}", file=sys.stderr, flush=True)


class RunInterrupted(KeyboardInterrupt):
    """``aigw run`` was stopped by SIGINT (Ctrl-C) or SIGTERM; raised once what ran is sealed.

    ``signum``: the first signal; ``bundle``: the sealed bundle, None when nothing was sealed (the stop
    came before the run folder was made, or the sealing itself failed)."""

    def __init__(self, signum: int, bundle: Bundle | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.bundle = bundle


class _Stopped(Exception):
    """Raised by the per-cell hook when a stop came while the kernel sat between cells."""


class _StopSignals:
    """SIGINT and SIGTERM for the whole of ``run_notebooks``, handled once and only here.

    The handler never raises: an exception raised from a signal handler lands wherever the main thread
    happens to be (papermill's event loop, a kernel's shutdown in a ``finally``, the sealing) and skipped
    the sealing of 4 Ctrl-Cs in 10. It records the first signal and interrupts the running notebook's
    kernel as Jupyter does (SIGINT to its process group): the cell stops with ``KeyboardInterrupt``,
    papermill returns, and the runner seals what ran. Between cells, the per-cell hook stops papermill
    before the next one. A kernel still running ``GRACE_S`` after the signal, or at a second signal, is
    killed: the notebook then fails as a dead kernel, sealed all the same.
    """

    GRACE_S: Final = 10.0

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self.signum: int | None = None
        #: The kernel of the notebook that runs now (a ``PreparedKernel``), None between notebooks.
        self.kernel: Any = None
        self._saved: dict[int, Any] = {}
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._watchdog = threading.Thread(target=self._kill_after_grace, name="aigw-stop", daemon=True)

    def stopped(self) -> bool:
        """A method, not a property: the signal handler changes it behind the type checker's back."""
        return self.signum is not None

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
            self._watchdog.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous)
        self._closed.set()
        self._wake.set()

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None:
            self._kill()
            return
        self.signum = signum
        # os.write, not print: the main thread may be inside a print to the same stream.
        with contextlib.suppress(OSError):
            os.write(2, f"aigw: {signal.Signals(signum).name}: stopping the running notebook, then sealing what "
                        "ran\n".encode())
        kernel = self.kernel
        if kernel is not None:
            kernel.send_signal(signal.SIGINT)
        self._wake.set()

    def _kill(self) -> None:
        kernel = self.kernel
        if kernel is not None:
            kernel.send_signal(signal.SIGKILL)

    def _kill_after_grace(self) -> None:
        self._wake.wait()
        if not self._closed.wait(self.grace_s):
            self._kill()


#: The stop of the run in progress in this thread (the per-cell hook of the papermill engine reads it).
_current = threading.local()


def _active_stop() -> _StopSignals | None:
    stop: _StopSignals | None = getattr(_current, "stop", None)
    return stop


@contextlib.contextmanager
def _stop_signals() -> Iterator[_StopSignals]:
    """The run's ``_StopSignals``: installed by the outermost caller (``run_from_args``, before its first
    line, or ``run_notebooks`` called on its own), shared by the inner one."""
    active = _active_stop()
    if active is not None:
        yield active
        return
    with _StopSignals() as stop:
        _current.stop = stop
        try:
            yield stop
        finally:
            _current.stop = None


def _code_cells(notebook: Path) -> int:
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return 0
    return sum(1 for cell in cells if cell.get("cell_type") == "code")


def _register_engine() -> None:
    """A papermill engine that moves the notebook's progress bar per cell (a line per cell with ``-v``)."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            name = Path(str(nb_man.nb.metadata.get("papermill", {}).get("input_path", "notebook"))).stem
            original = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **more: Any) -> Any:
                if cell.get("cell_type") == "code":
                    first = next((line for line in str(cell.get("source", "")).splitlines()
                                  if line.strip() and not line.lstrip().startswith("#")), "")
                    progress.cell(name, cell_index, first)
                started = original(cell, cell_index, **more)
                stop = _active_stop()
                if stop is not None and stop.stopped():
                    # The cell is marked started, so the stopped notebook shows it as the one that failed.
                    raise _Stopped("the run was stopped before this cell")
                return started

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(_ENGINE, ProgressEngine)


@contextlib.contextmanager
def _environment(values: Mapping[str, str], drop: Sequence[str] = ()) -> Iterator[None]:
    """``os.environ`` without ``drop`` and with ``values`` over it (the kernels inherit it), restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*drop, *values)}
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _failed_cell(output: Path) -> int | None:
    """The index of the failed cell in the output notebook (what the HTML's ``#cell-N`` anchors use)."""
    import nbformat

    try:
        nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "failed":
            return index
    return None


def _mark_stopped_cell(output: Path, failure: NotebookFailure) -> NotebookFailure:
    """A notebook stopped from outside (kernel died, run interrupted): papermill then marks every cell
    "completed". Mark the cell that was running (the last one started) failed, with the failure as its
    error output, so that the evidence and the HTML show where the notebook stopped."""
    import nbformat

    if failure.cell is not None or not output.is_file():
        return failure
    try:
        nb = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        return failure
    started = [i for i, c in enumerate(nb.cells)
               if c.cell_type == "code" and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return failure
    cell = nb.cells[started[-1]]
    cell.metadata.setdefault("papermill", {})["status"] = "failed"
    ename, _, evalue = failure.error.partition(": ")
    cell.setdefault("outputs", []).append(nbformat.v4.new_output(  # type: ignore[no-untyped-call]
        "error", ename=ename, evalue=evalue, traceback=[failure.error]))
    nbformat.write(nb, output)  # type: ignore[no-untyped-call]
    return NotebookFailure(failure.notebook, started[-1], failure.error)


def _skip_unused_import_tax() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, which builds a grammar for ~2 s in every
    process that imports nbformat (measured: docs/PERFORMANCE.md). It only checks the ``iri`` and
    ``iri-reference`` formats, which no nbformat schema uses; jsonschema skips those checks when the
    import fails. Too late once jsonschema is imported (then it changes nothing)."""
    if "jsonschema" not in sys.modules:
        # None in sys.modules makes the import raise ImportError (Python's documented opt-out).
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _prepare_kernel(notebook: Path) -> Any:
    """Start ``notebook``'s kernel now (it boots and imports while the previous notebook runs); None
    when that fails, and papermill then starts one itself."""
    from aigw.kernels import PreparedKernel, notebook_imports

    kernel = PreparedKernel(notebook.parent, notebook_imports(notebook))
    try:
        return kernel.start()
    except Exception:  # papermill's own start reports whatever is wrong, in the notebook's terms
        with contextlib.suppress(Exception):
            kernel.shutdown()
        return None


def _caused_by_stop(failure: NotebookFailure) -> bool:
    """True when ``failure`` is what a stop does to a notebook: the interrupted cell, the per-cell hook, or
    the kernel killed after the grace."""
    ename = failure.error.partition(":")[0]
    return ename in {"KeyboardInterrupt", "_Stopped", "DeadKernelError"} or "Kernel died" in failure.error


def _unstarted_kernel(notebook: Path) -> Any:
    """A kernel manager papermill starts itself (when the one prepared ahead failed to start): made here,
    so that the runner can interrupt its kernel and shut it down like a prepared one."""
    from aigw.kernels import PreparedKernel

    return PreparedKernel(notebook.parent)


def _execute(notebook: Path, output: Path, parameters: Mapping[str, Any], cwd: Path,
             secrets: Sequence[Secret], kernel: Any = None) -> NotebookFailure | None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from aigw.kernels import IPCKernelManager

    extra: dict[str, Any] = {"km": kernel.manager} if kernel is not None else {}
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=dict(parameters), engine_name=_ENGINE, kernel_name="python3",
            progress_bar=False, cwd=str(cwd), kernel_manager_class=IPCKernelManager, start_timeout=120, **extra,
        )
    except PapermillExecutionError as exc:
        evalue = " ".join(str(exc.evalue).split())
        return NotebookFailure(notebook.stem, _failed_cell(output), redact(f"{exc.ename}: {evalue}", secrets))
    except Exception as exc:  # the kernel died, a timeout, a broken notebook: still a failed notebook
        text = " ".join(str(exc).split())[:300]
        if type(exc).__name__ == "DeadKernelError":
            text += " (killed, or out of memory); run aigw run again: it converges on the same state"
        return NotebookFailure(notebook.stem, _failed_cell(output), redact(f"{type(exc).__name__}: {text}", secrets))
    return None


def _rehearsal_bucket() -> tuple[Any, tempfile.TemporaryDirectory[str], dict[str, str]]:
    """A local S3 bucket standing in for the operator's R2 bucket, and 07's settings for it. The rehearsal's
    private key goes to a temporary folder outside the run folder (the bundle never holds it)."""
    from cftwin.logpush.bucket import LocalBucket

    bucket = LocalBucket("aigw-rehearsal").start()
    folder = tempfile.TemporaryDirectory(prefix="aigw-logpush-")
    env = {
        "AIGW_LOGPUSH_BUCKET": bucket.bucket,
        "AIGW_LOGPUSH_ACCESS_KEY_ID": bucket.access_key_id,
        "AIGW_LOGPUSH_SECRET_ACCESS_KEY": bucket.secret_access_key,
        "AIGW_LOGPUSH_ENDPOINT": bucket.url,
        "AIGW_LOGPUSH_PRIVATE_KEY_FILE": str(Path(folder.name) / "logpush.pem"),
    }
    _progress(f"bucket (S3 API, standing in for R2) at {bucket.url}")
    return bucket, folder, env


def run_notebooks(
    notebooks: Sequence[Path],
    *,
    target: str,
    run_dir: Path,
    parameters: Mapping[str, Any] | None = None,
    env_file: Path | None = None,
    faults: str | None = None,
    twin_state: str | None = None,
    twin_account: Mapping[str, str] | None = None,
    root: Path | None = None,
    allow_custom_endpoints: bool = False,
    signing_key: Path | None = None,
) -> RunResult:
    """Run ``notebooks`` in order against ``target`` into ``run_dir`` and seal the bundle.

    Stops at the first failing notebook (its partial output stays). ``EvidenceError`` when a secret
    was found in the bundle; otherwise the result says whether a notebook failed. SIGINT and SIGTERM
    stop the run: what ran is sealed, then ``RunInterrupted`` is raised (see ``_StopSignals``).
    """
    with _stop_signals() as stop:
        return _run_notebooks(notebooks, target=target, run_dir=run_dir, parameters=parameters,
                              env_file=env_file, faults=faults, twin_state=twin_state, root=root, stop=stop,
                              twin_account=twin_account or {},
                              allow_custom_endpoints=allow_custom_endpoints, signing_key=signing_key)


def _run_notebooks(
    notebooks: Sequence[Path],
    *,
    target: str,
    run_dir: Path,
    parameters: Mapping[str, Any] | None,
    env_file: Path | None,
    faults: str | None,
    twin_state: str | None,
    twin_account: Mapping[str, str],
    root: Path | None,
    stop: _StopSignals,
    allow_custom_endpoints: bool,
    signing_key: Path | None,
) -> RunResult:
    if target not in {"twin", "cloudflare"}:
        raise ConfigError(f"--target {target!r} is not a target", hint="Use twin or cloudflare")
    if faults and target != "twin":
        raise ConfigError("--faults works only with --target twin", hint="Drop --faults, or use --target twin")
    if faults:
        _check_faults(faults)
    if twin_account and target != "twin":
        raise ConfigError("--twin-plan and --twin-log-system work only with --target twin",
                          hint="A Cloudflare account's plan and log system are its own: drop them")
    if allow_custom_endpoints and target != "cloudflare":
        raise ConfigError("--allow-custom-endpoints works only with --target cloudflare",
                          hint="A twin run talks to loopback only: drop --allow-custom-endpoints")
    started_at = _iso_now()
    # The key is read now: a bad key is one line before anything runs, not an unsigned bundle afterwards.
    key = load_private_key(str(signing_key)) if signing_key is not None else key_from_environ()
    parameters = dict(parameters or {})
    check_run_folder(run_dir, twin_state=twin_state)
    if stop.stopped():
        raise RunInterrupted(stop.signum or signal.SIGINT)
    _skip_unused_import_tax()
    root = root or repo_root()
    run_dir = run_dir.resolve()
    run_id = run_dir.name
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    file_env = read_env(env_file or find_env_file(Path.cwd()))
    run_env = {"AIGW_TARGET": target, "AIGW_RUN_ID": run_id, "AIGW_RUN_DIR": str(run_dir)}
    # What a kernel must not inherit from this process: the signing key always; on the twin every setting
    # too, so that the kernels see only --env-file (or the generated seed) and nothing found elsewhere.
    hidden: tuple[str, ...] = (SIGNING_KEY_VAR, ALLOW_CUSTOM_VAR, NO_ENV_FILE_VAR)
    settings: Settings | None = None
    if target == "cloudflare":
        # Checked here, before a kernel starts or the run folder exists: a missing or malformed setting
        # is one line now, not a failed notebook and a sealed bundle. The kernels get the same file.
        found = env_file or find_env_file(Path.cwd()) or find_env_file(notebooks[0].parent if notebooks else root)
        kernel_env = {"AIGW_ENV_FILE": str(found)} if found is not None else {}
        kernel_env.update(run_env)
        if allow_custom_endpoints:
            kernel_env[ALLOW_CUSTOM_VAR] = "1"
        settings = load_settings(found, environ={**os.environ, **kernel_env})
        check_endpoints("cloudflare", settings, allow_custom=allow_custom_endpoints)
        if any(not any(word in nb.stem for word in _GATEWAY_TOKEN_ONLY) for nb in notebooks):
            settings.require_api_token()
        settings.require_gateway_token()
        if (warning := settings.gateway_token_warning()) is not None:
            # Whether the API token holds Run cannot be read from Cloudflare: said once, not refused.
            _progress(f"note: {warning}")
        file_env = read_env(found)
        _check_parameters(parameters, declared, [*settings.secrets(), *secrets_from_environ(file_env)])
    else:
        from cftwin.errors import TwinConfigError
        from cftwin.seed import generated_seed, kept_seed_account, seed_from_env_file

        # Generated credentials rehearse the user's own gateway id (from .dev.vars), if there is one.
        gateway_id = validate_gateway_id(file_env.get("CLOUDFLARE_GATEWAY_ID", DEFAULT_GATEWAY_ID))
        in_file = read_env(env_file, environ={}) if env_file is not None else {}
        if in_file.get("CLOUDFLARE_ACCOUNT_ID"):
            # The runbook's own rule and message first: the twin's seeding has its own, in its own words.
            validate_account_id(in_file["CLOUDFLARE_ACCOUNT_ID"])
        hidden = (*hidden, *VARIABLES, "AIGW_ENV_FILE")
        try:
            # A state file keeps its seed's account: a re-run converges on what a killed run half-made.
            kept_account = kept_seed_account(twin_state) if twin_state else None
            # The twin reads the file with the environment over it: without the environment's settings.
            with _environment({}, drop=hidden):
                seed = (seed_from_env_file(env_file) if env_file is not None
                        else generated_seed(gateway_id, account_id=kept_account))
            seed = _with_account(seed, twin_account)
        except TwinConfigError as exc:
            raise ConfigError(exc.message, hint=exc.hint) from None
        if seed.aig_token is None:
            # The twin gives CLOUDFLARE_API_TOKEN what .dev.vars.example asks for it, not Run: the rehearsal
            # would fail at the first probe (401 / 2009), as the real run would. Said now, in one line.
            raise ConfigError(
                f"CF_AIG_TOKEN is not set in {env_file}: the gateway would get CLOUDFLARE_API_TOKEN, which holds "
                "AI Gateway Read, Write and Secrets Store Write but not Run, so every probe would answer 401 / code "
                "2009",
                hint="Put a token with AI Gateway Run in CF_AIG_TOKEN (the API token's own value if it holds Run too)",
            )
        # Before the twin starts: a bad -p is one line, with nothing started.
        _check_parameters(parameters, declared, secrets_from_environ({**file_env, **seed.to_environ()}))
    twin: Any = None
    if stop.stopped():  # checked before each step that makes something: the twin, the run folder
        raise RunInterrupted(stop.signum or signal.SIGINT)
    bucket: Any = None
    key_folder: tempfile.TemporaryDirectory[str] | None = None
    try:
        if target == "twin":
            from cftwin.context import TwinOptions
            from cftwin.server import TwinServer

            # The rehearsal's providers take 25 +/- 10 ms, so that 03's and 04's latency figures are not all 0.
            options = TwinOptions(provider_latency_ms=dict.fromkeys(PROVIDERS, 25.0), provider_jitter_ms=10.0)
            if twin_state and twin_state != ":memory:":
                _create_private(Path(twin_state))
            if any(word in nb.stem for nb in notebooks for word in _NEEDS_BUCKET):
                bucket, key_folder, logpush_env = _rehearsal_bucket()
                options.r2_endpoint_url = bucket.url
            try:
                twin = TwinServer(options, state=twin_state or ":memory:", seed=seed, faults=faults).start()
            except TwinConfigError as exc:  # a state file that is not the twin's: one line
                raise ConfigError(exc.message, hint=exc.hint) from None
            kernel_env = seed.to_environ(twin)
            if bucket is not None:
                kernel_env.update(logpush_env)
            # One source of settings: the kernels read --env-file, or nothing but this environment.
            if env_file is not None:
                kernel_env["AIGW_ENV_FILE"] = str(env_file.resolve())
            else:
                kernel_env[NO_ENV_FILE_VAR] = "1"
            # The client keeps to the budget the twin enforces (Cloudflare's, unless it was scaled).
            budget = f"{options.api_budget_requests}/{options.api_budget_window_s:g}"
            kernel_env["AIGW_API_BUDGET"] = budget
            kernel_env.update(run_env)
            _progress(f"twin serving at {twin.url} (state {twin_state or 'in memory'})")
            kept = {k: v for k, v in os.environ.items() if k not in hidden}
            settings = load_settings(env_file, environ={**kept, **kernel_env}, search=False)
            check_endpoints("twin", settings)
        assert settings is not None
        secrets = [*settings.secrets(), *secrets_from_environ({**file_env, **kernel_env})]
        # A rehearsal on the twin is the whole lifecycle: its rollback deletes for real (the twin is
        # disposable), unless the operator passed confirm_delete. On Cloudflare only the operator confirms.
        target_defaults: dict[str, Any] = {}
        if target == "twin":
            target_defaults["confirm_delete"] = settings.gateway_id
        if stop.stopped():  # before the run folder exists: nothing to seal, nothing made
            raise RunInterrupted(stop.signum or signal.SIGINT)
        run_dir.mkdir(parents=True, exist_ok=True)
        # Checked empty above; anything that came in since is not the run's and is left alone.
        preexisting = frozenset(str(p.relative_to(run_dir)) for p in own_files(run_dir))
        _register_engine()
        from aigw.kernels import clean_stale_kernel_files

        clean_stale_kernel_files()  # what killed runs left in the temp folder (their kernels' files)
        result = RunResult(run_dir=run_dir, target=target, run_id=run_id)
        # Each notebook's HTML is made in this thread while the next notebook runs in its kernel.
        exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigw-html")
        exports: list[tuple[Path, Future[Path]]] = []
        upcoming: Any = None
        try:
            with _environment(kernel_env, drop=hidden):
                upcoming = _prepare_kernel(notebooks[0]) if notebooks else None
                for index, notebook in enumerate(notebooks):
                    if stop.stopped():
                        break
                    kernel, upcoming = upcoming or _unstarted_kernel(notebook), None
                    # Safe to start now: a kernel sees only the environment and folder, which are the same
                    # for every notebook of the run; if this notebook fails, it is shut down unused.
                    if index + 1 < len(notebooks):
                        upcoming = _prepare_kernel(notebooks[index + 1])
                    mine = {k: v for k, v in {**target_defaults, **parameters}.items() if k in declared[notebook]}
                    mine.update({k: v for k, v in (("run_id", run_id), ("run_dir", str(run_dir)))
                                 if k in declared[notebook]})
                    output = run_dir / notebook.name
                    started = time.monotonic()
                    progress.start(notebook.stem, _code_cells(notebook),
                                   ", ".join(f"{k}={v}" for k, v in mine.items()))
                    stop.kernel = kernel
                    try:
                        failure = _execute(notebook, output, mine, notebook.parent, secrets, kernel)
                    finally:
                        stop.kernel = None
                        try:
                            kernel.shutdown()
                        except Exception:  # a kernel that will not stop must not skip the seal
                            kernel.send_signal(signal.SIGKILL)
                    if failure is not None and stop.stopped() and _caused_by_stop(failure):
                        # A notebook that returned without a failure ran to its end: it stays completed; one
                        # that failed on its own before the stop keeps its own error.
                        name = signal.Signals(stop.signum or signal.SIGINT).name
                        failure = NotebookFailure(notebook.stem, _failed_cell(output),
                                                  f"interrupted: the run was stopped ({name}) before the notebook "
                                                  "finished")
                    if failure is not None:
                        failure = _mark_stopped_cell(output, failure)
                    if output.is_file():
                        result.executed.append(output)
                        exports.append((output, exporter.submit(export_run_html, output, run_dir, run_id)))
                    took = time.monotonic() - started
                    if failure is not None:
                        progress.finish(f"{notebook.stem}: FAILED after {took:.1f} s at cell {failure.cell}")
                        result.failure = failure
                        break
                    progress.finish(f"{notebook.stem}: done in {took:.1f} s")
        finally:
            if upcoming is not None:
                with contextlib.suppress(Exception):
                    upcoming.shutdown()
            exporter.shutdown(wait=True)
        exported = [path for path, done in exports if done.exception() is None]
        # Stopped before every notebook ran: the run is failed even when the last one that ran completed.
        unfinished = stop.stopped() and len(result.executed) < len(notebooks)
        try:
            result.bundle = seal_bundle(
                run_dir, run_id=run_id, target=target, settings=settings, parameters=parameters,
                notebooks=result.executed, status="failed" if result.failure or unfinished else "completed",
                root=root, secrets=secrets, exported=exported, preexisting=preexisting,
                failure=result.failure.as_dict() if result.failure else None,
                started_at=started_at, allow_custom_endpoints=allow_custom_endpoints, signing_key=key,
            )
        except Exception as exc:
            if not stop.stopped():
                raise
            # Stopped: the stop is what the caller reports; whether the folder is sealed, it checks itself.
            what = "error" if isinstance(exc, AigwError) else f"sealing failed ({type(exc).__name__})"
            _progress(f"{what}: {redact(' '.join(str(exc).split()), secrets)}")
        if stop.stopped():
            raise RunInterrupted(stop.signum or signal.SIGINT, result.bundle)
        return result
    finally:
        if twin is not None:
            twin.close()
        if bucket is not None:
            bucket.stop()
        if key_folder is not None:
            key_folder.cleanup()


def sealed_status(run_dir: Path) -> str | None:
    """The status of ``run_dir``'s evidence when the folder is sealed (it verifies against its
    manifest); None when it is not."""
    from aigw.evidence import verify_bundle

    try:
        verify_bundle(run_dir)
        status = json.loads((run_dir / "evidence.json").read_text(encoding="utf-8"))["status"]
    except (AigwError, OSError, ValueError, KeyError, TypeError):
        return None
    return str(status)


def _report_stop(run_dir: Path | None) -> None:
    """What a stopped run says: sealed only when the folder verifies (never on the sealer's word)."""
    again = "run the same command again to finish: the notebooks converge on the same state"
    if run_dir is None or not run_dir.exists():
        _progress(f"stopped before the run folder was made: nothing ran, nothing to seal; {again}")
        return
    print(f"run folder: {run_dir}")
    status = sealed_status(run_dir)
    if status is None:
        _progress(f"stopped: {run_dir} is NOT sealed (the stop came before its evidence was complete); "
                  "do not use it as evidence; " + again)
    else:
        _progress(f"stopped: what ran is sealed as {status} in {run_dir} (SUMMARY.md shows where); {again}")


def claim_run_dir(stamp_dir: Path) -> Path:
    """Create the run folder ``stamp_dir`` (or ``stamp_dir-2``, ``-3``, ...) exclusively, and return it.

    ``mkdir`` without ``exist_ok`` is atomic: of two runs started in the same second, one gets the
    name and the other the next suffix, so no two runs ever share a folder (and one lose its evidence).
    """
    stamp_dir.parent.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count(1):
        candidate = stamp_dir if suffix == 1 else stamp_dir.with_name(f"{stamp_dir.name}-{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends


def _release_if_empty(run_dir: Path) -> None:
    """Remove a claimed run folder that nothing was written to (a refusal before the run): no empty trace."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def run_from_args(args: argparse.Namespace) -> int:
    """``aigw run``: see the module docstring. Prints the run folder and the criteria table."""
    root = repo_root()
    progress.verbose = bool(getattr(args, "verbose", False))
    env_file: Path | None = args.env_file
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"--env-file {str(env_file)!r} does not exist", hint="Check the path")
    env = read_env(env_file or find_env_file(Path.cwd()))
    target = args.target or ("cloudflare" if has_real_credentials(env) else "twin")
    notebooks = select_notebooks(root / "notebooks", args.notebooks, target)
    parameters = {name: parse_parameter_value(value) for name, value in (args.parameter or [])}
    claimed = args.out is None
    run_dir: Path = args.out or claim_run_dir(root / "outputs" / f"{utc_stamp()}-{target}")
    # A refused --out (not empty, not a folder) is the user's: never named as this run's folder.
    hint = twin_selection_hint(notebooks, target, getattr(args, "twin_state", None))
    if hint:
        _progress(hint)
    try:
        ours = not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir()))
    except OSError:
        ours = False
    # From the first line on, a SIGINT or SIGTERM is the runner's to handle (see _StopSignals).
    with _stop_signals():
        _progress(f"target {target}; notebooks {', '.join(p.stem for p in notebooks)}; run folder {run_dir}")
        try:
            result = run_notebooks(
                notebooks, target=target, run_dir=run_dir, parameters=parameters, env_file=env_file,
                faults=args.faults, twin_state=getattr(args, "twin_state", None), root=root,
                twin_account={k: v for k in ("plan", "log_system")
                              if (v := getattr(args, f"twin_{k}", None)) is not None},
                allow_custom_endpoints=bool(getattr(args, "allow_custom_endpoints", False)),
                signing_key=getattr(args, "signing_key", None),
            )
        except AigwError:
            if claimed:
                _release_if_empty(run_dir)
            if ours and run_dir.exists():
                print(f"run folder: {run_dir}")
            raise
        except KeyboardInterrupt:
            if claimed:
                _release_if_empty(run_dir)
            _report_stop(run_dir if ours and run_dir.exists() else None)
            raise
    print(f"run folder: {result.run_dir}")
    if result.bundle is not None:
        print(f"status: {result.bundle.status}")
        print(result.bundle.table())
    if result.failure is not None:
        raise RunError(str(result.failure), notebook=result.failure.notebook, cell=result.failure.cell)
    if result.bundle is None:
        return EXIT_FAILED
    status = result.bundle.status
    if status in {"failed", "incomplete"}:
        # One line, to stderr as every error: what is missing and why (SUMMARY.md's "Why:" line).
        print(f"aigw: {status}: {result.bundle.why}", file=sys.stderr)
    return EXIT_CODES.get(status, EXIT_FAILED)
