"""Amounts and check details render as text: no ``$`` that MathJax or nbconvert's math plugin reads as TeX."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from aigw.config import load_settings
from aigw.evidence import Check, export_html
from aigw.session import Session
from aigw.steps import DOLLAR, checks_list, md_text, usd
from aigw.steps import verify_endpoints as ve

#: Any ``$``: JupyterLab's MathJax reads even ``\$`` as a delimiter (checked in Chromium), so none may be left.
_BARE_DOLLAR = re.compile(r"\$")


def _plan(tmp_path: Path) -> ve.ProbePlan:
    env = {"CLOUDFLARE_ACCOUNT_ID": "0" * 32, "CLOUDFLARE_API_TOKEN": "t" * 40}
    session = Session(settings=load_settings(environ=env), target="twin", run_id="plan", run_dir=tmp_path)
    return ve.plan_probes(session, models=["openai/gpt-4o", "anthropic/claude-sonnet-4-5"])


def test_usd_names_the_currency_without_a_dollar_sign() -> None:
    assert usd(0.0043) == "USD 0.0043"
    assert usd(0.05, 2) == "USD 0.05"
    assert usd(0.000123, 5) == "USD 0.00012"


def test_probe_plan_shows_amounts_as_usd(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    markdown = plan._repr_markdown_()
    assert _BARE_DOLLAR.search(markdown) is None, markdown
    assert f"at most **{usd(plan.planned_usd)}** of a USD 0.05 budget" in markdown
    assert "$" not in plan.checks[0].detail and "USD 0.05" in plan.checks[0].detail


def test_check_text_escapes_dollars() -> None:
    check = Check(3, "cost $1 and $2", "pass", "spent $0.01 of $0.05")
    assert _BARE_DOLLAR.search(check.markdown()) is None
    assert _BARE_DOLLAR.search(checks_list([check])) is None
    assert md_text("a $1 b") == f"a {DOLLAR}1 b"


def test_nbconvert_renders_amounts_and_bold_as_text(tmp_path: Path) -> None:
    """The HTML export (nbconvert, mistune with its math plugin) shows the amount in bold, not TeX."""
    plan = _plan(tmp_path)
    check = Check(None, "spend", "pass", "spent $0.01 of $0.05 **so far**")
    cell = nbformat.v4.new_code_cell("plan")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": plan._repr_markdown_()}),
                    nbformat.v4.new_output("display_data", data={"text/markdown": check.markdown()})]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    html = export_html(notebook, tmp_path / "plan.html").read_text(encoding="utf-8")
    assert f"at most <strong>{usd(plan.planned_usd)}</strong> of a USD 0.05 budget" in html
    # Literal text: the dollar signs as entities in their own elements, no math, the stars not bold.
    assert "spent <span>$</span>0.01 of <span>$</span>0.05 **so far**" in html
