"""Accounts, API tokens, permissions and the API budget of the twin's v4 API.

Every ``/client/v4`` handler calls ``require(request, account_id, permission)`` first. Answers:

* no ``Authorization: Bearer``, or a token the twin does not know (or revoked): **401**,
  ``{"code": 10000, "message": "Authentication error"}``.
* an account id no account has: **400**, 7003 "Could not route to ..., perhaps your object identifier
  is invalid?" and 7000 "No route for that URI" (as Cloudflare answers an invalid identifier).
* a known token that lacks the permission or the account: **403**, the same item. Cloudflare uses
  10000 for both (the SDK maps them to ``AuthenticationError`` / ``PermissionDeniedError`` by status).
* an owner over its budget: **429** with ``Retry-After`` and ``{"code": 10100, ...}``.

The budget (developers.cloudflare.com/fundamentals/api/reference/limits): 1,200 requests per five
minutes *per user*, whatever token or key the user calls with; once exceeded, every call is blocked for
the rest of the window. The twin counts fixed windows per token owner (``TwinOptions.api_budget_requests``
per ``api_budget_window_s``) and sends the IETF draft headers Cloudflare sends since 2025-09-03 on every
authenticated answer: ``Ratelimit: "default";r=<remaining>;t=<seconds to the window's end>`` and
``Ratelimit-Policy: "default";q=<limit>;w=<window>``, ``Retry-After`` only on a 429.
ASSUMPTION: an account-owned token's owner is its account (all of the account's tokens share one
budget); a window starts at its owner's first request.

Tokens have a kind (Cloudflare's two: user tokens, made under My Profile, and account-owned tokens):
``GET /user/tokens/verify`` verifies user tokens only and answers an account token 401 / 1000;
``GET /accounts/{a}/tokens/verify`` verifies the account's own tokens (Cloudflare staff, cloudflare-docs
#29486). ASSUMPTION: a user token on the account endpoint is 401 / 1000 as well (it is not one of the
account's tokens), though it may act on the account.

Permission names: ``ai_gateway:read``, ``ai_gateway:write``, ``ai_gateway:run`` (Cloudflare's three
AI Gateway permission groups: Read, Edit, Run), ``secrets_store:read``, ``secrets_store:write``,
``logs:read``, ``logs:write`` (Logs Read / Edit: Logpush).
A read is satisfied by read or write; Run is apart: neither Read nor Write grants it.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cftwin.db import Database
from cftwin.digests import sha256_hex
from cftwin.envelope import (
    CODE_AUTH,
    CODE_INVALID_TOKEN,
    CODE_RATE_LIMITED,
    CloudflareAPIError,
    new_hex_id,
    now_iso,
    ok,
    unknown_account,
)

if TYPE_CHECKING:
    from cftwin.context import TwinContext

__all__ = [
    "ALL_PERMISSIONS",
    "PERMISSIONS",
    "TOKEN_KINDS",
    "ApiBudget",
    "BudgetState",
    "Token",
    "TokenKind",
    "account_exists",
    "account_gateway_limit",
    "authenticate",
    "bearer_token",
    "create_account",
    "create_token",
    "find_token",
    "has_permission",
    "ratelimit_headers",
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
    # ASSUMPTION: reading gateway logs on an account with Logs powered by Workers Observability takes the
    # "Workers Observability" Read permission group (cftwin.observability).
    "workers_observability:read",
    "logs:read",
    "logs:write",
)
ALL_PERMISSIONS: Final = frozenset(PERMISSIONS)
TokenKind = Literal["user", "account"]
TOKEN_KINDS: Final = ("user", "account")

#: This service's tables; ``cftwin.schema.SCHEMAS`` lists every service's, in order.
SCHEMA: Final = """
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
        kind TEXT NOT NULL DEFAULT 'account',
        owner TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    """


@dataclass(frozen=True)
class Token:
    id: str
    value: str
    account_ids: tuple[str, ...]
    permissions: frozenset[str]
    status: str = "active"
    kind: TokenKind = "account"
    #: Whose budget the token spends: ``account:<id>`` for an account token, ``user:<name>`` for a user's.
    owner: str = ""

    def __repr__(self) -> str:
        # The value is a credential: never in a repr, a log line or a traceback.
        return (f"Token(id={self.id!r}, kind={self.kind!r}, account_ids={self.account_ids!r}, "
                f"permissions={sorted(self.permissions)!r})")


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
    kind: TokenKind = "account",
    user: str = "user",
) -> Token:
    """Create (or, for a known ``value``, replace the grants of) a token; returns it.

    ``kind`` ``account``: owned by its (first) account; ``user``: owned by ``user``, who may hold many.
    """
    perms = frozenset(permissions)
    unknown = perms - ALL_PERMISSIONS
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}; known: {list(PERMISSIONS)}")
    if kind not in TOKEN_KINDS:
        raise ValueError(f"unknown token kind {kind!r}; known: {list(TOKEN_KINDS)}")
    accounts = tuple(dict.fromkeys(account_ids))
    if kind == "account" and len(accounts) != 1:
        raise ValueError("an account token belongs to exactly one account")
    owner = f"account:{accounts[0]}" if kind == "account" else f"user:{user}"
    token_value = value if value is not None else secrets.token_urlsafe(30)
    existing = find_token(db, token_value)
    token_id = existing.id if existing is not None else new_hex_id()
    db.execute(
        "INSERT INTO tokens (id, value_sha256, account_ids, permissions, status, kind, owner, created_at) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?, ?) ON CONFLICT(value_sha256) DO UPDATE SET "
        "account_ids = excluded.account_ids, permissions = excluded.permissions, status = 'active', "
        "kind = excluded.kind, owner = excluded.owner",
        (token_id, sha256_hex(token_value), json.dumps(list(accounts)), json.dumps(sorted(perms)), kind, owner,
         now_iso()),
    )
    return Token(token_id, token_value, accounts, perms, kind=kind, owner=owner)


def revoke_token(db: Database, token_id: str) -> bool:
    """Delete the token; False when there was none. A revoked token answers 401 from then on."""
    return db.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0


def find_token(db: Database, value: str) -> Token | None:
    # The state keeps only a token's digest (a copied state file holds no usable token): look up by it.
    # The Token is made once per kept row (until the next write to tokens): a frozen value, and the row's
    # digest is the value's, so the value it carries is this one.
    return db.query_one_as("SELECT * FROM tokens WHERE value_sha256 = ?", (sha256_hex(value),),
                           lambda row: Token(
                               id=row["id"],
                               value=value,
                               account_ids=tuple(json.loads(row["account_ids"])),
                               permissions=frozenset(json.loads(row["permissions"])),
                               status=row["status"],
                               kind="user" if row["kind"] == "user" else "account",
                               owner=row["owner"],
                           ))


def has_permission(token: Token, permission: str) -> bool:
    if permission in token.permissions:
        return True
    service, _, action = permission.partition(":")
    return action == "read" and f"{service}:write" in token.permissions


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One request's count against its owner's window: allowed, and what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # whole seconds to the window's end, rounded up (at least 1)
    window_s: float


class ApiBudget:
    """Fixed-window request counts per token owner (in memory: a restart refills every budget).

    A window opens at the owner's first request and lasts ``window_s``; past ``limit`` requests every
    request of the owner is refused until the window ends (Cloudflare: "all API calls for the next
    five minutes will be blocked").
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # owner -> (window start, requests counted)

    def charge(self, owner: str, limit: int, window_s: float) -> BudgetState:
        """Count one request of ``owner``. A refused request is not counted (the window is spent anyway)."""
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(owner, (now, 0))
            if now >= start + window_s:
                start, count = now, 0
            # window_s - elapsed, not (start + window_s) - now: the float sum can round a fresh window to 301 s.
            reset_s = max(1, math.ceil(window_s - (now - start)))
            if count >= limit:
                self._windows[owner] = (start, count)
                return BudgetState(False, limit, 0, reset_s, window_s)
            count += 1
            self._windows[owner] = (start, count)
            return BudgetState(True, limit, limit - count, reset_s, window_s)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


def _format_window(window_s: float) -> str:
    return str(int(window_s)) if float(window_s).is_integer() else f"{window_s:g}"


def ratelimit_headers(limit: int, remaining: int, reset_s: int, window_s: float) -> dict[str, str]:
    """Cloudflare's ``Ratelimit`` / ``Ratelimit-Policy`` (IETF draft structured fields)."""
    return {
        "Ratelimit": f'"default";r={max(0, remaining)};t={max(0, reset_s)}',
        "Ratelimit-Policy": f'"default";q={limit};w={_format_window(window_s)}',
    }


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
        state = context.budget.charge(token.owner or f"token:{token.id}", limit, window)
        headers = ratelimit_headers(state.limit, state.remaining, state.reset_s, state.window_s)
        if not state.allowed:
            raise CloudflareAPIError.single(
                429,
                CODE_RATE_LIMITED,
                f"More than {limit} requests per {_format_window(window)} seconds reached. "
                "Please wait and consider throttling your request speed",
                headers={**headers, "Retry-After": str(state.reset_s)},
            )
        # The middleware adds them to the answer, whatever the handler returns or raises.
        request.state.cftwin_ratelimit = headers
    return token


def require(request: Request, account_id: str, permission: str) -> Token:
    """Authenticate, charge the budget, and check ``permission`` on ``account_id`` (401/429/400/403)."""
    token = authenticate(request)
    if account_id not in token.account_ids and not account_exists(_context(request).db, account_id):
        raise unknown_account(request.url.path)
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
    token = _verify_token(request)
    # An account-owned token is not a user token: Cloudflare answers it here with 401 (docs #29486).
    if token.kind != "user":
        raise _invalid_token()
    return ok(_verify_result(token))


async def verify_account_token(request: Request) -> Response:
    token = _verify_token(request)
    account_id = request.path_params["account_id"]
    if account_id not in token.account_ids and not account_exists(_context(request).db, account_id):
        raise unknown_account(request.url.path)
    # ASSUMPTION: only the account's own tokens verify here; a user token, or another account's token,
    # is not one of them (401 / 1000).
    if token.kind != "account" or token.owner != f"account:{request.path_params['account_id']}":
        raise _invalid_token()
    return ok(_verify_result(token))


routes: list[BaseRoute] = [
    Route("/client/v4/user/tokens/verify", verify_user_token, methods=["GET"]),
    Route("/client/v4/accounts/{account_id}/tokens/verify", verify_account_token, methods=["GET"]),
]
