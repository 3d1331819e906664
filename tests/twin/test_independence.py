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


def test_the_twins_state_is_its_contexts_not_module_globals() -> None:
    # The data-plane rate limiter, the cache's put counter and the logs' query cache used to be module
    # globals, shared by every twin of a process. Allowed at module level: CONSTANT tables, route lists
    # (built once, read by build_app) and the ULID clock (ids must sort across every twin of the process).
    import importlib

    offenders = []
    for path in TWIN.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        name = "cftwin." + ".".join(path.relative_to(TWIN).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("__") or attr in {"routes", "_ULIDS"}:
                continue
            constant = attr.lstrip("_").isupper()
            if isinstance(value, dict | list | set | int | float) and not constant:
                offenders.append(f"{name}.{attr}")
            stateful = hasattr(value, "_lock") and type(value).__module__.startswith("cftwin")
            if stateful or type(value).__name__ == "WeakKeyDictionary":
                offenders.append(f"{name}.{attr}")
    assert offenders == []


def test_the_schema_list_is_explicit() -> None:
    from cftwin.db import Database
    from cftwin.schema import SCHEMAS

    assert Database(schemas=()).query("SELECT name FROM sqlite_master WHERE type='table'") == []
    tables = {r[0] for r in Database().query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {name for name, _ in SCHEMAS} == {"auth", "accounts", "secrets_store", "gateways", "logs", "provider_keys",
                                             "gateway_cache", "unified_billing", "logpush",
                                             "seed"}
    assert {"accounts", "account_profiles", "tokens", "gateways", "provider_configs", "logs", "gateway_cache"} <= tables


def test_two_twins_share_no_rate_limit_or_budget() -> None:
    from cftwin.context import TwinContext, TwinOptions
    from cftwin.db import Database

    one, two = (TwinContext(db=Database(), options=TwinOptions()) for _ in range(2))
    assert one.gateway_limiter is not two.gateway_limiter and one.budget is not two.budget
    assert one.gateway_limiter.allow(("a", "gw", "t"), 1, 60.0, "fixed")[0]
    assert not one.gateway_limiter.allow(("a", "gw", "t"), 1, 60.0, "fixed")[0]
    assert two.gateway_limiter.allow(("a", "gw", "t"), 1, 60.0, "fixed")[0]
