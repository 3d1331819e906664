"""``aigw run``'s execution of a ``RunPlan``: serve the twin, run the notebooks with papermill in order, seal.

* Target ``twin``: a ``TwinServer`` thread on a free loopback port (state in memory, or the file of
  ``--twin-state``), seeded as the plan says (``aigw.background_twin.serve_for_run``); stopped at the end.
  The port is bound first, so the first kernels (whose environment holds the twin's URL) boot while the twin
  and papermill are imported.
* The kernels are forked, with their notebook's imports done, by the run's fork server
  (``aigw.kernel_zygote``, started in the kernels' environment; Linux), two notebooks ahead.
* Each executed notebook's HTML is made while the next one runs, by a worker process
  (``aigw.evidence.export_worker``), and handed to the seal.
* Target ``cloudflare``: the real API, with the settings the plan resolved.
* The notebooks reach the target through the kernel's **environment** (``CLOUDFLARE_*``, tokens, keys,
  ``AIGW_TARGET``, ``AIGW_RUN_ID``, ``AIGW_RUN_DIR``). Only non-secret values are papermill parameters
  (``run_id``, ``run_dir``, and ``-p NAME VALUE`` for the notebooks that declare ``NAME``); the plan refused
  any value that is a configured secret or looks like a key.
* Progress goes to stderr: a bar per notebook (on a terminal) and a line when it finishes; ``-v`` adds a
  line per cell. A failing notebook stops the run: its partial output is kept, the bundle is sealed with
  status ``failed`` and the result names the notebook, the cell and the error in one line (also
  ``evidence.json``'s ``failure``).
* Exit code (``EXIT_CODES``): 0 when the bundle is ``passed`` (Cloudflare) or ``rehearsal-passed``
  (twin); 1 when it is ``failed`` (and for every other error); 3 when it is ``incomplete`` (a criterion
  not run, skipped or missing a provider: e.g. ``--notebooks 01,02``). 2 is argparse's, for bad usage.

Nothing here reads the environment or a settings file: the plan did (``aigw.plan``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aigw.background_twin import RunTwin, serve_for_run
from aigw.config import Secret, Settings, merge_env, redact, settings_from_env
from aigw.errors import AigwError
from aigw.evidence import Bundle, own_files, seal_bundle
from aigw.evidence.export_worker import ExportWorker
from aigw.execution import (
    NotebookFailure,
    caused_by_stop,
    code_cells,
    execute_notebook,
    failed_cell,
    mark_stopped_cell,
    prepare_kernel,
    register_engine,
    unstarted_kernel,
)
from aigw.hosts import check_endpoints
from aigw.kernels import ForkServer, kernel_environment
from aigw.plan import RunPlan
from aigw.progress import progress
from aigw.run_folder import say
from aigw.secrets_scan import secrets_from_environ
from aigw.stop_signals import RunInterrupted, StopSignals, stop_signals

__all__ = ["EXIT_CODES", "EXIT_FAILED", "EXIT_INCOMPLETE", "RunResult", "run_plan"]

#: ``aigw run``'s exit code by bundle status: only a bundle whose every criterion passed exits 0.
EXIT_FAILED: Final = 1
#: How many notebooks ahead a kernel is started (booting and importing while the notebooks before it run).
#: Two, so that a short notebook (05 takes about a second) does not wait for the boot of the kernel after it.
KERNELS_AHEAD: Final = 2
EXIT_INCOMPLETE: Final = 3
EXIT_CODES: Final[Mapping[str, int]] = {"passed": 0, "rehearsal-passed": 0, "incomplete": EXIT_INCOMPLETE,
                                        "failed": EXIT_FAILED}


@dataclass
class RunResult:
    run_dir: Path
    target: str
    run_id: str
    executed: list[Path] = field(default_factory=list)
    failure: NotebookFailure | None = None
    bundle: Bundle | None = None


def run_plan(plan: RunPlan) -> RunResult:
    """Run the plan's notebooks in order and seal the bundle.

    Stops at the first failing notebook (its partial output stays). ``EvidenceError`` when a secret
    was found in the bundle; otherwise the result says whether a notebook failed. SIGINT and SIGTERM
    stop the run: what ran is sealed, then ``RunInterrupted`` is raised (see ``aigw.stop_signals``).
    """
    with stop_signals() as stop:
        return _run(plan, stop)


def _stop_now(stop: StopSignals) -> None:
    """Checked before each step that makes something: the twin, the run folder."""
    if stop.stopped():
        raise RunInterrupted(stop.signum or signal.SIGINT)


def _run(plan: RunPlan, stop: StopSignals) -> RunResult:
    _stop_now(stop)
    with contextlib.ExitStack() as stack:
        kernel_env = dict(plan.kernel_env)
        settings = plan.settings
        twin: RunTwin | None = None
        if plan.target == "twin":
            assert plan.twin_seed is not None
            # The port is bound here; the twin serves from twin.serve(), once the first kernels are booting.
            twin = stack.enter_context(serve_for_run(plan.twin_seed, state=plan.twin_state, faults=plan.faults,
                                                     with_bucket=plan.needs_bucket))
            if twin.bucket_url is not None:
                say(f"bucket (S3 API, standing in for R2) at {twin.bucket_url}")
            # The client keeps to the budget the twin enforces (Cloudflare's, unless it was scaled).
            kernel_env = {**twin.environ, "AIGW_API_BUDGET": twin.api_budget, **plan.kernel_env}
            # The kernels' settings: --env-file (or nothing) with the twin's variables over it.
            settings = settings_from_env(merge_env(plan.file_values, kernel_env), env_file=plan.env_file)
            check_endpoints("twin", settings)
        assert settings is not None
        secrets = [*settings.secrets(), *secrets_from_environ({**plan.operator_env, **kernel_env})]
        _stop_now(stop)
        # It needs no secret: its process gets this environment without the hidden variables (the signing key)
        # and without any variable that holds a secret of the run.
        revealed = {secret.reveal() for secret in secrets}
        worker = ExportWorker({name: value for name, value in os.environ.items()
                               if name not in plan.hidden and value not in revealed})
        stack.callback(worker.close)
        # The kernels' environment, from the first kernel's start to the last notebook's end (not the seal's).
        kernels = contextlib.ExitStack()
        stack.callback(kernels.close)
        kernels.enter_context(kernel_environment(kernel_env, drop=plan.hidden))
        # The kernels are forked by one server that keeps their imports (None where it cannot run: then each
        # starts as its own interpreter). Started in the kernels' environment, which it passes on; stopped
        # once every kernel has been shut down (the stack's callbacks run after _execute_and_seal's).
        forks = ForkServer.start() if plan.kernel_forks else None
        if forks is not None:
            stack.callback(forks.close)
        # The first kernels boot (about a second each) while this process starts the twin, imports papermill
        # and cleans the temp folder; if any of that fails, they are shut down unused.
        upcoming = {i: prepare_kernel(nb, i, forks) for i, nb in enumerate(plan.notebooks[:KERNELS_AHEAD])}
        kernels.callback(_shut_down_all, upcoming)
        if twin is not None:
            twin.serve()
            say(f"twin serving at {twin.url} (state {plan.twin_state or 'in memory'})")
        register_engine()
        from aigw.kernels import clean_stale_kernel_files

        clean_stale_kernel_files()  # what killed runs left in the temp folder (their kernels' files)
        _stop_now(stop)  # before the run folder exists: nothing to seal, nothing made
        return _execute_and_seal(plan, stop, settings=settings, secrets=secrets, upcoming=upcoming, kernels=kernels,
                                 worker=worker, twin=twin, forks=forks)
    raise AssertionError("unreachable")  # pragma: no cover - the block returns or raises


def _execute_and_seal(plan: RunPlan, stop: StopSignals, *, settings: Settings, secrets: Sequence[Secret],
                      upcoming: dict[int, Any], kernels: contextlib.ExitStack, worker: ExportWorker,
                      twin: RunTwin | None, forks: ForkServer | None) -> RunResult:
    """Run the notebooks in the kernels' environment (``kernels``, closed before the seal), then seal."""
    run_dir = plan.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # Checked empty by the plan; anything that came in since is not the run's and is left alone.
    preexisting = frozenset(str(p.relative_to(run_dir)) for p in own_files(run_dir))
    result = RunResult(run_dir=run_dir, target=plan.target, run_id=plan.run_id)
    # Each notebook's HTML is made while the next notebook runs in its kernel: by the worker process (nbconvert
    # in this process held the GIL against the twin's thread), which this thread waits for.
    exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigw-html")
    exports: list[tuple[Path, Future[Path]]] = []
    # A kernel's shutdown waits for its process to exit (about half a second): done in these threads, side by
    # side, while the next notebooks run and the bundle is sealed (one at a time, the last ones held the seal
    # back 1.4 s); every one has finished before the run returns.
    stopper = ThreadPoolExecutor(max_workers=len(plan.notebooks) + KERNELS_AHEAD,
                                 thread_name_prefix="aigw-kernel-stop")
    try:
        try:
            _run_each(plan, stop, result, secrets, lambda output: exports.append(
                (output, exporter.submit(worker.export, output, run_dir, plan.run_id))), upcoming, stopper, forks)
        finally:
            if twin is not None:  # no notebook calls it any more: it shuts down while the exports finish
                twin.begin_stop()
            kernels.close()
            exporter.shutdown(wait=True)
        return _seal(plan, stop, result, settings=settings, secrets=secrets, exports=exports,
                     preexisting=preexisting)
    finally:
        stopper.shutdown(wait=True)


