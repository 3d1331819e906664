"""The Cloudflare v4 API client of the runbook: AI Gateway, its logs and provider configs, Secrets Store.

::

    with CloudflareClient.from_settings(settings) as cf:
        gw = cf.find_gateway("github-ai-agent") or cf.create_gateway("github-ai-agent", {"collect_logs": True})
        columns = cf.fetch_logs(gw.id, since=yesterday)      # a dict of lists: pd.DataFrame(columns)
        print(cf.stats.snapshot())                           # requests, retries by reason, recoveries

Synchronous (httpx) and thread-safe: a notebook's kernel already runs an asyncio loop, so concurrency
is threads over one shared ``httpx.Client``. Every request goes through one loop (``_send``) that

* waits for the token's ``RequestBudget`` (1,200 requests per 300 s, shared by every client of the
  token in this process), and adapts to the server's ``Ratelimit`` / ``Ratelimit-Policy`` (or the older
  ``X-RateLimit-Limit`` / ``-Remaining``);
* parses Cloudflare's envelope (full v4, AI Gateway's slim one, ``{"success": true}``) or maps the error
  to ``aigw.errors`` (one line, with the Cloudflare code and what to do next);
* retries 429, 5xx and connection failures with jittered exponential backoff and ``Retry-After``,
  bounded by a total deadline; a 429 that says how long the budget is blocked (``Retry-After``, up to
  300 s: Cloudflare blocks until its five-minute window ends) is waited out even past the operation's
  deadline, never past ``run_deadline_at``, with a log line saying so; a non-idempotent request whose
  outcome is unknown (sent, then a timeout, a dropped connection or a 5xx) is never blindly repeated:
  ``recover`` checks first whether it took effect and returns what it made (also when the repeat is
  refused as a duplicate: a 409, AI Gateway's 7001 "already exists", Secrets Store's 1003).

No secret reaches a repr, a log record (``aigw.cloudflare``: method, path, status, attempt) or an error.

One module per layer, each using only those above it::

    envelope       Cloudflare's answer -> Envelope, or the aigw.errors exception (error_for)
    results        typed results (Gateway, Log, LogColumns, ...) read from the JSON
    budget         RequestBudget (the token's 1,200 / 300 s) and the server's Ratelimit headers
    transport      one attempt: a budget slot, the HTTP exchange, the answer read (or a Failure to retry)
    retry          the loop: backoff, deadlines, waiting out a spent budget, check-before-retry
    pages          the one page generator every list reads with
    filters        the logs API's filters query
    base           what the operations share: the bound account, _send, lists, recovery checks
    tokens, gateways, logs, secrets_store
                   the operations, by service
    client         CloudflareClient: the constructor that ties them together
"""

from __future__ import annotations

from aigw._http import ClientStats, RetryPolicy
from aigw.cloudflare.budget import RequestBudget
from aigw.cloudflare.client import CloudflareClient
from aigw.cloudflare.envelope import Envelope, error_for, parse_envelope
from aigw.cloudflare.filters import FilterEncoding, encode_filters
from aigw.cloudflare.gateways import GATEWAY_DEFAULTS
from aigw.cloudflare.results import (
    LOG_FIELDS,
    READ_ONLY_GATEWAY_FIELDS,
    Gateway,
    Log,
    LogColumns,
    LogPage,
    ProviderConfig,
    Store,
    StoreSecret,
    TokenStatus,
    append_columns,
)

__all__ = [
    "GATEWAY_DEFAULTS",
    "LOG_FIELDS",
    "READ_ONLY_GATEWAY_FIELDS",
    "ClientStats",
    "CloudflareClient",
    "Envelope",
    "FilterEncoding",
    "Gateway",
    "Log",
    "LogColumns",
    "LogPage",
    "ProviderConfig",
    "RequestBudget",
    "RetryPolicy",
    "Store",
    "StoreSecret",
    "TokenStatus",
    "append_columns",
    "encode_filters",
    "error_for",
    "parse_envelope",
]
