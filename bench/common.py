"""What the benchmarks share: a seeded twin in its own process, provisioning through the v4 API, timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aigw.cloudflare import CloudflareClient, RequestBudget
from aigw.config import PROVIDERS, Secret
from aigw.steps.byok_secrets import secret_name
from cftwin.seed import TwinSeed, generated_seed
from cftwin.server import TwinProcess
from cftwin.timing import NO_DELAYS

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GATEWAY_ID = "bench"
T = TypeVar("T")

__all__ = [
    "GATEWAY_ID",
    "PYTHON",
    "ROOT",
    "BenchTwin",
    "Row",
    "child_env",
    "cpu_seconds",
    "median",
    "timed",
]


@dataclass
class Row:
    """One line of the table: ``figure`` against ``reference``, and whether ``target`` is met."""

    name: str
    what: str
    figure: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (and its reaped children) has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(v) for v in fields[11:15]) / ticks


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this one, minus anything that aims aigw at a real account."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDFLARE_", "CF_AIG_", "AIGW_")) and not k.endswith("_API_KEY")}
    # Children start elsewhere (a kernel's working directory): a relative PYTHONPATH such as ``lib`` would
    # make them import the venv's installed checkout instead of the one being measured.
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(part).resolve()) for part in env["PYTHONPATH"].split(os.pathsep)
                                            if part)
    env.update(extra or {})
    return env


class BenchTwin:
    """A seeded twin in a subprocess (``aigw twin serve --admin``), as Cloudflare is another machine.

    ``options`` go to ``PUT /__twin__/config``; ``provision()`` creates the gateway, a store, one BYOK
    secret and provider config per provider through the v4 API (the way notebooks 01-02 do).
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.seed: TwinSeed = generated_seed(GATEWAY_ID)
        # No delays (cftwin.timing): the benches measure speed, and a pending secret would refuse the first probes.
        self.process = TwinProcess(admin=True, env=child_env(), delays=NO_DELAYS)
        self.options = dict(options or {})
        self.url = ""

    def start(self) -> BenchTwin:
        self.process.start()
        self.url = self.process.url
        with httpx.Client(base_url=self.process.admin_url, headers=self.process.admin_headers, timeout=60) as admin:
            admin.post("/seed", json=self.seed.as_json()).raise_for_status()
            if self.options:
                admin.put("/config", json=self.options).raise_for_status()
        return self

    def close(self) -> None:
        self.process.stop()

    def __enter__(self) -> BenchTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        proc = self.process._proc  # the bench reads the server's CPU time; TwinProcess has no public pid
        assert proc is not None, "the twin is not running"
        return proc.pid

    @property
    def api_base_url(self) -> str:
        return self.process.api_base_url

    @property
    def account_id(self) -> str:
        return self.seed.account_id

    @property
    def api_token(self) -> Secret:
        return Secret(self.seed.api_token, "CLOUDFLARE_API_TOKEN")

    @property
    def aig_token(self) -> Secret:
        return Secret(self.seed.aig_token or self.seed.api_token, "CF_AIG_TOKEN")

    def configure(self, options: Mapping[str, Any]) -> None:
        with httpx.Client(base_url=self.process.admin_url, headers=self.process.admin_headers, timeout=60) as admin:
            admin.put("/config", json=dict(options)).raise_for_status()

    def client(self, budget: RequestBudget | None = None, **options: Any) -> CloudflareClient:
        # A bench budget of its own: the process-wide one of the token would carry counts across rows.
        return CloudflareClient(base_url=self.api_base_url, api_token=self.api_token, account_id=self.account_id,
                                budget=budget or RequestBudget(1_000_000, 300), **options)

    def provision(self, *, collect_logs: bool = True) -> None:
        with self.client() as cf:
            cf.create_gateway(GATEWAY_ID, {"collect_logs": collect_logs, "authentication": True})
            store = cf.create_store("bench")
            cf.update_gateway(GATEWAY_ID, {"store_id": store.id})
            for provider in PROVIDERS:
                key = Secret(self.seed.provider_keys[provider], provider)
                secret = cf.create_secret(store.id, secret_name(GATEWAY_ID, provider, "default"), key)
                cf.create_provider_config(GATEWAY_ID, provider, "default", secret_id=secret.id)

    def seed_logs(self, count: int, seed: int = 7) -> None:
        with httpx.Client(base_url=self.process.admin_url, headers=self.process.admin_headers, timeout=600) as admin:
            admin.post("/logs/seed", json={"account_id": self.account_id, "gateway_id": GATEWAY_ID,
                                           "count": count, "seed": seed}).raise_for_status()


@contextmanager
def served(process_args: Sequence[str], ready_file: Path, timeout_s: float = 30.0) -> Iterator[tuple[str, int]]:
    """Run ``process_args`` (a server that writes its URL into ``ready_file``); yield URL and pid; stop it."""
    proc = subprocess.Popen(list(process_args), env=child_env(), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while not (ready_file.is_file() and ready_file.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"{process_args[:3]} exited with {proc.returncode} before serving")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process_args[:3]} did not serve within {timeout_s:g} s")
            time.sleep(0.02)
        yield ready_file.read_text().strip(), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
