"""What a fresh twin knows: one account, its tokens and the provider keys it accepts.

``seed_from_env_file`` takes them from a filled-in ``.dev.vars`` (so the runbook's own settings work
against the twin unchanged); ``generated_seed`` makes random ones (tests, rehearsals).
``apply_seed`` writes a seed into a twin's state; ``TwinSeed.to_environ`` gives the variables that
aim the runbook at a served twin.

A state file keeps its seed's account (``kept_seed_account``): a run on the same state without a seed
file generates fresh credentials for the same account, so what a killed run half-made is found and
converged, not orphaned in an account nobody has a token for.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from dotenv import dotenv_values

from cftwin.accounts import DEFAULT_CREATED_AT, DEFAULT_PLAN, Plan, set_account_profile
from cftwin.auth import create_account, create_token
from cftwin.errors import TwinConfigError
from cftwin.validation import is_account_id, is_gateway_id

if TYPE_CHECKING:
    from cftwin.context import TwinContext

__all__ = [
    "AIG_TOKEN_PERMISSIONS",
    "API_TOKEN_PERMISSIONS",
    "DEFAULT_GATEWAY_ID",
    "PROVIDER_KEY_VARS",
    "SCHEMA",
    "TwinSeed",
    "apply_seed",
    "generated_provider_key",
    "generated_seed",
    "kept_seed_account",
    "seed_from_env_file",
]

# The variable names of a ``.dev.vars`` the twin can be seeded from, and the provider slugs it emulates
# (Cloudflare's: ``google-ai-studio``, ``openai``, ``anthropic``). The names are the seed file's format,
# the twin's own interface; nothing here is imported from the runbook.
PROVIDER_KEY_VARS: Final[dict[str, str]] = {
    "google-ai-studio": "GOOGLE_AI_STUDIO_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
PROVIDERS: Final = tuple(PROVIDER_KEY_VARS)
#: The gateway a seed names when its file names none (the Stage 1 contract's).
DEFAULT_GATEWAY_ID: Final = "github-ai-agent"
#: What ``.dev.vars.example`` tells a user ``CLOUDFLARE_API_TOKEN`` needs: AI Gateway Read + Write,
#: Secrets Store Write, and Workers Observability Read (where an account created since 2026-09-24 keeps its
#: gateway logs). Not Run: the data plane's ``cf-aig-authorization`` needs a token with AI Gateway
#: Run (``CF_AIG_TOKEN``), a permission group of its own (cloudflare-docs configuration/authentication.mdx).
#: And Logs Edit, which only notebook 07 (Logpush) needs; ``.dev.vars.example`` says so beside its variables.
API_TOKEN_PERMISSIONS: Final = frozenset(
    {"ai_gateway:read", "ai_gateway:write", "secrets_store:write", "workers_observability:read", "logs:write"}
)
#: ``CF_AIG_TOKEN``: AI Gateway Run only.
AIG_TOKEN_PERMISSIONS: Final = frozenset({"ai_gateway:run"})
# Values that only say "fill me in" (as in an unfilled copy of an example file) count as unset.
_PLACEHOLDER: Final = re.compile(r"^\s*(<.*>|your[-_].*|changeme|xxx+|\.\.\.)\s*$", re.IGNORECASE)


#: The account of the last seed applied to this state (``kept_seed_account``); listed in ``cftwin.schema``.
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS seed_account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT NOT NULL
);
"""


