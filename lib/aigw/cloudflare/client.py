"""``CloudflareClient``: the v4 API bound to one account and one token, every service's operations on it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from aigw._http import ClientStats, Clock, RetryPolicy, Sleep
from aigw.cloudflare.budget import RequestBudget
from aigw.cloudflare.filters import FilterEncoding
from aigw.cloudflare.gateways import GatewayOperations
from aigw.cloudflare.logs import LogOperations
from aigw.cloudflare.retry import RetryLoop
from aigw.cloudflare.secrets_store import SecretsStoreOperations
from aigw.cloudflare.tokens import TokenOperations
from aigw.cloudflare.transport import Transport
from aigw.config import DEFAULT_API_BASE_URL, Secret, Settings

__all__ = ["CloudflareClient"]


class CloudflareClient(TokenOperations, GatewayOperations, LogOperations, SecretsStoreOperations):
    """The v4 API, bound to one account and one API token.

    **Parameters:**
    * base_url - the v4 API root (``https://api.cloudflare.com/client/v4``, or a twin's ``.../client/v4``).
    * api_token - the API token (a ``Secret``).
    * account_id - the 32-hex account id every operation is bound to.
    * timeout - seconds per attempt (connect, read, write).
    * deadline - seconds one operation may take in all: attempts, backoff, budget waits and recovery checks.
    * budget - the token's ``RequestBudget``; by default the process-wide one of ``api_token``.
    * retry - the ``RetryPolicy`` (attempts, backoff).
    * run_deadline_at - a ``clock()`` instant no wait for a spent API budget may pass; by default
      an operation may wait one ``retry.max_retry_after_s`` beyond its own ``deadline``.
    * transport - an httpx transport (tests); by default real HTTP.
    * seed - the backoff jitter's seed (reproducible retries).
    * clock - the monotonic clock deadlines are measured on (``time.monotonic``).
    * sleep - how the client waits between attempts (``time.sleep``); the budget waits with its own.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        api_token: Secret,
        account_id: str,
        timeout: float = 30.0,
        deadline: float = 120.0,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        filter_encoding: FilterEncoding = "json",
        seed: int | None = None,
        run_deadline_at: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not isinstance(api_token, Secret):
            raise TypeError("api_token must be an aigw.config.Secret")
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.timeout = timeout
        self.deadline = deadline
        self.budget = budget if budget is not None else RequestBudget.shared(api_token)
        self.retry = retry or RetryPolicy()
        self.run_deadline_at = run_deadline_at
        self.filter_encoding = filter_encoding
        self.stats = ClientStats()
        self._token = api_token
        self._clock = clock
        self._transport = Transport(self.base_url, api_token, timeout=timeout, stats=self.stats, clock=clock,
                                    transport=transport)
        self._loop = RetryLoop(self._transport, self.stats, clock=clock, sleep=sleep, seed=seed)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CloudflareClient:
        """A client for ``settings``' account, token, API base URL and budget (``ConfigError`` without a token)."""
        token = settings.require_api_token()
        options.setdefault("budget", RequestBudget.shared(token, *settings.api_budget))
        return cls(base_url=settings.api_base_url, api_token=token, account_id=settings.account_id, **options)

    def __repr__(self) -> str:
        return f"CloudflareClient(base_url={self.base_url!r}, account_id={self.account_id!r})"

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()
