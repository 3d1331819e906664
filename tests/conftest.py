"""Shared fixtures.

``twin`` (module scope): one ``TwinServer`` on an ephemeral loopback port, admin API on, seeded with
``generated_seed()``. It yields a ``TwinHandle``: ``.server`` (urls: ``.url``, ``.api_base_url``,
``.gateway_base_url``, ``.provider_base_url``), ``.seed`` (account id, tokens, provider keys),
``.context`` (state, options, faults), ``.api_headers`` / ``.aig_headers``, and ``.reset()``, which
empties every table, re-applies the seed, restores the options and clears faults and budgets.

The fixture's twin has no delays (``cftwin.timing.NO_DELAYS``): tests that are not about time see
every log, cache entry and secret at once. Tests of the delays pass them to ``reset(...)``; the
runbook's end-to-end run (``aigw run`` on the twin) keeps the realistic defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cftwin.context import TwinContext, TwinOptions
from cftwin.faults import FaultSpec
from cftwin.seed import TwinSeed, apply_seed, generated_seed
from cftwin.server import TwinServer
from cftwin.timing import NO_DELAYS


@dataclass
class TwinHandle:
    server: TwinServer
    seed: TwinSeed
    context: TwinContext

    @property
    def account_id(self) -> str:
        return self.seed.account_id

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed.api_token}"}

    @property
    def aig_headers(self) -> dict[str, str]:
        return {"cf-aig-authorization": f"Bearer {self.seed.aig_token or self.seed.api_token}"}

    def reset(self, **options: object) -> None:
        """Fresh state: empty tables, the seed again, default options (plus ``options``), no faults."""
        context = self.context
        context.db.reset()
        context.budget.clear()
        context.gateway_limiter.clear()
        if context.faults is not None:
            context.faults.set_spec(FaultSpec())
        defaults = dataclasses.asdict(TwinOptions(admin_enabled=True, **NO_DELAYS))
        defaults["gateway_base_url"] = self.server.gateway_base_url
        defaults.update(options)
        context.options.update(defaults)
        apply_seed(context, self.seed)


@pytest.fixture(scope="module")
def twin() -> Iterator[TwinHandle]:
    seed = generated_seed()
    server = TwinServer(TwinOptions(admin_enabled=True, **NO_DELAYS), seed=seed)
    server.start()
    try:
        yield TwinHandle(server=server, seed=seed, context=server.context)
    finally:
        server.close()
