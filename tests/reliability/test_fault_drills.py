"""Fault drills on the twin's fault injection: the runbook finishes with the right state, never duplicates.

* ``test_control_plane_drill_over_seeded_runs``: notebooks 01 and 02 through the library (as their
  cells call it), twice per seed (create, then converge), on a twin answering 20% 5xx and 10% 429
  with ``Retry-After``; ``AIGW_DRILL_SEEDS`` seeds (default 10), run side by side, one twin each.
* ``test_full_runbook_drill_with_aigw_run``: ``aigw run`` of every notebook with control-plane and
  data-plane faults; ``AIGW_DRILL_RUNS`` runs (default 1; the full drill is ``AIGW_DRILL_RUNS=10``).
* a create whose answer never arrives (``hang_after_apply``), a kernel killed in the middle of 02,
  a runner interrupted, and the twin restarted on its state file in the middle of a run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aigw.cloudflare import CloudflareClient
from aigw.config import load_settings
from aigw.evidence import verify_bundle
from aigw.runner import EXIT_INCOMPLETE
from aigw.session import Session
from cftwin.context import TwinOptions
from cftwin.faults import ControlFault, FaultInjector
from cftwin.seed import generated_seed
from cftwin.server import TwinProcess, TwinServer
from reliability_support import (
    CONTROL_FAULTS,
    PROBE_ATTEMPTS,
    PROBE_TIMEOUT_S,
    PROVIDER_FAULTS,
    aigw,
    clean_env,
    criteria_status,
    evidence,
    last_line,
    read_state_file,
    run_control_plane,
    state_counts,
    write_env_file,
)

DRILL_SEEDS = int(os.environ.get("AIGW_DRILL_SEEDS", "10"))
DRILL_RUNS = int(os.environ.get("AIGW_DRILL_RUNS", "1"))
#: Where a drill writes its counts (docs/RELIABILITY.md quotes them); unset: nowhere.
DRILL_REPORT = os.environ.get("AIGW_DRILL_REPORT")


def _report(name: str, data: dict[str, Any]) -> None:
    if DRILL_REPORT:
        path = Path(DRILL_REPORT)
        doc = json.loads(path.read_text()) if path.is_file() else {}
        doc[name] = data
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _session(server: TwinServer | TwinProcess | str, seed: Any, run_dir: Path, **client: Any) -> Session:
    settings = load_settings(environ=seed.to_environ(server))
    session = Session(settings=settings, target="twin", run_id=run_dir.name, run_dir=run_dir)
    if client:
        session._client = CloudflareClient.from_settings(settings, **client)
    return session


# --- 10 seeded runs of the control-plane part -----------------------------------------------------------


def _one_seed(seed_number: int, folder: Path) -> dict[str, Any]:
    seed = generated_seed()
    faults = f"seed={seed_number},{CONTROL_FAULTS}"
    server = TwinServer(TwinOptions(), seed=seed, faults=faults).start()
    try:
        outcome: dict[str, Any] = {"seed": seed_number, "passes": []}
        retries: Counter[str] = Counter()
        requests = recoveries = 0
        for attempt in ("create", "converge"):
            session = _session(server, seed, folder / f"seed{seed_number}-{attempt}")
            try:
                checks = run_control_plane(session)
                stats = session.client.stats.snapshot()
            finally:
                session.close()
            statuses = criteria_status(checks)
            changes = {c.check: c.detail for c in checks if c.check.endswith("change")}
            outcome["passes"].append({"criteria": {k: sorted(v) for k, v in statuses.items()}, "changes": changes})
            retries.update(stats["retries_by_reason"])
            requests += stats["requests"]
            recoveries += stats["recoveries"]
        outcome.update(requests=requests, retries=dict(retries), recoveries=recoveries,
                       state=state_counts(server.context.db, seed.account_id))
        return outcome
    finally:
        server.close()


def test_control_plane_drill_over_seeded_runs(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=DRILL_SEEDS) as pool:
        outcomes = list(pool.map(lambda n: _one_seed(n, tmp_path), range(1, DRILL_SEEDS + 1)))
    total: Counter[str] = Counter()
    for outcome in outcomes:
        first, second = outcome["passes"]
        for run in (first, second):
            assert run["criteria"][1] == ["pass"] and run["criteria"][2] == ["pass"], outcome
        assert first["changes"]["gateway change"] == "created", outcome
        assert set(second["changes"].values()) == {"no change"}, outcome  # converged: nothing re-made
        state = outcome["state"]
        assert (state.gateways, state.stores, state.secrets, state.provider_configs) == (1, 1, 3, 3), outcome
        assert state.duplicates == () and state.half_made == (), outcome
        total.update(outcome["retries"])
    # The faults were really there: every reason was retried, in these seeds, many times.
    assert total["5xx"] >= DRILL_SEEDS and total["429"] >= DRILL_SEEDS // 2, total
    _report("control_plane_drill", {
        "runs": len(outcomes), "passes_per_run": 2, "faults": CONTROL_FAULTS,
        "requests": sum(o["requests"] for o in outcomes), "retries_by_reason": dict(total),
        "recoveries": sum(o["recoveries"] for o in outcomes),
        "duplicates": sum(len(o["state"].duplicates) for o in outcomes),
        "per_seed": [{"seed": o["seed"], "requests": o["requests"], "retries": o["retries"]} for o in outcomes],
    })


# --- full `aigw run` drills --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("run", range(1, DRILL_RUNS + 1))
def test_full_runbook_drill_with_aigw_run(tmp_path: Path, run: int) -> None:
    seed = generated_seed()
    env_file = write_env_file(tmp_path / "twin.env", seed)
    state = tmp_path / "twin.sqlite"
    out = tmp_path / "run"
    faults = f"seed={100 + run},{CONTROL_FAULTS},{PROVIDER_FAULTS}"
    # 05 as a dry run (confirm_delete ""), so that the state it leaves shows any duplicate the faults caused.
    done = aigw("run", "--target", "twin", "--env-file", str(env_file), "--twin-state", str(state),
                "--faults", faults, "--out", str(out), "-p", "confirm_delete", "",
                "-p", "request_timeout_s", str(PROBE_TIMEOUT_S), "-p", "probe_attempts", str(PROBE_ATTEMPTS),
                timeout=600)
    doc = evidence(out)
    criteria = {c["number"]: c["status"] for c in doc["criteria"]}
    assert done.returncode == 0, last_line(done.stderr)
    assert all(criteria[n] == "pass" for n in (1, 2, 3, 4, 5)), criteria
    retries: Counter[str] = Counter()
    for stats in doc["retries"].values():
        retries.update(stats.get("retries_by_reason", {}))
    assert sum(retries.values()) > 0 and set(retries) <= {"5xx", "429", "timeout", "connection"}, doc["retries"]
    counts = read_state_file(state, seed.account_id)
    assert (counts.gateways, counts.stores, counts.duplicates) == (1, 1, ()), counts
    assert counts.provider_configs == counts.secrets and counts.half_made == (), counts
    assert len(verify_bundle(out)) > 0
    _report(f"aigw_run_drill_{run}", {"faults": faults, "criteria": criteria, "retries_by_reason": dict(retries),
                                      "recorded_by": sorted(doc["retries"]), "duplicates": len(counts.duplicates)})


# --- a create whose answer never arrives -------------------------------------------------------------------


class HangFirstCreates(FaultInjector):
    """The twin's ``hang_after_apply`` fault, on the first POST of each kind only (gateway, store, secret,
    provider config): the write is committed, the answer withheld until the client has given up."""

    def __init__(self, hang_s: float) -> None:
        super().__init__()
        self.hang_s = hang_s
        self.hung: list[str] = []
        self._seen: set[str] = set()
        self._guard = threading.Lock()

    def control_decision(self, method: str, path: str) -> ControlFault:
        if method != "POST":
            return ControlFault()
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        with self._guard:
            if kind in self._seen:
                return ControlFault()
            self._seen.add(kind)
            self.hung.append(kind)
        return ControlFault("hang_after_apply", hang_s=self.hang_s)


def test_hang_after_apply_checks_before_retrying(tmp_path: Path) -> None:
    seed = generated_seed()
    faults = HangFirstCreates(hang_s=3.0)
    server = TwinServer(TwinOptions(), seed=seed)
    server.context.faults = faults
    server.start()
    try:
        session = _session(server, seed, tmp_path / "hang", timeout=1.0, deadline=60.0)
        try:
            checks = run_control_plane(session)
            stats = session.client.stats.snapshot()
        finally:
            session.close()
        assert sorted(faults.hung) == ["gateways", "provider_configs", "secrets", "stores"]
        assert criteria_status(checks) == {1: {"pass"}, 2: {"pass"}}
        # Each hung create timed out once, was found to have taken effect, and was not sent again.
        assert stats["retries_by_reason"] == {"timeout": 4}, stats
        assert stats["recoveries_by_outcome"] == {"took_effect": 4}, stats
        counts = state_counts(server.context.db, seed.account_id)
        assert (counts.gateways, counts.stores, counts.secrets, counts.provider_configs) == (1, 1, 3, 3)
        assert counts.duplicates == () and counts.half_made == ()
    finally:
        server.close()


# --- the kernel or the runner killed in the middle of 02 ---------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _kernel_of(runner_pid: int) -> int | None:
    """The runner's kernel: its child running ipykernel, or a child of its fork server (AIGW_KERNEL_FORKS)."""
    for child in _children(runner_pid):
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ipykernel" in cmdline:
            return child
        if b"aigw.kernel_zygote" in cmdline:
            # A forked kernel keeps the server's command line; the server's only children are kernels.
            forked = _children(child)
            if forked:
                return forked[0]
    return None


