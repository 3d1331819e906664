"""Accounts, API tokens, permissions and the per-token API budget of the twin's v4 API.

Every ``/client/v4`` handler calls ``require(request, account_id, permission)`` first. Answers:

* no ``Authorization: Bearer``, or a token the twin does not know (or revoked): **401**,
  ``{"code": 10000, "message": "Authentication error"}``.
* a known token that lacks the permission or the account: **403**, the same item. Cloudflare uses
  10000 for both (the SDK maps them to ``AuthenticationError`` / ``PermissionDeniedError`` by status).
* a token over its budget (``TwinOptions.api_budget_requests`` per ``api_budget_window_s``, sliding):
  **429** with ``Retry-After`` (seconds), ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``{"code": 10100, "message": "More than 1200 requests per 300 seconds reached. ..."}``. Every
  authenticated answer carries ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining``.

Permission names: ``ai_gateway:read``, ``ai_gateway:write``, ``ai_gateway:run``,
``secrets_store:read``, ``secrets_store:write``. A read is satisfied by read or write.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.db import Database, register_schema
from cftwin.digests import sha256_hex
from cftwin.envelope import (
    CODE_AUTH,
    CODE_INVALID_TOKEN,
    CODE_RATE_LIMITED,
    CloudflareAPIError,
    new_hex_id,
    now_iso,
    ok,
)

if TYPE_CHECKING:
    from cftwin.context import TwinContext

__all__ = [
    "ALL_PERMISSIONS",
    "PERMISSIONS",
    "ApiBudget",
    "Token",
    "account_exists",
    "account_gateway_limit",
    "authenticate",
    "bearer_token",
    "create_account",
    "create_token",
    "find_token",
    "has_permission",
    "require",
    "revoke_token",
    "routes",
]

PERMISSIONS: Final = (
    "ai_gateway:read",
    "ai_gateway:write",
    "ai_gateway:run",
    "secrets_store:read",
    "secrets_store:write",
)
ALL_PERMISSIONS: Final = frozenset(PERMISSIONS)

register_schema(
    "auth",
    """
    CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        gateway_limit INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY,
        value_sha256 TEXT NOT NULL UNIQUE,
        account_ids TEXT NOT NULL,
        permissions TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        created_at TEXT NOT NULL
    );
    """,
)


@dataclass(frozen=True)
class Token:
    id: str
    value: str
    account_ids: tuple[str, ...]
    permissions: frozenset[str]
    status: str = "active"

    def __repr__(self) -> str:
        # The value is a credential: never in a repr, a log line or a traceback.
        return f"Token(id={self.id!r}, account_ids={self.account_ids!r}, permissions={sorted(self.permissions)!r})"


def create_account(db: Database, account_id: str, *, gateway_limit: int | None = None) -> None:
    """Create the account, or update its gateway limit when it exists."""
    db.execute(
        "INSERT INTO accounts (id, gateway_limit, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET gateway_limit = COALESCE(excluded.gateway_limit, accounts.gateway_limit)",
        (account_id, gateway_limit, now_iso()),
    )


def account_exists(db: Database, account_id: str) -> bool:
    return db.query_one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is not None


def account_gateway_limit(db: Database, account_id: str, default: int) -> int:
    row = db.query_one("SELECT gateway_limit FROM accounts WHERE id = ?", (account_id,))
    if row is None or row["gateway_limit"] is None:
        return default
    return int(row["gateway_limit"])


def create_token(
    db: Database,
    account_ids: Iterable[str],
    permissions: Iterable[str],
    *,
    value: str | None = None,
) -> Token:
    """Create (or, for a known ``value``, replace the grants of) a token; returns it."""
    perms = frozenset(permissions)
    unknown = perms - ALL_PERMISSIONS
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}; known: {list(PERMISSIONS)}")
    accounts = tuple(dict.fromkeys(account_ids))
    token_value = value if value is not None else secrets.token_urlsafe(30)
    existing = find_token(db, token_value)
    token_id = existing.id if existing is not None else new_hex_id()
    db.execute(
        "INSERT INTO tokens (id, value_sha256, account_ids, permissions, status, created_at) "
        "VALUES (?, ?, ?, ?, 'active', ?) ON CONFLICT(value_sha256) DO UPDATE SET "
        "account_ids = excluded.account_ids, permissions = excluded.permissions, status = 'active'",
        (token_id, sha256_hex(token_value), json.dumps(list(accounts)), json.dumps(sorted(perms)), now_iso()),
    )
    return Token(token_id, token_value, accounts, perms)


def revoke_token(db: Database, token_id: str) -> bool:
    """Delete the token; False when there was none. A revoked token answers 401 from then on."""
    return db.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0


def find_token(db: Database, value: str) -> Token | None:
    # The state keeps only a token's digest (a copied state file holds no usable token): look up by it.
    row = db.query_one("SELECT * FROM tokens WHERE value_sha256 = ?", (sha256_hex(value),))
    if row is None:
        return None
    return Token(
        id=row["id"],
        value=value,
        account_ids=tuple(json.loads(row["account_ids"])),
        permissions=frozenset(json.loads(row["permissions"])),
        status=row["status"],
    )


def has_permission(token: Token, permission: str) -> bool:
    if permission in token.permissions:
        return True
    service, _, action = permission.partition(":")
    return action == "read" and f"{service}:write" in token.permissions


class ApiBudget:
    """Sliding-window request counts per token id (in memory: a restart refills every budget)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def charge(self, token_id: str, limit: int, window_s: float) -> tuple[bool, int, int]:
        """Count one request: ``(allowed, remaining, retry_after_s)``. A refused request is not counted."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(token_id, deque())
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            if len(hits) >= limit:
                retry_after = max(1, math.ceil(hits[0] + window_s - now)) if hits else 1
                return False, 0, retry_after
            hits.append(now)
            return True, max(0, limit - len(hits)), 0

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()


def _auth_error(status: int) -> CloudflareAPIError:
    return CloudflareAPIError.single(status, CODE_AUTH, "Authentication error")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _context(request: Request) -> TwinContext:
    context: TwinContext = request.app.state.twin
    return context


def _format_window(window_s: float) -> str:
    return str(int(window_s)) if float(window_s).is_integer() else f"{window_s:g}"


def authenticate(request: Request, *, charge: bool = True) -> Token:
    """The request's active token (401 otherwise), charged against its budget (429 when spent)."""
    context = _context(request)
    value = bearer_token(request)
    # ASSUMPTION: the twin knows only API tokens; X-Auth-Email/X-Auth-Key (global keys) answer 401.
    token = find_token(context.db, value) if value is not None else None
    if token is None or token.status != "active":
        raise _auth_error(401)
    if charge:
        limit = context.options.api_budget_requests
        window = context.options.api_budget_window_s
        allowed, remaining, retry_after = context.budget.charge(token.id, limit, window)
        if not allowed:
            raise CloudflareAPIError.single(
                429,
                CODE_RATE_LIMITED,
                f"More than {limit} requests per {_format_window(window)} seconds reached. "
                "Please wait and consider throttling your request speed",
                headers={
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                },
            )
        request.state.aigw_ratelimit = (limit, remaining)
    return token


