"""An operator's sitting in a real browser: JupyterLab against a background twin, driven by Selenium.

The operator's ``.dev.vars`` leaves out ``OPENAI_API_KEY``; the tests run in order as one sitting
(01, 02, 03, 05) and check what the rendered page shows. Screenshots of a failing step go to the test's
temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aigw.evidence import verify_bundle
from jupyterlab_driver import CHROMEDRIVER, CHROMIUM, Lab, Page, wait_for

pytest.importorskip("selenium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="chromium and chromium-driver are not installed (.ci/run installs them)"),
]

GATEWAY = "browser-gw"


@pytest.fixture(scope="module")
def sitting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from cftwin.seed import generated_provider_key

    base = tmp_path_factory.mktemp("browser")
    keys = {"ANTHROPIC_API_KEY": generated_provider_key("anthropic"),
            "GOOGLE_AI_STUDIO_API_KEY": generated_provider_key("google-ai-studio")}
    dev_vars = f"CLOUDFLARE_GATEWAY_ID={GATEWAY}\n" + "".join(f"{k}={v}\n" for k, v in keys.items())
    lab = Lab.start(base, dev_vars)
    page = Page(lab, base)
    try:
        yield {"lab": lab, "page": page, "keys": keys, "typed": [], "shots": base}
    finally:
        page.close()
        lab.stop()


def _cell_with(page: Page, text: str) -> Any:
    return next(c for c in page.code_cells() if text in c.find_element("css selector", ".jp-InputArea").text)


def test_01_runs_every_cell_and_names_the_target_first(sitting: dict[str, Any]) -> None:
    page: Page = sitting["page"]
    with page.step("01"):
        page.open("01_create_gateway.ipynb")
        page.run_all()
        assert page.errors() == []
        session_cell = _cell_with(page, "session = open_session")
        first = session_cell.find_elements("css selector", ".jp-OutputArea-output")[0].text
        assert first.startswith("🧪 Target: twin") and "account" in first
        shown = page.output_text(session_cell)
        assert "not set: OPENAI_API_KEY" in shown and ".dev.vars: CLOUDFLARE_GATEWAY_ID" in shown
        assert "generated for the rehearsal" in shown
        assert GATEWAY in page.output_text(page.code_cells()[-1]) or GATEWAY in page.source()
        page.save()


def test_02_asks_for_the_missing_key_stores_it_and_refuses_a_wrong_one(sitting: dict[str, Any]) -> None:
    from cftwin.seed import generated_provider_key

    page: Page = sitting["page"]
    lab: Lab = sitting["lab"]
    with page.step("02-run-all"):
        page.open("02_provider_keys.ipynb")
        page.run_all()
        keys_cell = _cell_with(page, "keys = provider_keys.collect_keys")
        table = keys_cell.find_element("css selector", ".jp-RenderedMarkdown")
        assert "password field below" in table.text
        password = keys_cell.find_element("css selector", "input[type=password]")
        assert password.location["y"] > table.location["y"]  # the field is where the text says
        errors = page.errors()  # Run All stopped where the required key is missing: one line, not a traceback
        assert len(errors) == 1 and errors[0].splitlines()[0].startswith("ConfigError: OPENAI_API_KEY is not set")
        assert len(errors[0].splitlines()) == 2 and "%tb" in errors[0]

    def store(key: str, expect: str) -> str:
        field = keys_cell.find_element("css selector", "input[type=password]")
        field.clear()
        field.send_keys(key)
        keys_cell.find_element("xpath", ".//button[.//*[contains(text(),'Store')] or contains(.,'Store')]").click()
        return wait_for(f"the message '{expect}'", lambda: next(
            (m.text for m in keys_cell.find_elements("css selector", ".widget-html-content") if expect in m.text),
            None))

    wrong = generated_provider_key("openai")
    sitting["typed"].append(wrong)
    with page.step("02-wrong-key"):
        message = store(wrong, "refused")
        assert message.startswith("❌ Stored, but openai refused the key")
        page.run_from(_cell_with(page, "stored = provider_keys.store_provider_keys"))
        verified = page.output_text(_cell_with(page, "verified = provider_keys.verify_provider_keys"))
        assert "openai key stored and active: openai refused the key" in verified
        errors = page.errors()
        # One line: the failed checks of the cell, listed (the key's own check, and the count of active keys).
        assert len(errors) == 1 and errors[0].startswith("CheckFailed: ")
        assert "criterion 2: openai key stored and active: openai refused the key" in errors[0].splitlines()[0]

    good = lab.twin_seed("OPENAI_API_KEY")
    sitting["typed"].append(good)
    with page.step("02-good-key"):
        message = store(good, "✅")
        assert "openai accepts the key" in message and "refused" not in message
        page.run_from(_cell_with(page, "stored = provider_keys.store_provider_keys"))
        assert page.errors() == []
        verified = page.output_text(_cell_with(page, "verified = provider_keys.verify_provider_keys"))
        assert "3 provider keys stored and active: 3 of 3" in verified
        page.save()
    with page.step("02-no-key-anywhere"):
        saved = (lab.project / "notebooks" / "02_provider_keys.ipynb").read_text(encoding="utf-8")
        outputs = [p.read_bytes() for p in (lab.project / "outputs").rglob("*") if p.is_file()]
        for key in sitting["typed"]:
            assert key not in page.source() and key not in saved
            assert all(key.encode() not in data for data in outputs)
        assert "application/vnd.aigw.check+json" in saved  # the saved notebook holds the evidence


def test_03_amounts_render_as_text(sitting: dict[str, Any]) -> None:
    page: Page = sitting["page"]
    with page.step("03"):
        page.open("03_verify_endpoints.ipynb")
        page.run_all()
        plan = page.output_text(_cell_with(page, "plan = verify_endpoints.plan_probes"))
        assert "at most USD 0.0" in plan and "of a USD 0.05 budget" in plan and "**" not in plan
        assert page.css(".jp-OutputArea-output mjx-container, .jp-OutputArea-output .MathJax") == []
        assert page.errors() == []
        page.save()


def test_05_after_delete_tells_one_story(sitting: dict[str, Any]) -> None:
    page: Page = sitting["page"]
    lab: Lab = sitting["lab"]
    with page.step("05-run-all"):
        page.open("05_rollback.ipynb")
        page.run_all()
        confirm_cell = _cell_with(page, "confirmation = rollback.confirm")
        assert "Not confirmed yet" in page.output_text(confirm_cell)
        result_cell = _cell_with(page, "result = rollback.apply_rollback")
        assert "Waiting for the Delete button above" in page.output_text(result_cell)
        assert "Dry run" not in page.output_text(result_cell)
    with page.step("05-delete"):
        from selenium.webdriver.common.keys import Keys

        # Tab out of the box, as a person moving to the button does: the typed id reaches the kernel first.
        confirm_cell.find_element("css selector", "input[type=text]").send_keys(GATEWAY, Keys.TAB)
        button = confirm_cell.find_element("xpath", ".//button[contains(.,'Delete')]")
        button.click()

        def confirmed() -> bool:
            text = page.output_text(confirm_cell)
            if "exactly; nothing was deleted" in text and button.is_enabled():
                button.click()  # the click overtook the typed text on a loaded machine: press again
            return "Confirmed by the confirm widget" in text

        wait_for("the header to say Confirmed", confirmed)
        header = page.output_text(confirm_cell)
        deleted = int(header.split("deleted ")[1].split(" item")[0])
        button = confirm_cell.find_element("xpath", ".//button[contains(.,'Deleted')]")
        assert not button.is_enabled()
        shown = wait_for("the cells below to show the rollback",
                         lambda: page.output_text(result_cell) if "Rolled back" in page.output_text(result_cell)
                         else None)
        assert "Rolled back" in shown
        table = result_cell.find_elements("css selector", ".jp-RenderedMarkdown table")[0]
        assert len(table.find_elements("css selector", "tbody tr")) == deleted  # the count is the table's
        below = [page.output_text(c) for c in page.code_cells()[page.code_cells().index(result_cell):]]
        assert not any("Dry run" in text or "nothing was deleted" in text for text in below)
        verified = page.output_text(_cell_with(page, "verified = rollback.verify_rollback"))
        assert "gateway endpoint no longer serves requests" in verified
    with page.step("05-record"):
        page.run_from(result_cell)  # as the header says: the cells below record the widget's rollback
        assert page.errors() == []
        recorded = page.output_text(_cell_with(page, "evidence.record_all(result)"))
        assert "PASS" in recorded and f"deleted {deleted} item(s)" in recorded
        assert "Rolled back" in page.output_text(result_cell)
    with page.step("05-sitting"):
        page.save()
        sittings = json.loads((lab.project / "outputs" / ".sitting.json").read_text())
        folders = [p for p in (lab.project / "outputs").iterdir() if p.is_dir()]
        assert [p.name for p in folders] == [sittings["run_id"]]  # one sitting, one folder
        assert (folders[0] / "03_probes.json").is_file()
    with page.step("05-seal"):
        sealed = subprocess.run([sys.executable, "-m", "aigw", "seal", str(folders[0])], cwd=lab.project,
                                capture_output=True, text=True, timeout=120, check=False,
                                env={**os.environ, "AIGW_CACHE_DIR": str(lab.cache)})
        assert sealed.returncode == 0, sealed.stderr
        doc = json.loads((folders[0] / "evidence.json").read_text())
        assert doc["parameters"] == {"interactive": True} and doc["target"] == "twin"
        assert [n["name"] for n in doc["notebooks"]] == [
            "01_create_gateway", "02_provider_keys", "03_verify_endpoints", "05_rollback"]
        criteria = {c["number"]: c["status"] for c in doc["criteria"]}
        assert [criteria[n] for n in (1, 2, 3, 4)] == ["pass"] * 4 and criteria[5] == "not run"
        assert len(verify_bundle(folders[0])) > 8
        for path in folders[0].rglob("*"):
            if path.is_file():
                assert all(key.encode() not in path.read_bytes() for key in sitting["typed"])
