"""The BYOK secrets of notebooks 02 and 06: their names, the salted fingerprint in their comment, the store
that holds them, and storing one provider key (secret and provider config).

``aigw.steps.provider_keys`` (notebook 02) re-exports these names, since its notebook calls them there;
``aigw.steps.rotate_keys`` (notebook 06) and the benchmarks use them from here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aigw.cloudflare import ProviderConfig, Store, StoreSecret
from aigw.config import Secret
from aigw.errors import ConfigError, PermissionDeniedError
from aigw.evidence import Check
from aigw.session import Session
from aigw.steps import markdown_table
from aigw.steps.polling import PollSchedule

__all__ = [
    "BYOK_SCOPE",
    "DEFAULT_STORE_NAME",
    "KeyOutcome",
    "StoreChoice",
    "StoredKeys",
    "ensure_store",
    "fingerprint",
    "fingerprint_matches",
    "list_secrets_once_active",
    "secret_name",
    "store_provider_key",
]

#: Cloudflare creates a store of this name when Secrets Store is first opened in the dashboard.
DEFAULT_STORE_NAME: Final = "default_secrets_store"
_FINGERPRINT: Final = re.compile(r"aigw-fp:v1:([0-9a-f]{32}):([0-9a-f]{32})")
#: The scope a secret needs for a gateway to use it.
BYOK_SCOPE: Final = "ai_gateway"
#: How often a pending secret's status is read again: every 0.1 s during the first 3 seconds (a
#: new secret is pending for about a second; at every quarter second it was seen up to 0.25 s late, on 02's
#: critical path), then every quarter second. A 30 s pending costs 138 reads, about a ninth of the API's 1,200 per
#: 5 minutes, and only once per new secret.
_PENDING_POLL: Final = PollSchedule(fast_s=0.1, fast_for_s=3.0, slow_s=0.25)


def secret_name(gateway_id: str, provider: str, alias: str) -> str:
    """The BYOK secret's name Cloudflare's gateway looks up: ``{gateway_id}_{provider_slug}_{alias}``."""
    return f"{gateway_id}_{provider}_{alias}"


def fingerprint(key: Secret, salt: str | None = None) -> str:
    """A salted fingerprint of ``key`` for the secret's comment (never the key, never reversible)."""
    salt = salt or _random.token_hex(16)
    digest = hmac.new(bytes.fromhex(salt), key.reveal().encode(), hashlib.sha256).hexdigest()[:32]
    return f"aigw-fp:v1:{salt}:{digest}"


def fingerprint_matches(comment: str | None, key: Secret) -> bool | None:
    """True/False when ``comment`` holds a fingerprint (of ``key`` or not); None when it holds none."""
    found = _FINGERPRINT.search(comment or "")
    if not found:
        return None
    return hmac.compare_digest(fingerprint(key, found.group(1)), found.group(0))


# --- store ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreChoice:
    store: Store
    created: bool
    gateway_pointed: bool
    previous_store_id: str | None

    def _repr_markdown_(self) -> str:
        made = "created" if self.created else "existing"
        pointed = (f"gateway's `store_id` set (was `{self.previous_store_id}`)" if self.gateway_pointed
                   else "gateway's `store_id` already points at it")
        return f"**Secrets Store** `{self.store.name}` (`{self.store.id}`, {made}); {pointed}."


def ensure_store(session: Session, store_name: str | None = None) -> StoreChoice:
    """A Secrets Store for the keys, and the gateway's ``store_id`` pointing at it.

    Which store: the one named ``store_name``; else the one the gateway already uses; else the
    account's only store; else a new ``default_secrets_store``.
    """
    client = session.client
    gateway_id = session.settings.gateway_id
    gateway = client.find_gateway(gateway_id)
    if gateway is None:
        raise ConfigError(f"gateway {gateway_id!r} does not exist", hint="Run notebook 01 (create gateway) first")
    stores = client.list_stores()
    store: Store | None
    if store_name:  # "" (the notebook's "unset") falls through to the gateway's store
        store = next((s for s in stores if s.name == store_name), None)
    elif gateway.store_id:
        store = next((s for s in stores if s.id == gateway.store_id), None)
    else:
        # ASSUMPTION: Secrets Store allows one store per account (open beta); with several, the one of
        # the default name is preferred, then the oldest.
        store = next((s for s in stores if s.name == DEFAULT_STORE_NAME), None) or (stores[0] if stores else None)
    created = False
    if store is None:
        try:
            store = client.create_store(store_name or DEFAULT_STORE_NAME)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError("the token may not create a Secrets Store", status=exc.status,
                                        errors=exc.errors,
                                        hint="Give the token Secrets Store Write on this account") from None
        created = True
    pointed = gateway.store_id != store.id
    if pointed:
        client.update_gateway(gateway_id, {"store_id": store.id})
    return StoreChoice(store, created, pointed, gateway.store_id)


