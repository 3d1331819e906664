"""One attempt at one request: a slot of the budget, the HTTP exchange, Cloudflare's answer read.

``Transport.attempt`` returns the ``Envelope`` of a success, a ``Failure`` worth retrying (429, 5xx, no
answer), or raises the ``aigw.errors`` exception of any other answer. Whether and when to try again is
``aigw.cloudflare.retry``'s business; this module never sleeps except inside the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

import httpx

from aigw._http import ClientStats, Clock, parse_retry_after, verified_tls
from aigw.cloudflare.budget import RateLimitHeaders, RequestBudget, parse_rate_limit
from aigw.cloudflare.envelope import Envelope, Json, parse_envelope
from aigw.config import Secret
from aigw.errors import AigwError, RateLimitedError, ServerError, TransportError
from aigw.hosts import EVENT_HOOKS

__all__ = ["Failure", "Reason", "Request", "Transport"]

logger = logging.getLogger("aigw.cloudflare")

#: Failures before the request left: the server never saw it, so even a create may simply be sent again.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Reason = Literal["timeout", "connection", "429", "5xx"]


@dataclass(frozen=True)
class Request:
    """What one operation sends: ``path`` is relative to the v4 root (``accounts/{a}/...``).

    ``secrets`` are redacted from whatever error the answer turns into (the token among them).
    """

    method: str
    path: str
    params: Sequence[tuple[str, str]] | None = None
    # The body may hold a secret's revealed value: never in a repr.
    body: Json = field(default=None, repr=False)
    idempotent: bool = True
    bare_ok: bool = False
    secrets: tuple[Secret, ...] = field(default=(), repr=False)

    @property
    def shown(self) -> str:
        """The path as errors and log lines show it."""
        return "/" + self.path


@dataclass(frozen=True)
class Failure:
    """An attempt worth repeating: why, the error to raise if no repeat is left, the server's wait.

    ``maybe_applied``: the request was sent and its answer lost (or a 5xx), so a non-idempotent one may
    have taken effect and must be checked for before it is repeated.
    """

    reason: Reason
    error: AigwError
    retry_after: float | None = None
    maybe_applied: bool = False


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` at send time, so the token sits in no client-level header."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class Transport:
    """The HTTP side of the client: one pooled ``httpx.Client`` on the v4 root, with the token's auth."""

    def __init__(
        self,
        base_url: str,
        token: Secret,
        *,
        timeout: float,
        stats: ClientStats,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = urlsplit(base_url).netloc or base_url
        self._stats = stats
        self._clock = clock
        self.http = httpx.Client(
            base_url=base_url + "/",
            auth=_BearerAuth(token),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "aigw-runbook"},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            event_hooks=dict(EVENT_HOOKS),
            verify=verified_tls(),
        )

    def close(self) -> None:
        self.http.close()

    def attempt(
        self, request: Request, *, budget: RequestBudget, timeout: float, deadline_at: float, attempt: int
    ) -> Envelope | Failure:
        """Send ``request`` once, inside ``budget`` and ``deadline_at``; ``attempt`` numbers the log lines."""
        slot = self._take_slot(budget, deadline_at)
        remaining = deadline_at - self._clock()
        self._stats.count_request()
        try:
            response = self.http.request(
                request.method,
                request.path,
                params=list(request.params) if request.params else None,
                json=request.body,
                timeout=max(0.001, min(timeout, remaining)),
            )
        except httpx.HTTPError as exc:
            budget.release(slot)
            return self._no_answer(request, exc, attempt)
        limits = self._observe(budget, slot, response)
        logger.debug("%s %s -> %d (attempt %d)", request.method, request.shown, response.status_code, attempt)
        return self._read(request, response, limits)

    def _take_slot(self, budget: RequestBudget, deadline_at: float) -> list[float]:
        started = self._clock()
        slot = budget.acquire(deadline_at)
        waited = self._clock() - started
        if waited > 0.001:
            self._stats.count_budget_wait(waited)
        return slot

    def _no_answer(self, request: Request, exc: httpx.HTTPError, attempt: int) -> Failure:
        logger.debug("%s %s -> no answer (%s, attempt %d)", request.method, request.shown, type(exc).__name__, attempt)
        error = TransportError(
            f"no answer from {self.host} to {request.method} {request.shown} ({type(exc).__name__})",
            hint="Check the network and CLOUDFLARE_API_BASE_URL; re-running is safe",
        )
        reason: Reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
        sent = not isinstance(exc, _NOT_SENT)
        return Failure(reason, error, maybe_applied=sent and not request.idempotent)

    @staticmethod
    def _observe(budget: RequestBudget, slot: list[float], response: httpx.Response) -> RateLimitHeaders:
        sent_at = slot[0]
        budget.release(slot)
        limits = parse_rate_limit(response.headers)
        # A 429's own Retry-After says when to try again; its "remaining 0" must not also become a
        # window-long (300 s) wait in the budget.
        budget.observe(
            limits.limit, None if response.status_code == 429 else limits.remaining,
            sent_at=sent_at, reset_s=limits.reset_s,
        )
        return limits

    @staticmethod
    def _read(request: Request, response: httpx.Response, limits: RateLimitHeaders) -> Envelope | Failure:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        try:
            return parse_envelope(
                response.status_code,
                response.content,
                content_type=response.headers.get("content-type", ""),
                method=request.method,
                path=request.shown,
                secrets=request.secrets,
                bare_ok=request.bare_ok,
            )
        except RateLimitedError as err:
            if retry_after is None and limits.remaining == 0:
                retry_after = limits.reset_s
            return Failure("429", err, retry_after)
        except ServerError as err:
            return Failure("5xx", err, retry_after, maybe_applied=not request.idempotent)
