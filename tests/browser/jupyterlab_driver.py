"""A JupyterLab on a free loopback port, driven by Selenium with Debian's chromium / chromedriver.

``Lab`` is one JupyterLab server started for a throwaway project folder (a copy of ``notebooks/`` and
``pyproject.toml`` plus the test's ``.dev.vars``), with its own Jupyter config, settings, workspaces and aigw
cache folders, so nothing of the developer's is read or written. ``Page`` is the browser on it: open a
notebook, use the menus as an operator does, wait for the kernel, read the rendered page. ``step`` saves a
screenshot into the test's temporary folder when what it wraps fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
_WAIT_S = 90.0
T = TypeVar("T")

#: Variables that would aim the notebooks somewhere else than this test's background twin.
_CLEARED = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID", "CLOUDFLARE_API_TOKEN", "CF_AIG_TOKEN",
            "GOOGLE_AI_STUDIO_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CLOUDFLARE_API_BASE_URL",
            "CLOUDFLARE_GATEWAY_BASE_URL", "AIGW_PROVIDER_BASE_URL", "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR",
            "AIGW_ENV_FILE", "AIGW_CACHE_DIR", "AIGW_TWIN_PORT", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = _WAIT_S) -> T:
    """Poll ``probe`` until it returns something truthy (a condition to wait for, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as exc:  # the page is redrawing: try again
            last, value = exc, None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}" + (f" (last error: {last!r})" if last else ""))


@dataclass
class Lab:
    project: Path
    cache: Path
    url: str
    token: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, base: Path, dev_vars: str) -> Lab:
        project = base / "project"
        shutil.copytree(ROOT / "notebooks", project / "notebooks")
        shutil.copyfile(ROOT / "pyproject.toml", project / "pyproject.toml")
        (project / ".dev.vars").write_text(dev_vars, encoding="utf-8")
        cache, home = base / "cache", base / "home"
        cache.mkdir()
        home.mkdir()
        port, token = free_port(), secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        lib = str(ROOT / "lib")
        env.update({
            "PYTHONPATH": os.pathsep.join([lib, *filter(None, [os.environ.get("PYTHONPATH")])]),
            "AIGW_CACHE_DIR": str(cache), "AIGW_TWIN_PORT": str(free_port()),
            "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "IPYTHONDIR": str(home / "ipython"),
        })
        log = (base / "jupyterlab.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project}",
             "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited; see {base / 'jupyterlab.log'}")
            return httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).status_code == 200

        wait_for("JupyterLab to answer", up)
        return cls(project, cache, url, token, process)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        pid_file = self.cache / "twin.pid"  # the background twin the notebooks started
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)

    def twin_seed(self, name: str) -> str:
        """A value of the background twin's seed (``twin.env``): the rehearsal key it accepts."""
        for line in (self.cache / "twin.env").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key == name:
                return value.strip().strip("'")
        raise AssertionError(f"{name} is not in the twin's seed")


class Page:
    """The browser on a JupyterLab, as an operator uses it."""

    def __init__(self, lab: Lab, shots: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1400,1100", "--no-first-run"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.lab = lab
        self.shots = shots

    def close(self) -> None:
        self.driver.quit()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.driver.save_screenshot(str(self.shots / f"{name}.png"))
                # The rendered text too (the typed keys are asserted absent from it, so it is safe to keep).
                (self.shots / f"{name}.txt").write_text(
                    "\n\n".join(self.output_text(c) for c in self.code_cells()), encoding="utf-8")
            raise

    # -- finding things ---------------------------------------------------------------------------------

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def xpath(self, path: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.XPATH, path))

    def cells(self) -> list[Any]:
        return self.css(".jp-Notebook .jp-Cell")

    def code_cells(self) -> list[Any]:
        return self.css(".jp-Notebook .jp-CodeCell")

    def output_text(self, cell: Any) -> str:
        return "\n".join(o.text for o in cell.find_elements("css selector", ".jp-OutputArea-output"))

    def errors(self) -> list[str]:
        return [e.text for e in self.css('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]

    # -- acting ------------------------------------------------------------------------------------------

    def open(self, notebook: str) -> None:
        self.driver.get(f"{self.lab.url}/lab/tree/notebooks/{notebook}?reset&token={self.lab.token}")
        wait_for(f"{notebook} to open", lambda: len(self.code_cells()) > 2)
        wait_for("the kernel to be idle", lambda: self.css('.jp-Notebook-ExecutionIndicator[data-status="idle"]'))

    def menu(self, top: str, item: str) -> None:
        label = f"//div[contains(@class,'lm-MenuBar-itemLabel') and text()='{top}']"
        wait_for(f"menu {top}", lambda: self.xpath(label))[0].click()
        entry = wait_for(f"menu item {item}", lambda: [e for e in self.xpath(
            f"//li[contains(@class,'lm-Menu-item')][.//div[contains(@class,'lm-Menu-itemLabel') and text()='{item}']]")
            if e.is_displayed()])
        entry[0].click()

    def _counts(self) -> list[int]:
        counts = []
        for prompt in self.css(".jp-CodeCell .jp-InputPrompt"):
            digits = "".join(ch for ch in prompt.text if ch.isdigit())
            counts.append(int(digits) if digits else 0)
        return counts

    def _run(self, command: str, before: int) -> None:
        """Use Run > ``command`` until a cell ran (a notebook not yet focused ignores it), then wait until
        no cell is queued or running and the kernel is idle."""
        def started() -> bool:
            return max(self._counts(), default=0) > before or any("[*]" in p.text for p in self.css(".jp-InputPrompt"))

        for _attempt in range(3):
            self.menu("Run", command)
            try:
                wait_for(f"{command} to start", started, timeout=15)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"Run > {command} started no cell")

        def idle() -> bool:
            busy = any("[*]" in p.text for p in self.css(".jp-InputPrompt"))
            return not busy and bool(self.css('.jp-Notebook-ExecutionIndicator[data-status="idle"]'))

        wait_for("the cells to finish", idle, timeout=150)

    def _select(self, cell: Any) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
        prompt = cell.find_element("css selector", ".jp-InputPrompt")
        ActionChains(self.driver).move_to_element(prompt).click().perform()
        wait_for("the cell to be selected", lambda: "jp-mod-selected" in (cell.get_attribute("class") or ""))

    def run_all(self) -> None:
        self._select(self.code_cells()[0])  # focus the notebook: its commands act on the active one
        self._run("Run All Cells", max(self._counts(), default=0))

    def run_from(self, cell: Any) -> None:
        """Select ``cell`` and use Run > Run Selected Cell and All Below."""
        before = max(self._counts(), default=0)
        self._select(cell)
        self._run("Run Selected Cell and All Below", before)

    def save(self) -> None:
        self.menu("File", "Save Notebook")
        wait_for("the notebook to be saved", lambda: not self.css(".jp-mod-dirty"), timeout=30)

    def source(self) -> str:
        return str(self.driver.page_source)