# --- keys into the store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyOutcome:
    """What happened to one provider's key: ``secret`` created / unchanged / rotated; config created /
    unchanged / re-pointed; or skipped."""

    provider: str
    secret_name: str
    secret: Literal["created", "unchanged", "rotated", "skipped"]
    config: Literal["created", "unchanged", "re-pointed", "skipped"]
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.secret in {"created", "rotated"} or self.config in {"created", "re-pointed"}


@dataclass(frozen=True)
class StoredKeys:
    outcomes: tuple[KeyOutcome, ...]

    @property
    def rotations(self) -> list[str]:
        return [o.provider for o in self.outcomes if o.secret == "rotated"]

    @property
    def changed(self) -> bool:
        return any(o.changed for o in self.outcomes)

    @property
    def checks(self) -> list[Check]:
        """A note per provider (``key change``): what happened to its secret and provider config."""
        return [Check(None, f"{o.provider} key change", "skip" if o.secret == "skipped" else "pass",
                      "no change" if not o.changed and o.secret != "skipped"
                      else f"secret {o.secret}, provider config {o.config}" + (f" ({o.note})" if o.note else ""))
                for o in self.outcomes]

    def _repr_markdown_(self) -> str:
        head = "**Provider keys stored**" if self.changed else "**No change** — every key is already stored"
        if self.rotations:
            head += f" — rotated: {', '.join(self.rotations)}"
        return head + "\n\n" + markdown_table(
            ["provider", "secret", "secret action", "provider config", "note"],
            [(o.provider, o.secret_name, o.secret, o.config, o.note or None) for o in self.outcomes])


def store_provider_key(
    session: Session, store: Store, provider: str, key: Secret, *, alias: str = "default",
    configs: Sequence[ProviderConfig] | None = None,
) -> KeyOutcome:
    """Store one key (create, leave, or rotate the secret) and attach it to the gateway (provider config)."""
    client = session.client
    gateway_id = session.settings.gateway_id
    name = secret_name(gateway_id, provider, alias)
    existing = client.find_secret(store.id, name)
    note = ""
    secret_action: Literal["created", "unchanged", "rotated"]
    if existing is None:
        stored = client.create_secret(store.id, name, key, scopes=(BYOK_SCOPE,), comment=fingerprint(key))
        secret_action = "created"
    else:
        same = fingerprint_matches(existing.comment, key)
        scoped = BYOK_SCOPE in existing.scopes or not existing.scopes
        if same is True and scoped:
            stored, secret_action = existing, "unchanged"
        else:
            if same is None:
                # ASSUMPTION: a secret without our fingerprint (made by hand) may hold another key; the
                # configured one is written over it and reported as a rotation.
                note = "no fingerprint on the stored secret: value replaced"
            stored = client.update_secret(store.id, existing.id, value=key, comment=fingerprint(key))
            secret_action = "rotated"
    current = configs if configs is not None else client.list_provider_configs(gateway_id)
    config = next((c for c in current if c.provider_slug == provider and c.alias == alias), None)
    config_action: Literal["created", "unchanged", "re-pointed"]
    if config is None:
        client.create_provider_config(gateway_id, provider, alias, secret_id=stored.id,
                                      default_config=alias == "default")
        config_action = "created"
    elif config.secret_id and config.secret_id != stored.id:
        # The config serves another secret; provider configs have no "change secret id" operation.
        client.delete_provider_config(gateway_id, config.id)
        client.create_provider_config(gateway_id, provider, alias, secret_id=stored.id,
                                      default_config=config.default_config)
        config_action = "re-pointed"
    else:
        config_action = "unchanged"
    return KeyOutcome(provider, name, secret_action, config_action, note)


def list_secrets_once_active(
    session: Session, store: Store, wanted: Callable[[StoreSecret], bool], wait_s: float
) -> tuple[list[StoreSecret], int]:
    """The store's secrets, read again (every 0.1 s for 3 s, then every quarter second) while one that is ``wanted``
    is still ``pending`` (a new secret can be, for a moment: Cloudflare's status enum, TS
    ``secrets-store/stores/secrets.ts``), for up to ``wait_s`` seconds; and how many reads it took."""
    started = time.monotonic()
    deadline = started + max(wait_s, 0.0)
    reads = 1
    while True:
        listed = session.client.list_secrets(store.id)
        now = time.monotonic()
        if not any(wanted(s) and s.status == "pending" for s in listed) or now >= deadline:
            return listed, reads
        time.sleep(min(_PENDING_POLL.pause(now - started), max(deadline - now, 0.0)))
        reads += 1