def _start_run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aigw", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=clean_env())


def _wait_for_line(process: subprocess.Popen[str], marker: str, seen: list[str]) -> bool:
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            return True
    return False


@pytest.fixture
def interrupted_setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    seed = generated_seed()
    yield {"seed": seed, "env_file": write_env_file(tmp_path / "twin.env", seed),
           "state": str(tmp_path / "twin.sqlite"), "base": tmp_path}


# 02 slowed by 429s (1 s Retry-After each), so that the kill lands while its keys are being stored.
_SLOW_02 = "seed=5,control.429=0.3,control.retry_after=1"
_MARKER = "stored = provider_keys.store_provider_keys"


def _wait_for_first_secret(state: str, account_id: str, process: subprocess.Popen[str]) -> int:
    """Secrets stored so far, once there is one (the twin commits before it answers; WAL lets us read)."""
    while process.poll() is None:
        try:
            counts = read_state_file(state, account_id)
        except sqlite3.OperationalError:  # the table is not there yet
            counts = None
        if counts is not None and counts.secrets >= 1:
            return counts.secrets
        time.sleep(0.05)
    return -1


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["kernel", "runner"])
def test_killed_in_the_middle_of_02_then_rerun_converges(interrupted_setup: dict[str, Any], victim: str) -> None:
    setup = interrupted_setup
    seed = setup["seed"]
    # -v: the runner's per-cell lines, which the drill waits for (without it, a line per notebook).
    common = ["run", "-v", "--target", "twin", "--env-file", str(setup["env_file"]), "--twin-state", setup["state"]]
    # A partial run is incomplete evidence: exit 3 (issue 11: was 0).
    assert aigw(*common, "--notebooks", "01", "--out", str(setup["base"] / "first")).returncode == EXIT_INCOMPLETE
    partial = setup["base"] / "partial"
    process = _start_run([*common, "--notebooks", "02", "--faults", _SLOW_02, "--out", str(partial)])
    seen: list[str] = []
    try:
        assert _wait_for_line(process, _MARKER, seen), "".join(seen)[-2000:]
        drain = threading.Thread(target=lambda: seen.extend(process.stderr or []), daemon=True)
        drain.start()
        assert _wait_for_first_secret(setup["state"], seed.account_id, process) >= 1, "".join(seen)[-2000:]
        if victim == "kernel":
            kernel = _kernel_of(process.pid)
            assert kernel is not None
            os.kill(kernel, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=120)
        drain.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    last = last_line("".join(seen))
    if victim == "kernel":
        assert re.fullmatch(r"aigw: error: 02_provider_keys cell \d+: DeadKernelError: Kernel died \(killed, or out "
                            r"of memory\); run aigw run again: it converges on the same state", last), last
    else:
        assert process.returncode == 130 and last == "aigw: interrupted", last
    doc = evidence(partial)
    assert doc["status"] == "failed"
    assert [(n["name"], n["status"]) for n in doc["notebooks"]] == [("02_provider_keys", "failed")]
    assert verify_bundle(partial)  # sealed: the partial evidence stays, marked failed
    half = read_state_file(setup["state"], seed.account_id)
    _report(f"killed_{victim}", {"secrets_when_killed": half.secrets, "configs_when_killed": half.provider_configs,
                                 "last_line": last})

    again = setup["base"] / "again"
    done = aigw(*common, "--notebooks", "01,02", "--out", str(again))
    assert done.returncode == EXIT_INCOMPLETE, last_line(done.stderr)
    criteria = {c["number"]: c["status"] for c in evidence(again)["criteria"]}
    assert criteria[1] == "pass" and criteria[2] == "pass"
    counts = read_state_file(setup["state"], seed.account_id)
    assert (counts.gateways, counts.stores, counts.secrets, counts.provider_configs) == (1, 1, 3, 3), counts
    assert counts.duplicates == () and counts.half_made == ()
    assert verify_bundle(partial)  # the re-run left the failed run's folder as it was