def require(request: Request, account_id: str, permission: str) -> Token:
    """Authenticate, charge the budget, and check ``permission`` on ``account_id`` (401/429/403)."""
    token = authenticate(request)
    if account_id not in token.account_ids or not has_permission(token, permission):
        raise _auth_error(403)
    return token


def _verify_result(token: Token) -> dict[str, str]:
    return {"id": token.id, "status": token.status}


def _invalid_token() -> CloudflareAPIError:
    return CloudflareAPIError.single(401, CODE_INVALID_TOKEN, "Invalid API Token")


def _verify_token(request: Request) -> Token:
    # Cloudflare answers a bad token here with 401 / 1000 "Invalid API Token" (not 10000).
    try:
        return authenticate(request)
    except CloudflareAPIError as exc:
        if exc.status == 401:
            raise _invalid_token() from None
        raise


async def verify_user_token(request: Request) -> Response:
    return ok(_verify_result(_verify_token(request)))


async def verify_account_token(request: Request) -> Response:
    token = _verify_token(request)
    # ASSUMPTION: a token not granted on this account is, to this endpoint, not an account token.
    if request.path_params["account_id"] not in token.account_ids:
        raise _invalid_token()
    return ok(_verify_result(token))


routes: list[BaseRoute] = [
    Route("/client/v4/user/tokens/verify", verify_user_token, methods=["GET"]),
    Route("/client/v4/accounts/{account_id}/tokens/verify", verify_account_token, methods=["GET"]),
]
