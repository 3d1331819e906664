"""Unified Billing: Cloudflare's own provider account paying for a request from the account's credits.

Sources: cloudflare-docs ``ai-gateway/usage/rest-api.mdx`` (third-party models on the REST API are billed
through Unified Billing: "No provider SDKs or API keys are needed") and ``features/unified-billing.mdx``
(credits are loaded in the dashboard; without them the request is refused). The log field ``wholesale``
(a filter key of the logs API) names it; third parties call the credits "wholesale credits".

ASSUMPTION: every account of the twin starts with ``TwinOptions.unified_billing_credits_usd`` of credits
(0 unless seeded); a request is admitted while the balance is above 0 and its list price (never a
``cf-aig-custom-cost``) is deducted once it succeeded, so the last admitted request may take the balance
below 0. ASSUMPTION: no source gives the body of the "no credits" refusal; the twin answers 402 in the v4
envelope with code 2021 (the code and status third parties observed for "Insufficient wholesale credits").

Cloudflare's own provider keys are, on the twin, one random key per provider per database, registered
with the emulated provider (as a digest, like every key) the first time it pays.
"""

from __future__ import annotations

import secrets
from typing import Final

from starlette.responses import JSONResponse

from cftwin.db import Database
from cftwin.envelope import CloudflareAPIError, api_error_response
from cftwin.providers.models import add_provider_key, is_provider_key_valid

__all__ = ["CODE_NO_CREDITS", "SCHEMA", "balance_usd", "no_credits_response", "spend", "wholesale_key"]

CODE_NO_CREDITS: Final = 2021

#: This service's table (``cftwin.schema.SCHEMAS`` lists every service's): what Unified Billing spent per account.
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS unified_billing_spend (
    account_id TEXT PRIMARY KEY,
    spent_usd  REAL NOT NULL
);
"""


def balance_usd(db: Database, account_id: str, credits_usd: float) -> float:
    """The account's credits left: what it was given less what Unified Billing spent."""
    row = db.query_one("SELECT spent_usd FROM unified_billing_spend WHERE account_id = ?", (account_id,))
    return credits_usd - (float(row["spent_usd"]) if row is not None else 0.0)


def spend(db: Database, account_id: str, cost_usd: float) -> None:
    if cost_usd <= 0:
        return
    db.execute(
        "INSERT INTO unified_billing_spend (account_id, spent_usd) VALUES (?, ?) "
        "ON CONFLICT(account_id) DO UPDATE SET spent_usd = unified_billing_spend.spent_usd + excluded.spent_usd",
        (account_id, cost_usd),
    )


def no_credits_response() -> JSONResponse:
    return api_error_response(CloudflareAPIError.single(
        402, CODE_NO_CREDITS,
        "Insufficient AI Gateway credits: this request is paid through Unified Billing (no BYOK key for the "
        "provider on this gateway); load credits in the dashboard or store a provider key on the gateway",
    ))


def wholesale_key(db: Database, provider: str) -> str:
    """Cloudflare's key for ``provider`` (accepted by the emulated provider)."""
    keys: dict[str, str] = db.memo.setdefault("unified_billing_keys", {})  # per database, not a module global
    key = keys.setdefault(provider, "cf-wholesale-" + secrets.token_urlsafe(24))
    if not is_provider_key_valid(db, provider, key):  # a reset drops every provider key
        add_provider_key(db, provider, key)
    return key
