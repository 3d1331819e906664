"""Every table of the twin, listed explicitly: each service's ``models`` module declares its ``SCHEMA``
and this list says which apply, in which order (a table before the tables that reference it). A
``Database`` applies it when it opens; importing a module registers nothing.
"""

from __future__ import annotations

from typing import Final

from cftwin import accounts, auth, seed
from cftwin.dataplane import billing, cache
from cftwin.gateways import models as gateways
from cftwin.logpush import models as logpush
from cftwin.logs import models as logs
from cftwin.providers import models as providers
from cftwin.secrets_store import models as secrets_store

__all__ = ["SCHEMAS"]

SCHEMAS: Final[tuple[tuple[str, str], ...]] = (
    ("auth", auth.SCHEMA),
    ("accounts", accounts.SCHEMA),
    ("secrets_store", secrets_store.SCHEMA),
    ("gateways", gateways.SCHEMA),
    ("logs", logs.SCHEMA),
    ("provider_keys", providers.SCHEMA),
    ("gateway_cache", cache.SCHEMA),
    ("unified_billing", billing.SCHEMA),
    ("logpush", logpush.SCHEMA),
    ("seed", seed.SCHEMA),
)