def _seal(plan: RunPlan, stop: StopSignals, result: RunResult, *, settings: Settings, secrets: Sequence[Secret],
          exports: Sequence[tuple[Path, Future[Path]]], preexisting: frozenset[str]) -> RunResult:
    """Seal what ran (the exports made are handed over); ``RunInterrupted`` after it when the run was stopped."""
    run_dir = plan.run_dir
    exported = [path for path, done in exports if done.exception() is None]
    # Stopped before every notebook ran: the run is failed even when the last one that ran completed.
    unfinished = stop.stopped() and len(result.executed) < len(plan.notebooks)
    try:
        result.bundle = seal_bundle(
            run_dir, run_id=plan.run_id, target=plan.target, settings=settings, parameters=plan.parameters,
            notebooks=result.executed, status="failed" if result.failure or unfinished else "completed",
            root=plan.root, secrets=secrets, exported=exported, preexisting=preexisting,
            failure=result.failure.as_dict() if result.failure else None,
            started_at=plan.started_at, allow_custom_endpoints=plan.allow_custom_endpoints,
            signing_key=plan.signing_key,
        )
    except Exception as exc:
        if not stop.stopped():
            raise
        # Stopped: the stop is what the caller reports; whether the folder is sealed, it checks itself.
        what = "error" if isinstance(exc, AigwError) else f"sealing failed ({type(exc).__name__})"
        say(f"{what}: {redact(' '.join(str(exc).split()), secrets)}")
    if stop.stopped():
        raise RunInterrupted(stop.signum or signal.SIGINT, result.bundle)
    return result


