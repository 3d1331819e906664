"""What every twin handler reaches through ``request.app.state.twin``: state, options, faults; and the
account a control-plane handler serves, once the request may act on it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from cftwin.adminauth import new_admin_token
from cftwin.auth import ApiBudget, require
from cftwin.dataplane.ratelimit import RateLimiter
from cftwin.db import Database
from cftwin.timing import REALISTIC_DELAYS

if TYPE_CHECKING:
    from starlette.requests import Request

    from cftwin.faults import FaultInjector

__all__ = ["LogpushRuntime", "TwinContext", "TwinOptions", "authorized_account", "twin_context"]


@dataclass
class TwinOptions:
    """How this twin behaves. The admin API (``PUT /__twin__/config``) may change it at run time."""

    admin_enabled: bool = False
    #: Gateways per account: 10 on Cloudflare's free plan, 20 on paid.
    gateway_limit: int = 10
    #: The API budget per token owner (user, or account for account tokens): requests per fixed window
    #: (seconds). Cloudflare: 1,200 per 300 s, per user.
    api_budget_requests: int = 1200
    api_budget_window_s: float = 300.0
    #: Secrets Store (open beta): one store per account, 100 secrets per account.
    secrets_store_limit: int = 1
    secrets_quota: int = 100
    #: Emulated provider latency: base milliseconds per provider slug, and +/- jitter.
    provider_latency_ms: dict[str, float] = field(default_factory=dict)
    provider_jitter_ms: float = 0.0
    #: Added to every gateway request, so that overhead measurements have a known truth.
    gateway_overhead_ms: float = 0.0
    #: Where the gateway data plane of this twin is reached (``http://host:port/v1``); the control
    #: plane answers it from ``GET .../url/{provider}``. Set by the server once it knows its port.
    gateway_base_url: str = ""
    #: Time on Cloudflare (``cftwin.timing``): a log reaches the logs API, a cached response becomes
    #: readable, a new secret turns from ``pending`` to ``active``, that many seconds later. The
    #: defaults are the realistic ones a rehearsal meets (ASSUMPTION: the durations, see
    #: ``cftwin.timing``); ``NO_DELAYS`` turns them off.
    log_delay_s: float = REALISTIC_DELAYS["log_delay_s"]
    cache_write_delay_s: float = REALISTIC_DELAYS["cache_write_delay_s"]
    secret_pending_s: float = REALISTIC_DELAYS["secret_pending_s"]
    #: Unified Billing credits (USD) each account starts with; 0: none, so a REST API request that no BYOK
    #: key pays for is refused (``cftwin.dataplane.billing``).
    unified_billing_credits_usd: float = 0.0
    #: Logpush: the account is on Workers Paid (Logpush is a paid feature); seconds between deliveries;
    #: the S3 API that stands in for R2 (``r2://`` destinations), a loopback URL.
    logpush_paid_plan: bool = True
    logpush_interval_s: float = 1.0
    r2_endpoint_url: str = ""
    #: The largest request body served (``cftwin.limits``; Cloudflare Free/Pro: 100 MB); larger ones get 413.
    max_request_body_bytes: int = 100 * 2**20

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field name -> value), checking names and types; ValueError otherwise."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown option {name!r}; known: {sorted(known)}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"option {name} must be a boolean")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"option {name} must be a non-negative integer")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"option {name} must be a non-negative number")
                value = float(value)
            elif isinstance(current, dict):
                if not isinstance(value, dict) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
                ):
                    raise ValueError(f"option {name} must be an object of numbers")
                value = {str(k): float(v) for k, v in value.items()}
            elif isinstance(current, str) and not isinstance(value, str):
                raise ValueError(f"option {name} must be a string")
        for name, value in changes.items():
            current = getattr(self, name)
            if isinstance(current, float) and not isinstance(current, bool):
                value = float(value)
            elif isinstance(current, dict):
                value = {str(k): float(v) for k, v in value.items()}
            setattr(self, name, value)


@dataclass
class LogpushRuntime:
    """This twin's Logpush delivery thread and the S3 clients it made (``cftwin.logpush``): in the context,
    so two twins in one process never share them."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: The delivery thread, started by the first job (``logpush.delivery.ensure_worker``).
    worker: Any = None
    #: One boto3 client per (endpoint, region, key id, secret): a client costs a few hundred ms to make.
    clients: dict[tuple[str, str, str, str], Any] = field(default_factory=dict, repr=False)


@dataclass
class TwinContext:
    db: Database
    options: TwinOptions
    faults: FaultInjector | None = None
    #: Per-owner request counts for the API budget (in memory; a restart refills it).
    budget: ApiBudget = field(default_factory=ApiBudget)
    #: The gateways' own rate-limit counters (data plane; in memory, see ``dataplane.ratelimit``).
    gateway_limiter: RateLimiter = field(default_factory=RateLimiter)
    #: What the admin API asks for (``cftwin.adminauth``): random per twin, never in a repr.
    admin_token: str = field(default_factory=new_admin_token, repr=False)
    #: Set while the server stops: a withheld (``hang_after_apply``) answer is sent at once.
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    logpush: LogpushRuntime = field(default_factory=LogpushRuntime, repr=False)


def twin_context(request: Request) -> TwinContext:
    """The twin a request reached (``cftwin.app`` puts it in ``app.state.twin``)."""
    context: TwinContext = request.app.state.twin
    return context


def authorized_account(request: Request, permission: str) -> str:
    """The path's ``account_id``, once the request's token may do ``permission`` on it (``auth.require``:
    401 / 429 / 400 / 403 otherwise)."""
    account_id: str = request.path_params["account_id"]
    require(request, account_id, permission)
    return account_id
