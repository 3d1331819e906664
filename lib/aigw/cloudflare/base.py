"""What every service's operations stand on: the bound account, the client's knobs, ``_send``, lists.

``ClientBase`` is not used alone: ``CloudflareClient`` sets these attributes in its constructor and
inherits the operations of each service (``tokens``, ``gateways``, ``logs``, ``secrets_store``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aigw._http import ClientStats, Clock, RetryPolicy
from aigw.cloudflare.budget import RequestBudget
from aigw.cloudflare.envelope import Envelope, Json
from aigw.cloudflare.filters import FilterEncoding
from aigw.cloudflare.pages import GetPage, pages
from aigw.cloudflare.retry import Limits, Recover, RetryLoop
from aigw.cloudflare.transport import Request
from aigw.config import Secret
from aigw.errors import NotFoundError

__all__ = ["ClientBase"]


class ClientBase:
    """The attributes and request helpers the operations share."""

    base_url: str
    account_id: str
    timeout: float
    deadline: float
    budget: RequestBudget
    retry: RetryPolicy
    run_deadline_at: float | None
    filter_encoding: FilterEncoding
    stats: ClientStats
    _token: Secret
    _clock: Clock
    _loop: RetryLoop

    def _account(self, path: str) -> str:
        return f"accounts/{self.account_id}/{path.lstrip('/')}"

    def _gateway_path(self, gateway_id: str, rest: str = "") -> str:
        tail = f"/{rest}" if rest else ""
        return self._account(f"ai-gateway/gateways/{quote(gateway_id, safe='')}{tail}")

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Json = None,
        idempotent: bool = True,
        recover: Recover | None = None,
        missing_ok: bool = False,
        bare_ok: bool = False,
        secrets: Iterable[Secret] = (),
        deadline_at: float | None = None,
    ) -> Envelope:
        """One operation on ``path`` (relative to the v4 root), retried as ``aigw.cloudflare.retry`` says."""
        request = Request(method, path, params, body, idempotent, bare_ok, (self._token, *secrets))
        limits = Limits(self.retry, self.budget, self.timeout, self.deadline, self.run_deadline_at)
        return self._loop.send(request, limits, recover=recover, missing_ok=missing_ok, deadline_at=deadline_at)

    def _get(self, path: str, deadline_at: float | None = None) -> GetPage:
        def get(query: Sequence[tuple[str, str]]) -> Envelope:
            return self._send("GET", path, params=query, deadline_at=deadline_at)

        return get

    def _list_all(
        self, path: str, params: Sequence[tuple[str, str]] = (), *, deadline_at: float | None = None
    ) -> list[Mapping[str, Any]]:
        """Every object of the list at ``path``; ``deadline_at`` when it is part of another operation."""
        return [item for page in pages(self._get(path, deadline_at), path, params) for item in page]

    def _recover_from_list(self, path: str, match: Callable[[Mapping[str, Any]], bool]) -> Recover:
        """A check-before-retry that reads the whole list at ``path`` for the object a create made."""

        def recover(deadline_at: float) -> Envelope | None:
            found = next((item for item in self._list_all(path, deadline_at=deadline_at) if match(item)), None)
            return None if found is None else Envelope(200, found)

        return recover

    def _recover_by_get(self, path: str) -> Recover:
        """A check-before-retry that GETs what a create would have made at ``path``."""

        def recover(deadline_at: float) -> Envelope | None:
            try:
                return self._send("GET", path, deadline_at=deadline_at)
            except NotFoundError:
                return None

        return recover
