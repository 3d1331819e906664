"""The twin is a check of the runbook's client only while it shares nothing with it.

import-linter (in .ci/run) forbids the import; these tests keep the two copies of facts that both
sides must know honest: each side writes them down from the sources, and a test notices a drift.
"""

from __future__ import annotations

import ast
from pathlib import Path

from aigw.pricing import LIST_PRICES
from cftwin.providers.pricing import MODELS

TWIN = Path(__file__).resolve().parents[2] / "lib" / "cftwin"


def test_no_module_of_the_twin_imports_aigw() -> None:
    offenders = []
    for path in TWIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(TWIN)}: {n}" for n in names if n == "aigw" or n.startswith("aigw.")]
    assert offenders == []


def test_the_twins_list_prices_agree_with_the_runbooks_where_both_list_a_model() -> None:
    both = [(p, m) for p, models in LIST_PRICES.items() for m in models if m in MODELS.get(p, {})]
    assert both, "the twin serves none of the runbook's priced models"
    differ = {(p, m): (LIST_PRICES[p][m], (MODELS[p][m].price.input_per_m, MODELS[p][m].price.output_per_m))
              for p, m in both
              if LIST_PRICES[p][m] != (MODELS[p][m].price.input_per_m, MODELS[p][m].price.output_per_m)}
    assert differ == {}
