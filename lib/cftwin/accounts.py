"""What an account is on Cloudflare's side beyond its id: its plan and when it was created.

Both decide what the account gets (cloudflare-docs ``ai-gateway/reference/limits.mdx``,
``reference/pricing.mdx``, ``observability/logging/index.mdx`` and ``legacy-logs.mdx``, @0170ffd):

* **Log system.** Accounts created before 2026-09-24 have *Legacy Logs* (the
  ``/ai-gateway/gateways/{g}/logs`` API); accounts created on or after it have *Logs powered by Workers
  Observability* (queried with ``POST /accounts/{a}/workers/observability/telemetry/query``).
* **Legacy Logs storage.** Workers Free: 100,000 logs across all of the account's gateways; Workers Paid:
  10 million logs per gateway.
* **Gateways.** 10 per account on free, 20 on paid.
* **Workers Logs retention** (the Observability system): ASSUMPTION 3 days on free and 7 days on paid, the
  figures Workers Logs publishes (the AI Gateway pages only link to them).

The profile is kept per account in the twin's state (``account_profiles``); an account without one is on
``DEFAULT_PLAN`` and was created on ``DEFAULT_CREATED_AT``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from cftwin.db import Database

__all__ = [
    "DEFAULT_CREATED_AT",
    "DEFAULT_PLAN",
    "OBSERVABILITY_LOGS_SINCE",
    "AccountProfile",
    "LogSystem",
    "Plan",
    "account_profile",
    "created_at_for",
    "set_account_profile",
]

Plan = Literal["free", "paid"]
LogSystem = Literal["legacy", "observability"]

#: Accounts created on or after this date use Logs powered by Workers Observability (legacy-logs.mdx).
OBSERVABILITY_LOGS_SINCE: Final = date(2026, 9, 24)
#: ASSUMPTION: a twin account predates the cut-off (most platform teams' accounts do) and is on the free plan
#: (the twin's long-standing gateway limit of 10 is the free plan's).
DEFAULT_CREATED_AT: Final = "2025-06-01T00:00:00Z"
DEFAULT_PLAN: Final[Plan] = "free"

_GATEWAYS: Final[dict[Plan, int]] = {"free": 10, "paid": 20}
_RETENTION_DAYS: Final[dict[Plan, int]] = {"free": 3, "paid": 7}
#: Legacy Logs: stored logs per account (free, across gateways) or per gateway (paid).
FREE_LOGS_PER_ACCOUNT: Final = 100_000
PAID_LOGS_PER_GATEWAY: Final = 10_000_000

SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS account_profiles (
        account_id TEXT PRIMARY KEY,
        plan       TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class AccountProfile:
    plan: Plan
    created_at: str

    @property
    def log_system(self) -> LogSystem:
        return _log_system(self.created_at)

    @property
    def gateway_limit(self) -> int:
        return _GATEWAYS[self.plan]

    @property
    def retention_days(self) -> int:
        return _RETENTION_DAYS[self.plan]


@functools.lru_cache(maxsize=256)  # a pure function of the date; every log batch asks it
def _log_system(created_at: str) -> LogSystem:
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(UTC).date()
    return "observability" if created >= OBSERVABILITY_LOGS_SINCE else "legacy"


def created_at_for(log_system: LogSystem) -> str:
    """A creation date that gives an account ``log_system`` (the day before / of the cut-off)."""
    return DEFAULT_CREATED_AT if log_system == "legacy" else "2026-10-01T00:00:00Z"


_DEFAULT_PROFILE: Final = AccountProfile(DEFAULT_PLAN, DEFAULT_CREATED_AT)


def set_account_profile(db: Database, account_id: str, *, plan: Plan, created_at: str) -> None:
    if plan not in _GATEWAYS:
        raise ValueError(f"plan must be free or paid, not {plan!r}")
    datetime.fromisoformat(created_at.replace("Z", "+00:00"))  # ValueError for a date that is not one
    db.execute(
        "INSERT INTO account_profiles (account_id, plan, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (account_id) DO UPDATE SET plan = excluded.plan, created_at = excluded.created_at",
        (account_id, plan, created_at),
    )


def account_profile(db: Database, account_id: str) -> AccountProfile:
    # Made once per kept row (until the next write to account_profiles): a frozen value.
    profile = db.query_one_as("SELECT plan, created_at FROM account_profiles WHERE account_id = ?", (account_id,),
                              _profile_of)
    return _DEFAULT_PROFILE if profile is None else profile


def _profile_of(row: Any) -> AccountProfile:
    plan: Plan = "paid" if row["plan"] == "paid" else "free"
    return AccountProfile(plan, str(row["created_at"]))
