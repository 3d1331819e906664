"""Which provider key a gateway request uses, in Cloudflare's order.

1. A provider key sent on the request (the provider's own header; an empty one counts as absent) wins
   and is forwarded verbatim.
2. Else the gateway's BYOK key: the provider config for the alias (``cf-aig-byok-alias`` on
   provider-native endpoints; ``default`` otherwise), whose value is the Secrets Store secret named
   ``{gateway_id}_{provider_slug}_{alias}`` in the gateway's ``store_id`` store.
3. Else none: the provider answers with its own 401 (403 for Google).

ASSUMPTION: BYOK applies only to an authenticated gateway (Cloudflare requires one for stored keys)
whose ``store_id`` is set; elsewhere a request without a key reaches the provider without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cftwin.dataplane.errors import CODE_BYOK_ALIAS, CODE_BYOK_UNAVAILABLE
from cftwin.db import Database
from cftwin.gateways.models import find_provider_config, list_provider_configs, secret_name
from cftwin.providers.models import KeyDigest
from cftwin.secrets_store.models import find_secret_by_name, read_secret_digest
from cftwin.timing import is_pending

__all__ = ["KeyChoice", "KeyRefusal", "resolve_key"]


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key to send (None: none; a ``KeyDigest`` for a BYOK key, whose value the twin does not keep)
    and what it is, for the cache key (never the key itself)."""

    key: str | None
    source: str  # "request", "byok:<alias>" or "none"


@dataclass(frozen=True, slots=True)
class KeyRefusal:
    """The gateway refuses: ``status``, ``code``, ``message`` (an ``AiGatewayError``)."""

    status: int
    code: int
    message: str


def _quote_all(aliases: list[str]) -> str:
    # ASSUMPTION: several aliases are listed as 'a', 'b'; none at all as "none".
    return ", ".join(f"'{a}'" for a in aliases) if aliases else "none"


def resolve_key(
    db: Database,
    account_id: str,
    gateway: dict[str, Any],
    provider: str,
    request_key: str | None,
    alias: str | None,
    *,
    secret_pending_s: float = 0.0,
) -> KeyChoice | KeyRefusal:
    """The key for ``provider`` on ``gateway``; ``alias`` is the ``cf-aig-byok-alias`` (None: default).

    ``secret_pending_s``: a BYOK secret younger than that is still ``pending`` (``cftwin.timing``).
    """
    if request_key:
        return KeyChoice(request_key, "request")
    store_id = gateway.get("store_id")
    byok = bool(gateway.get("authentication")) and isinstance(store_id, str) and bool(store_id)
    if not byok:
        configs: list[dict[str, Any]] = []
    elif (wanted := find_provider_config(db, account_id, gateway["id"], provider, alias or "default")) is not None:
        configs = [wanted]  # the usual case: one indexed lookup instead of listing every config
    else:
        listed = list_provider_configs(db, account_id, gateway["id"])
        configs = [c for c in listed if c.get("provider_slug") == provider]
    if alias is not None:
        config = next((c for c in configs if c.get("alias") == alias), None)
        if config is None:
            aliases = [str(c.get("alias")) for c in configs]
            return KeyRefusal(400, CODE_BYOK_ALIAS, f"Provider '{provider}' has no BYOK credential named '{alias}'. "
                             f"Configured aliases: {_quote_all(aliases)}")
    else:
        # "AI Gateway uses the key with the default alias by default" (BYOK doc, 2026-07-31): without an
        # alias header only the alias "default" serves, whichever config is marked default_config.
        config = next((c for c in configs if c.get("alias") == "default"), None)
        if config is None:
            return KeyChoice(None, "none")
    chosen = str(config["alias"])
    assert isinstance(store_id, str)
    # Secrets Store gives a secret only to the services in its scopes. ASSUMPTION: a BYOK secret
    # without the ai_gateway scope is, to the gateway, a missing one: 400 / 2042, no fallback.
    name = secret_name(gateway["id"], provider, chosen)
    digest = read_secret_digest(db, account_id, store_id, name, scope="ai_gateway")
    # ASSUMPTION: a secret still pending has not reached the gateway yet: to it, a missing one
    # (no source says; the stricter reading, so a runbook that waits for "active" is tested).
    if digest and secret_pending_s > 0:
        stored = find_secret_by_name(db, account_id, store_id, name)
        if stored is not None and is_pending(stored, secret_pending_s):
            digest = None
    if not digest:
        return KeyRefusal(400, CODE_BYOK_UNAVAILABLE,
                         f"Configured BYOK credentials are unavailable for provider '{provider}' (alias '{chosen}')")
    return KeyChoice(KeyDigest(digest), f"byok:{chosen}")