class _HasUrl(Protocol):
    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class TwinSeed:
    account_id: str
    api_token: str
    aig_token: str | None = None
    provider_keys: dict[str, str] = field(default_factory=dict)
    gateway_id: str = DEFAULT_GATEWAY_ID
    #: The account's plan and creation date (which decides its log system): see ``cftwin.accounts``.
    plan: Plan = DEFAULT_PLAN
    created_at: str = DEFAULT_CREATED_AT

    def __repr__(self) -> str:
        # Tokens and keys are credentials: never in a repr, a log line or a failed assertion.
        return (
            f"TwinSeed(account_id={self.account_id!r}, gateway_id={self.gateway_id!r}, api_token=***, "
            f"aig_token={'***' if self.aig_token else None}, providers={sorted(self.provider_keys)})"
        )

    def to_environ(self, target: str | _HasUrl | None = None) -> dict[str, str]:
        """``CLOUDFLARE_*``, ``CF_AIG_TOKEN``, provider keys, and (with ``target``, a twin or its base
        URL) ``CLOUDFLARE_API_BASE_URL``, ``CLOUDFLARE_GATEWAY_BASE_URL``, ``AIGW_PROVIDER_BASE_URL``."""
        env = {
            "CLOUDFLARE_ACCOUNT_ID": self.account_id,
            "CLOUDFLARE_GATEWAY_ID": self.gateway_id,
            "CLOUDFLARE_API_TOKEN": self.api_token,
        }
        if self.aig_token:
            env["CF_AIG_TOKEN"] = self.aig_token
        for provider, key in self.provider_keys.items():
            env[PROVIDER_KEY_VARS[provider]] = key
        if target is not None:
            base = (target if isinstance(target, str) else target.url).rstrip("/")
            env["CLOUDFLARE_API_BASE_URL"] = f"{base}/client/v4"
            env["CLOUDFLARE_GATEWAY_BASE_URL"] = f"{base}/v1"
            env["AIGW_PROVIDER_BASE_URL"] = f"{base}/__providers__"
        return env

    def as_json(self) -> dict[str, Any]:
        """The admin API's ``POST /__twin__/seed`` body (holds the secrets: send it only to a twin)."""
        return {
            "account_id": self.account_id,
            "api_token": self.api_token,
            "aig_token": self.aig_token,
            "provider_keys": dict(self.provider_keys),
            "gateway_id": self.gateway_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TwinSeed:
        """Validated; ValueError names the bad field."""
        if not isinstance(data, dict):
            raise ValueError("a seed is a JSON object")
        account = data.get("account_id")
        api_token = data.get("api_token")
        if not isinstance(account, str):
            raise ValueError("seed.account_id must be a string")
        if not isinstance(api_token, str) or not api_token:
            raise ValueError("seed.api_token must be a non-empty string")
        aig = data.get("aig_token")
        if aig is not None and (not isinstance(aig, str) or not aig):
            raise ValueError("seed.aig_token must be a non-empty string or null")
        keys = data.get("provider_keys") or {}
        if not isinstance(keys, dict) or not all(
            isinstance(k, str) and k in PROVIDER_KEY_VARS and isinstance(v, str) and v for k, v in keys.items()
        ):
            raise ValueError(f"seed.provider_keys must map providers {list(PROVIDERS)} to non-empty strings")
        gateway = data.get("gateway_id") or DEFAULT_GATEWAY_ID
        if not isinstance(gateway, str):
            raise ValueError("seed.gateway_id must be a string")
        if not is_account_id(account):
            raise ValueError("seed.account_id must be 32 lowercase hex characters")
        if not is_gateway_id(gateway):
            raise ValueError("seed.gateway_id must be 1-64 characters of a-z, 0-9 and '_', joined by single '-'")
        return cls(account, api_token, aig, dict(keys), gateway)


def seed_from_env_file(path: Path | str) -> TwinSeed:
    """The seed a filled-in ``.dev.vars`` describes (the environment wins, as for the runbook)."""
    env = _read_env_file(Path(path))
    account = env.get("CLOUDFLARE_ACCOUNT_ID")
    token = env.get("CLOUDFLARE_API_TOKEN")
    if not account or not token:
        missing = " and ".join(n for n, v in (("CLOUDFLARE_ACCOUNT_ID", account), ("CLOUDFLARE_API_TOKEN", token))
                               if not v)
        raise TwinConfigError(
            f"{path} does not set {missing}",
            hint="Fill them in (see .dev.vars.example), or serve the twin without --env-file for a generated seed",
        )
    gateway = env.get("CLOUDFLARE_GATEWAY_ID", DEFAULT_GATEWAY_ID)
    if not is_account_id(account):
        raise TwinConfigError(
            f"{path}: CLOUDFLARE_ACCOUNT_ID is not an account id (32 lowercase hex characters, "
            f"{len(account)} characters given)",
            hint="Fix it in the file, or serve the twin without --env-file for a generated seed",
        )
    if not is_gateway_id(gateway):
        raise TwinConfigError(
            f"{path}: CLOUDFLARE_GATEWAY_ID is not a gateway id",
            hint="Use 1-64 characters: lowercase letters, digits and '_', joined by single '-'",
        )
    return TwinSeed(
        account_id=account,
        api_token=token,
        aig_token=env.get("CF_AIG_TOKEN") or None,
        provider_keys={slug: env[var] for slug, var in PROVIDER_KEY_VARS.items() if env.get(var)},
        gateway_id=gateway,
    )


def _read_env_file(path: Path) -> dict[str, str]:
    """The file's variables with the environment over them (as the runbook reads it); placeholders dropped."""
    if not path.is_file():
        raise TwinConfigError(f"env file {str(path)!r} does not exist", hint="Check the --env-file path")
    merged = {k: v for k, v in dotenv_values(path).items() if v is not None}
    merged.update(os.environ)
    return {k: v.strip() for k, v in merged.items() if v.strip() and not _PLACEHOLDER.match(v)}


_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def generated_provider_key(provider: str) -> str:
    """A random key in the provider's shape (made at run time, never a committed literal)."""
    if provider == "openai":
        return "sk-proj-" + _random(_ALNUM + "-_", 156)
    if provider == "anthropic":
        return "sk-ant-api03-" + _random(_ALNUM + "-_", 93) + "AA"
    if provider == "google-ai-studio":
        return "AIza" + _random(_ALNUM + "-_", 35)
    raise ValueError(f"no key shape for provider {provider!r}")


def generated_seed(gateway_id: str = DEFAULT_GATEWAY_ID, *, account_id: str | None = None) -> TwinSeed:
    """A random account id (or ``account_id``), distinct API and AIG tokens, and one key per provider."""
    return TwinSeed(
        account_id=account_id if account_id is not None else secrets.token_hex(16),
        api_token=_random(_ALNUM + "-_", 40),
        aig_token=_random(_ALNUM + "-_", 40),
        provider_keys={provider: generated_provider_key(provider) for provider in PROVIDERS},
        gateway_id=gateway_id,
    )


def kept_seed_account(state: str | Path) -> str | None:
    """The account of the seed last applied to the state file ``state``; None for none (or ``:memory:``).

    Read-only, and silent on a file that is not the twin's: opening it to serve says what is wrong.
    ASSUMPTION: the credentials of earlier generated seeds stay valid (only digests are kept, and a
    killed run's kernels may still hold them); each run adds its own.
    """
    path = Path(state)
    if str(state) == ":memory:" or not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT account_id FROM seed_account WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    account = row[0] if row is not None else None
    return account if is_account_id(account) else None


def apply_seed(context: TwinContext, seed: TwinSeed) -> None:
    """Create the account, the API token (``API_TOKEN_PERMISSIONS``), the AIG token (``ai_gateway:run``)
    and register the provider keys as valid with the emulated providers. Idempotent.

    ASSUMPTION: both are account-owned tokens (what platform teams create for automation), so they
    verify at ``/accounts/{a}/tokens/verify`` and not at ``/user/tokens/verify``.
    """
    db = context.db
    if seed.provider_keys:
        # Imported here: the providers service is another module's, and a seed without keys needs none of it.
        from cftwin.providers.models import add_provider_key
    with db.transaction():
        # A paid account's gateway limit is its own (20); a free one keeps the twin's default (10).
        create_account(db, seed.account_id, gateway_limit=20 if seed.plan == "paid" else None)
        set_account_profile(db, seed.account_id, plan=seed.plan, created_at=seed.created_at)
        db.execute("INSERT INTO seed_account (id, account_id) VALUES (1, ?) "
                   "ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id", (seed.account_id,))
        if seed.aig_token == seed.api_token:
            # One token for both roles (the runbook's fallback when CF_AIG_TOKEN is unset): it then
            # holds Run as well, because the user said so by giving the same value.
            create_token(db, [seed.account_id], API_TOKEN_PERMISSIONS | AIG_TOKEN_PERMISSIONS, value=seed.api_token)
        else:
            create_token(db, [seed.account_id], API_TOKEN_PERMISSIONS, value=seed.api_token)
            if seed.aig_token:
                create_token(db, [seed.account_id], AIG_TOKEN_PERMISSIONS, value=seed.aig_token)
        if seed.provider_keys:
            for provider, key in seed.provider_keys.items():
                add_provider_key(db, provider, key)