# --- the twin restarted in the middle of a run ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_twin_restarted_during_a_run_loses_nothing(tmp_path: Path) -> None:
    seed = generated_seed()
    env_file = write_env_file(tmp_path / "twin.env", seed)
    state = tmp_path / "twin.sqlite"
    port = _free_port()
    twin = TwinProcess(state=state, env_file=env_file, port=port).start()
    session = _session(twin.url, seed, tmp_path / "restart")
    try:
        from aigw.steps import create_gateway, provider_keys

        desired = create_gateway.desired_gateway(session)
        create_gateway.apply_gateway_plan(session, create_gateway.plan_gateway_change(session, desired))
        before = session.client.get_gateway(desired.gateway_id)
        keys = provider_keys.collect_keys(session)
        store = provider_keys.ensure_store(session, "")
        twin.stop()  # in the middle of notebook 02: the store is made, no key stored yet
        restarted = TwinProcess(state=state, env_file=env_file, port=port).start()
        try:
            stored = provider_keys.store_provider_keys(session, store, keys)  # the same session and client
            verified = provider_keys.verify_provider_keys(session, keys, store)
            after = session.client.get_gateway(desired.gateway_id)
            assert {c.status for c in verified.checks} == {"pass"}
            assert [o.secret for o in stored.outcomes] == ["created"] * 3
            assert after.created_at == before.created_at and after.store_id == store.store.id
            assert session.client.list_stores() == [store.store]
        finally:
            restarted.stop()
    finally:
        session.close()
        twin.stop()
    counts = read_state_file(state, seed.account_id)
    assert (counts.gateways, counts.stores, counts.secrets, counts.provider_configs) == (1, 1, 3, 3)
    assert counts.duplicates == () and counts.half_made == ()

