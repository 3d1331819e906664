"""Notebook 01: create (or converge) the authenticated AI Gateway, and prove criterion 1.

``preflight`` -> ``desired_gateway`` -> ``plan_gateway_change`` -> ``apply_gateway_plan`` ->
``verify_gateway``. Re-running converges: an existing gateway with the desired settings is "no change",
one that differs is updated field by field; a gateway is never deleted and re-created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aigw.config import PROVIDERS, validate_gateway_id
from aigw.errors import (
    AuthenticationError,
    CloudflareError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
)
from aigw.evidence import Check
from aigw.session import Session
from aigw.steps import checks_table, markdown_table, status_mark

__all__ = [
    "ApplyResult",
    "DesiredGateway",
    "GatewayPlan",
    "GatewayVerification",
    "Preflight",
    "apply_gateway_plan",
    "desired_gateway",
    "plan_gateway_change",
    "preflight",
    "verify_gateway",
]

#: Gateways per account: 10 on the free plan, 20 on paid (reference §9).
FREE_PLAN_GATEWAYS: Final = 10
PAID_PLAN_GATEWAYS: Final = 20
#: The endpoints whose gateway URL the verification shows: the three providers and the unified one.
URL_PROVIDERS: Final = (*PROVIDERS, "compat")


@dataclass(frozen=True)
class Preflight:
    """What the token and account allow, found without changing anything."""

    account_id: str
    gateway_id: str
    token_status: str
    gateways: tuple[str, ...]
    gateway_exists: bool
    stores_readable: bool
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        rows = [(f"{status_mark(c.status)} {c.check}", c.detail) for c in self.checks]
        return "**Preflight**\n\n" + markdown_table(["check", "detail"], rows, raw=True)


def preflight(session: Session) -> Preflight:
    """Token valid and active, AI Gateway reads allowed, account reachable, room for one more gateway,
    Secrets Store readable. Only GET requests: nothing is changed.

    Write permission cannot be read without a write (``/user/tokens/verify`` says only whether the
    token is active), so it shows at the apply step as a one-line ``PermissionDeniedError`` with the
    permission to add.
    """
    client = session.client
    gateway_id = session.settings.gateway_id
    checks: list[Check] = []
    token = client.verify_token()
    token_ok = token.active
    checks.append(Check(None, "API token valid and active", "pass" if token_ok else "fail",
                        f"status {token.status}" + (f", expires {token.expires_on}" if token.expires_on else "")))
    if not token_ok:
        raise AuthenticationError(
            f"the API token is {token.status or 'not active'}", status=401,
            hint="Create or re-enable the token under My Profile > API Tokens and update CLOUDFLARE_API_TOKEN",
        )
    try:
        gateways = client.list_gateways()
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            "the token may not read AI Gateway (listing gateways was refused)", status=exc.status,
            errors=exc.errors, hint="Give the token AI Gateway Read and AI Gateway Write on this account",
        ) from None
    except NotFoundError as exc:
        raise NotFoundError(
            f"account {session.settings.account_id} is not reachable with this token", status=exc.status,
            errors=exc.errors, hint="Check CLOUDFLARE_ACCOUNT_ID, and that the token is scoped to that account",
        ) from None
    ids = tuple(sorted(g.id for g in gateways))
    exists = gateway_id in ids
    checks.append(Check(None, "AI Gateway readable, account reachable", "pass",
                        f"{len(ids)} gateway(s) in account {session.settings.account_id}"))
    if exists:
        checks.append(Check(None, "gateway quota", "pass", f"{gateway_id} exists: no new gateway needed"))
    elif len(ids) >= PAID_PLAN_GATEWAYS:
        checks.append(Check(None, "gateway quota", "fail",
                            f"{len(ids)} gateways: the account is at the paid plan's limit of {PAID_PLAN_GATEWAYS}"))
    elif len(ids) >= FREE_PLAN_GATEWAYS:
        # ASSUMPTION: the plan is not visible to an AI Gateway token; between the free and paid limits
        # the create may still succeed, so this is noted, not failed.
        checks.append(Check(None, "gateway quota", "skip",
                            f"{len(ids)} gateways: at the free plan's limit of {FREE_PLAN_GATEWAYS} "
                            f"(paid plans allow {PAID_PLAN_GATEWAYS})"))
    else:
        checks.append(Check(None, "gateway quota", "pass",
                            f"{len(ids)} of at least {FREE_PLAN_GATEWAYS} gateways used"))
    try:
        client.list_stores()
        stores_ok = True
        checks.append(Check(None, "Secrets Store readable", "pass", "needed by notebook 02 (BYOK keys)"))
    except (PermissionDeniedError, AuthenticationError):
        stores_ok = False
        checks.append(Check(None, "Secrets Store readable", "fail",
                            "the token may not read Secrets Store: notebook 02 will need Secrets Store Write"))
    return Preflight(session.settings.account_id, gateway_id, token.status, ids, exists, stores_ok, checks)


@dataclass(frozen=True)
class DesiredGateway:
    """The gateway the runbook wants: its id and the fields it sets (None fields are left as they are)."""

    gateway_id: str
    settings: Mapping[str, Any]

    def _repr_markdown_(self) -> str:
        return f"**Desired gateway** `{self.gateway_id}`\n\n" + markdown_table(
            ["field", "value"], sorted(self.settings.items()))


def desired_gateway(
    session: Session,
    *,
    gateway_id: str | None = None,
    authentication: bool = True,
    collect_logs: bool = True,
    cache_ttl: int = 0,
    cache_invalidate_on_update: bool = False,
    rate_limiting_limit: int = 0,
    rate_limiting_interval: int = 0,
    rate_limiting_technique: str = "fixed",
    log_management: int | None = None,
    log_management_strategy: str | None = None,
    retry_max_attempts: int | None = None,
    retry_delay: int | None = None,
    retry_backoff: str | None = None,
) -> DesiredGateway:
    """The desired gateway from the notebook's parameters.

    "Leave as it is" is None, or the notebook's sentinels: ``""`` for a string (``gateway_id`` then is
    the configured one), ``0`` for ``log_management`` / ``retry_max_attempts`` (below their minimum),
    a negative ``retry_delay``. The contract requires an authenticated gateway, and Cloudflare refuses
    to create one without authentication or to turn it off, so ``authentication=False`` is refused
    here, before any call.
    """
    if not authentication:
        raise ConfigError(
            "authentication=False: the contract requires an authenticated gateway (cf-aig-authorization), "
            "and Cloudflare refuses new gateways without it",
            hint="Leave authentication=True",
        )
    chosen = validate_gateway_id(gateway_id, name="gateway_id") if gateway_id else session.settings.gateway_id
    if chosen != session.settings.gateway_id:
        raise ConfigError(
            f"gateway_id {chosen!r} differs from CLOUDFLARE_GATEWAY_ID {session.settings.gateway_id!r}",
            hint="Set CLOUDFLARE_GATEWAY_ID in .dev.vars so that every notebook uses the same gateway",
        )
    values: dict[str, Any] = {
        "authentication": authentication,
        "collect_logs": collect_logs,
        "cache_ttl": cache_ttl,
        "cache_invalidate_on_update": cache_invalidate_on_update,
        "rate_limiting_limit": rate_limiting_limit,
        "rate_limiting_interval": rate_limiting_interval,
        "rate_limiting_technique": rate_limiting_technique or None,
        "log_management": log_management or None,
        "log_management_strategy": log_management_strategy or None,
        "retry_max_attempts": retry_max_attempts or None,
        "retry_delay": retry_delay if retry_delay is not None and retry_delay >= 0 else None,
        "retry_backoff": retry_backoff or None,
    }
    return DesiredGateway(chosen, {k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class GatewayPlan:
    """What applying would do: ``create``, ``update`` (with the changed fields) or ``none``."""

    gateway_id: str
    action: Literal["create", "update", "none"]
    desired: Mapping[str, Any]
    changes: tuple[tuple[str, Any, Any], ...] = ()

    def _repr_markdown_(self) -> str:
        if self.action == "none":
            return f"**Plan: no change** — gateway `{self.gateway_id}` already has the desired settings."
        if self.action == "create":
            return f"**Plan: create** gateway `{self.gateway_id}`\n\n" + markdown_table(
                ["field", "value"], sorted(self.desired.items()))
        return f"**Plan: update** gateway `{self.gateway_id}` ({len(self.changes)} field(s))\n\n" + markdown_table(
            ["field", "current", "desired"], self.changes)


def _differences(current: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple((name, current.get(name), value) for name, value in sorted(desired.items())
                 if current.get(name) != value)


def plan_gateway_change(session: Session, desired: DesiredGateway) -> GatewayPlan:
    """Desired against current: create when absent, update the differing fields, else no change."""
    current = session.client.find_gateway(desired.gateway_id)
    if current is None:
        return GatewayPlan(desired.gateway_id, "create", desired.settings)
    changes = _differences(current.raw, desired.settings)
    return GatewayPlan(desired.gateway_id, "update" if changes else "none", desired.settings, changes)


@dataclass(frozen=True)
class ApplyResult:
    plan: GatewayPlan
    applied: bool
    dry_run: bool
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def checks(self) -> list[Check]:
        """A note of what changed: ``gateway change`` = created / updated N field(s) / no change / dry run."""
        if self.dry_run and self.plan.action != "none":
            return [Check(None, "gateway change", "skip", f"dry run: would {self.plan.action}")]
        if not self.applied:
            return [Check(None, "gateway change", "pass", "no change")]
        what = "created" if self.plan.action == "create" else (
            "updated " + ", ".join(name for name, _, _ in self.plan.changes))
        return [Check(None, "gateway change", "pass", what)]

    def _repr_markdown_(self) -> str:
        if self.dry_run and self.plan.action != "none":
            return f"**Dry run** — nothing applied (the plan was: {self.plan.action})."
        if not self.applied:
            return f"**No change** — gateway `{self.plan.gateway_id}` left as it is."
        verb = "Created" if self.plan.action == "create" else "Updated"
        return f"**{verb}** gateway `{self.plan.gateway_id}`\n\n" + markdown_table(
            ["field", "value"], sorted((k, v) for k, v in self.settings.items() if k in self.plan.desired))


def apply_gateway_plan(session: Session, plan: GatewayPlan, *, dry_run: bool = False) -> ApplyResult:
    """Carry out the plan (nothing when ``dry_run`` or when there is no change). Never deletes."""
    if dry_run or plan.action == "none":
        return ApplyResult(plan, applied=False, dry_run=dry_run)
    client = session.client
    try:
        if plan.action == "create":
            gateway = client.create_gateway(plan.gateway_id, plan.desired)
        else:
            gateway = client.update_gateway(plan.gateway_id, {name: want for name, _, want in plan.changes})
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            f"the token may not {plan.action} gateways", status=exc.status, errors=exc.errors,
            hint="Give the token AI Gateway Write on this account (My Profile > API Tokens > Edit)",
        ) from None
    return ApplyResult(plan, applied=True, dry_run=False, settings=gateway.raw)


@dataclass(frozen=True)
class GatewayVerification:
    """Criterion 1 as the API shows it: listed, with the desired settings, authentication on; its URLs."""

    gateway_id: str
    listed: bool
    mismatches: tuple[tuple[str, Any, Any], ...]
    urls: Mapping[str, str]
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        head = "**Verification (criterion 1)**\n\n" + checks_table(self.checks)
        if self.mismatches:
            head += "\n\n**Differences**\n\n" + markdown_table(["field", "listed", "desired"], self.mismatches)
        if self.urls:
            head += "\n\n**Gateway URLs**\n\n" + markdown_table(["endpoint", "URL"], sorted(self.urls.items()))
        return head


def verify_gateway(session: Session, desired: DesiredGateway, *, dry_run: bool = False) -> GatewayVerification:
    """List the account's gateways (as the contract's ``curl`` does) and check the desired one is there
    with the desired settings and authentication on; fetch its URL for each provider.

    In a dry run a gateway that does not exist yet is a skip, not a failure.
    """
    client = session.client
    gateway = next((g for g in client.list_gateways() if g.id == desired.gateway_id), None)
    checks: list[Check] = []
    if gateway is None:
        status: Literal["fail", "skip"] = "skip" if dry_run else "fail"
        detail = "dry run: not created" if dry_run else f"{desired.gateway_id} is not in the account's gateway list"
        checks.append(Check(1, f"gateway {desired.gateway_id} listed by the API", status, detail))
        return GatewayVerification(desired.gateway_id, False, (), {}, checks)
    checks.append(Check(1, f"gateway {desired.gateway_id} listed by the API", "pass",
                        f"created {gateway.created_at or '?'}, modified {gateway.modified_at or '?'}"))
    mismatches = _differences(gateway.raw, desired.settings)
    checks.append(Check(
        1, "listed with the desired settings", "skip" if dry_run and mismatches else ("fail" if mismatches else "pass"),
        ", ".join(f"{n}: {c!r} (want {d!r})" for n, c, d in mismatches) if mismatches
        else f"{len(desired.settings)} fields match"))
    auth = gateway.authentication is True
    checks.append(Check(1, "authentication on (cf-aig-authorization required)", "pass" if auth else "fail",
                        f"authentication={gateway.authentication}"))
    urls: dict[str, str] = {}
    for provider in URL_PROVIDERS:
        try:
            urls[provider] = client.gateway_url(desired.gateway_id, provider)
        except CloudflareError as exc:
            urls[provider] = f"(not available: {exc.message})"
    expected_prefix = f"{session.settings.gateway_base_url}/{session.settings.account_id}/{desired.gateway_id}"
    good = [p for p, u in urls.items() if u.startswith(expected_prefix)]
    checks.append(Check(None, "gateway URL for each provider", "pass" if len(good) == len(urls) else "skip",
                        f"{len(good)} of {len(urls)} under {expected_prefix}"))
    return GatewayVerification(desired.gateway_id, True, mismatches, urls, checks)