def _run_each(plan: RunPlan, stop: StopSignals, result: RunResult, secrets: Sequence[Secret],
              export: Callable[[Path], object], upcoming: dict[int, Any], stopper: ThreadPoolExecutor,
              forks: ForkServer | None = None) -> None:
    """The notebooks in order, each in its own kernel (started ahead: ``upcoming`` holds the first ones, by
    notebook index), until one fails or a stop comes; ``export(output)`` for each output written, and each
    kernel handed to ``stopper`` to shut down once its notebook is done."""
    notebooks = plan.notebooks
    try:
        for index, notebook in enumerate(notebooks):
            if stop.stopped():
                break
            kernel = upcoming.pop(index, None) or unstarted_kernel(notebook)
            # Safe to start now: a kernel sees only the environment and folder, which are the same
            # for every notebook of the run; if this notebook fails, it is shut down unused.
            ahead = index + KERNELS_AHEAD
            if ahead < len(notebooks):
                upcoming[ahead] = prepare_kernel(notebooks[ahead], ahead, forks)
            mine = plan.notebook_parameters(notebook)
            output = plan.run_dir / notebook.name
            started = time.monotonic()
            progress.start(notebook.stem, code_cells(notebook), ", ".join(f"{k}={v}" for k, v in mine.items()))
            stop.kernel = kernel
            try:
                failure = execute_notebook(notebook, output, mine, notebook.parent, secrets, kernel)
            finally:
                stop.kernel = None
                stopper.submit(_shut_down, kernel)
            if failure is not None and stop.stopped() and caused_by_stop(failure):
                # A notebook that returned without a failure ran to its end: it stays completed; one
                # that failed on its own before the stop keeps its own error.
                name = signal.Signals(stop.signum or signal.SIGINT).name
                failure = NotebookFailure(notebook.stem, failed_cell(output),
                                          f"interrupted: the run was stopped ({name}) before the notebook finished")
            if failure is not None:
                failure = mark_stopped_cell(output, failure)
            if output.is_file():
                result.executed.append(output)
                export(output)
            took = time.monotonic() - started
            if failure is not None:
                progress.finish(f"{notebook.stem}: FAILED after {took:.1f} s at cell {failure.cell}")
                result.failure = failure
                break
            progress.finish(f"{notebook.stem}: done in {took:.1f} s")
    finally:
        for unused in upcoming.values():
            if unused is not None:
                stopper.submit(_shut_down, unused)
        upcoming.clear()


def _shut_down_all(kernels: dict[int, Any]) -> None:
    """The kernels started ahead that no notebook took (a failure before the notebooks ran)."""
    for unused in kernels.values():
        if unused is not None:
            _shut_down(unused)
    kernels.clear()


def _shut_down(kernel: Any) -> None:
    try:
        kernel.shutdown()
    except Exception:  # a kernel that will not stop must not skip the seal
        with contextlib.suppress(Exception):
            kernel.send_signal(signal.SIGKILL)
