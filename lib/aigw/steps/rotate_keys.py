"""Notebook 06: rotate provider keys (BYOK) and the gateway's run token, with no downtime.

``provider_keys.collect_keys`` -> ``plan_rotation`` -> ``check_new_keys`` -> ``apply_rotation`` ->
``verify_rotation`` -> ``check_gateway_token``.

**The operator's story.** Create the new key at the provider (the old one keeps working), put it in
``.dev.vars`` under the *same* name (``OPENAI_API_KEY``, ...), run 06. 06 compares the key with the
stored secret's salted fingerprint (notebook 02's scheme; Cloudflare never returns a stored value), so
only a changed key is rotated. Then revoke the old key at the provider, and run 06 again: it changes
nothing and proves traffic still flows.

**Why the new key is checked before anything is written.** A stored secret is write-only: once its
value is replaced, the old value cannot be read back to undo it. So the new key is first sent straight
to the provider (one tiny request; ``verify_direct``); a key the provider refuses stops the notebook
with nothing changed, and the old key keeps serving. Only then is the secret's value replaced in place
(``PATCH``, the provider config keeps pointing at the same secret), and a request through the gateway
(no key sent: BYOK) proves the gateway uses a key the provider accepts. Rolling back is the same move
with the old key: put it back in ``.dev.vars`` and run 06 (it still works until you revoke it).

**The gateway token** (``rotate_gateway_token``): create a new token with *AI Gateway Run*, put it in
``.dev.vars`` as ``CF_AIG_TOKEN`` (and in every client that calls the gateway), run 06 with
``rotate_gateway_token`` True: the token must be active, accepted by the gateway, and the gateway must
still refuse a request without one. Then revoke the old token. Nothing is stored with Cloudflare for
it: the gateway accepts any active token of the account that has AI Gateway Run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from aigw.cloudflare import CloudflareClient, ProviderConfig, Store, StoreSecret
from aigw.config import ENV_FILE_NAME, PROVIDER_KEY_VARS, PROVIDERS, Secret
from aigw.errors import AigwError, ConfigError
from aigw.evidence import Check, Status
from aigw.gateway import DEFAULT_MODELS, GatewayProber, ProbeResult
from aigw.session import Session
from aigw.steps import checks_list, markdown_table
from aigw.steps.byok_secrets import (
    KeyOutcome,
    StoredKeys,
    fingerprint_matches,
    list_secrets_once_active,
    secret_name,
    store_provider_key,
)
from aigw.steps.provider_keys import ProviderKeys

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "GatewayTokenCheck",
    "KeyChecks",
    "PlannedRotation",
    "RotationPlan",
    "RotationVerification",
    "apply_rotation",
    "check_gateway_token",
    "check_new_keys",
    "key_rejected",
    "parse_models",
    "plan_rotation",
    "verify_rotation",
]

#: Enough for any model to answer (reasoning models break on 1), small enough to cost nothing.
DEFAULT_MAX_TOKENS: Final = 16
_ROLLBACK_HINT: Final = (f"to roll back, put the previous key back in {ENV_FILE_NAME} and run 06 again "
                         "(it works until you revoke it at the provider)")


def parse_models(models: Sequence[str] | str, providers: Sequence[str]) -> dict[str, str]:
    """The model to probe per provider: ``slug/model`` entries over a cheap default for each."""
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    chosen = {p: DEFAULT_MODELS[p] for p in providers}
    for entry in models:
        slug, sep, model = entry.partition("/")
        if not sep or not model or slug not in PROVIDER_KEY_VARS:
            raise ConfigError(f"models: {entry!r} is not provider/model",
                              hint=f"Use e.g. openai/gpt-4o-mini; providers are {', '.join(PROVIDERS)}")
        chosen[slug] = model
    return chosen


def key_rejected(result: ProbeResult) -> bool:
    """True when the provider itself refused the key (not the gateway, not a model or body problem)."""
    return result.key_rejected


def _describe(result: ProbeResult) -> str:
    code = f", code {result.gateway_error_code}" if result.gateway_error_code is not None else ""
    kind = f" {result.provider_error_type}" if result.provider_error_type else ""
    log = f", log {result.log_id}" if result.log_id else ""
    shown = f" ({result.excerpt})" if result.excerpt and not result.ok else ""
    return f"{result.status if result.status is not None else 'no answer'} {result.outcome}{kind}{code}{log}{shown}"


# --- plan ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRotation:
    """One provider: its stored secret, and whether the configured key differs from it."""

    provider: str
    secret_name: str
    secret_id: str
    action: Literal["rotate", "unchanged"]
    note: str = ""


@dataclass
class RotationPlan:
    """What 06 will do. Made from reads only; nothing is written until ``apply_rotation``."""

    keys: ProviderKeys
    store: Store
    alias: str
    items: tuple[PlannedRotation, ...]
    configs: tuple[ProviderConfig, ...] = field(default=(), repr=False)

    @property
    def to_rotate(self) -> list[str]:
        return [i.provider for i in self.items if i.action == "rotate"]

    def key(self, provider: str) -> Secret:
        key = self.keys.key(provider)
        if key is None:
            raise ConfigError(f"{PROVIDER_KEY_VARS[provider]} is not set",
                              hint=f"Enter it in the password field above or put it in {ENV_FILE_NAME}")
        return key

    def _repr_markdown_(self) -> str:
        head = (f"**Rotation plan** — rotate: {', '.join(self.to_rotate)}" if self.to_rotate else
                f"**Nothing to rotate** — every key in {ENV_FILE_NAME} is the stored one")
        table = markdown_table(["provider", "secret", "action", "note"],
                               [(i.provider, i.secret_name, i.action, i.note or None) for i in self.items])
        return f"{head} (store `{self.store.name}`, alias `{self.alias}`)\n\n{table}"


def _find_store(session: Session) -> Store:
    client = session.client
    gateway_id = session.settings.gateway_id
    gateway = client.find_gateway(gateway_id)
    if gateway is None:
        raise ConfigError(f"gateway {gateway_id!r} does not exist", hint="Run notebook 01 (create gateway) first")
    if not gateway.store_id:
        raise ConfigError(f"gateway {gateway_id!r} has no Secrets Store (store_id is empty)",
                          hint="Run notebook 02 (provider keys) first; 06 rotates keys 02 stored")
    return client.get_store(gateway.store_id)


def plan_rotation(session: Session, keys: ProviderKeys, alias: str = "default") -> RotationPlan:
    """Which providers' keys differ from their stored secrets (by fingerprint). Reads only.

    Every named provider must already have its secret and provider config (notebook 02);
    otherwise ``ConfigError`` says so.
    """
    client = session.client
    gateway_id = session.settings.gateway_id
    store = _find_store(session)
    configs = tuple(client.list_provider_configs(gateway_id))
    items: list[PlannedRotation] = []
    for provider in keys.providers:
        key = keys.key(provider)
        if key is None:
            raise ConfigError(f"{PROVIDER_KEY_VARS[provider]} is not set",
                              hint=f"Put the new key in {ENV_FILE_NAME} under that name, or drop {provider} "
                              "from providers")
        name = secret_name(gateway_id, provider, alias)
        secret = client.find_secret(store.id, name)
        config = next((c for c in configs if c.provider_slug == provider and c.alias == alias), None)
        if secret is None or config is None:
            missing = "secret" if secret is None else "provider config"
            raise ConfigError(f"{provider} has no stored key to rotate ({missing} for alias {alias!r} is missing)",
                              hint="Run notebook 02 (provider keys) to store it first")
        same = fingerprint_matches(secret.comment, key)
        if same is True:
            items.append(PlannedRotation(provider, name, secret.id, "unchanged"))
        else:
            # ASSUMPTION: a stored secret without our fingerprint (made by hand) may hold anything; the
            # configured key is checked and written over it, as a rotation.
            note = "" if same is False else "no fingerprint on the stored secret"
            items.append(PlannedRotation(provider, name, secret.id, "rotate", note))
    return RotationPlan(keys, store, alias, tuple(items), configs)


# --- check the new keys before writing ------------------------------------------------------------------


@dataclass(frozen=True)
class KeyChecks:
    """The new keys as the providers themselves answered them (nothing was written yet)."""

    results: tuple[ProbeResult, ...]
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def _repr_markdown_(self) -> str:
        head = "**New keys checked at the provider**" if self.passed else (
            "**A new key was refused — nothing was changed**; the stored keys keep serving")
        return f"{head}\n\n{checks_list(self.checks)}"


def _direct_prober(session: Session, plan: RotationPlan) -> GatewayProber:
    settings = session.settings
    keys = {p: plan.key(p) for p in plan.to_rotate}
    return GatewayProber(gateway_base_url=settings.gateway_base_url, account_id=settings.account_id,
                         gateway_id=settings.gateway_id, gateway_token=settings.gateway_token,
                         provider_keys=keys, provider_base_url=settings.provider_base_url,
                         run_id=session.run_id, stats=session.probe_stats)


def check_new_keys(
    session: Session, plan: RotationPlan, models: Sequence[str] | str = (), *, verify_direct: bool = True,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> KeyChecks:
    """Send each changed key straight to its provider, once: it must be accepted before it is stored.

    Accepted: a 2xx, or the provider's own error about something else than the key (a model it does
    not serve, say). Refused (401/403, Google's 400 "API key not valid") or no conclusive answer
    (no answer, 429, 5xx): the check fails, and the notebook stops before ``apply_rotation``.
    """
    chosen = parse_models(models, plan.keys.providers)
    checks: list[Check] = []
    results: list[ProbeResult] = []
    name = "new key accepted by the provider"
    with _direct_prober(session, plan) as prober:
        for item in plan.items:
            label = f"{item.provider} {name}"
            if item.action == "unchanged":
                checks.append(Check(None, label, "skip", "the configured key is the stored one: nothing to rotate"))
                continue
            if not verify_direct:
                checks.append(Check(None, label, "skip", "not checked directly (verify_direct is False): "
                                    "the request through the gateway after the switch decides"))
                continue
            result = prober.probe_direct(item.provider, chosen[item.provider], max_tokens=max_tokens)
            results.append(result)
            status: Status
            if key_rejected(result):
                status, detail = "fail", (f"the provider refused it: {_describe(result)}; nothing was changed, the "
                                          "stored key keeps serving. Fix the key and run 06 again")
            elif result.healthy:
                status, detail = "pass", f"{chosen[item.provider]}: {_describe(result)}"
            else:
                status, detail = "fail", (f"no conclusive answer: {_describe(result)}; nothing was changed. Run "
                                          "again later, or -p verify_direct False to rely on the gateway check")
            checks.append(Check(None, label, status, detail))
    return KeyChecks(tuple(results), checks)


# --- write ----------------------------------------------------------------------------------------------


def apply_rotation(session: Session, plan: RotationPlan, checked: KeyChecks) -> StoredKeys:
    """Replace the value of each changed key's secret in place (its provider config keeps pointing at it).

    Refuses (``ConfigError``) when a new key failed its check: nothing is written then.
    """
    if not checked.passed:
        failed = [c.check for c in checked.checks if c.status == "fail"]
        raise ConfigError(f"not rotating: {', '.join(failed)} failed", hint="Nothing was changed; fix the key and "
                          "run 06 again")
    outcomes: list[KeyOutcome] = []
    for item in plan.items:
        if item.action == "unchanged":
            outcomes.append(KeyOutcome(item.provider, item.secret_name, "unchanged", "unchanged"))
            continue
        outcomes.append(store_provider_key(session, plan.store, item.provider, plan.key(item.provider),
                                           alias=plan.alias, configs=plan.configs))
    return StoredKeys(tuple(outcomes))


# --- verify ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationVerification:
    results: tuple[ProbeResult, ...]
    checks: list[Check]

    def _repr_markdown_(self) -> str:
        return f"**After the rotation**\n\n{checks_list(self.checks)}"


def _stored_secret_check(provider: str, secret: StoreSecret | None, key: Secret) -> Check:
    label = f"{provider} stored secret holds the configured key"
    if secret is None:
        return Check(None, label, "fail", "the secret is gone from the store; run notebook 02")
    problems = []
    if fingerprint_matches(secret.comment, key) is not True:
        problems.append("its fingerprint is not the configured key's")
    if secret.status != "active":
        problems.append(f"status {secret.status}")
    if problems:
        return Check(None, label, "fail", "; ".join(problems))
    return Check(None, label, "pass", f"{secret.name}: fingerprint matches, status active")


def verify_rotation(
    session: Session, plan: RotationPlan, models: Sequence[str] | str = (), *, max_tokens: int = DEFAULT_MAX_TOKENS,
    pending_wait_s: float = 30.0,
) -> RotationVerification:
    """For every named provider: the stored secret holds the configured key (fingerprint) and is active,
    and a request through the gateway with no key of its own (BYOK) is answered, not refused for the key.

    A secret created by this rotation may be ``pending`` for a moment: the store is read again while one
    is, for up to ``pending_wait_s`` seconds, before the checks and the probes."""
    chosen = parse_models(models, plan.keys.providers)
    names = {item.secret_name for item in plan.items}
    listed, _ = list_secrets_once_active(session, plan.store, lambda s: s.name in names, pending_wait_s)
    secrets = {s.name: s for s in listed}
    checks: list[Check] = []
    results: list[ProbeResult] = []
    for item in plan.items:
        checks.append(_stored_secret_check(item.provider, secrets.get(item.secret_name), plan.key(item.provider)))
        result = session.prober.probe_provider(item.provider, chosen[item.provider], max_tokens=max_tokens,
                                               metadata={"aigw_step": "rotate_keys"})
        results.append(result)
        label = f"{item.provider} answers through the gateway with the stored key"
        if result.healthy and not key_rejected(result):
            checks.append(Check(None, label, "pass", f"{chosen[item.provider]}: {_describe(result)}"))
        else:
            hint = f"; {_ROLLBACK_HINT}" if item.action == "rotate" else ""
            checks.append(Check(None, label, "fail", f"{_describe(result)}{hint}"))
    return RotationVerification(tuple(results), checks)


# --- the gateway's run token ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayTokenCheck:
    checks: list[Check]

    def _repr_markdown_(self) -> str:
        return f"**Gateway token (`CF_AIG_TOKEN`)**\n\n{checks_list(self.checks)}"


def check_gateway_token(
    session: Session, rotate_gateway_token: bool, provider: str | Sequence[str] = ""
) -> GatewayTokenCheck:
    """With ``rotate_gateway_token``: ``CF_AIG_TOKEN`` (the new token) is active, the gateway accepts it,
    and the gateway still refuses a request without a token (401, code 2009). Otherwise one skip.
    ``provider``: the provider to probe through, or the notebook's providers (the first is used)."""
    label = "gateway token"
    if not rotate_gateway_token:
        return GatewayTokenCheck([Check(None, f"{label} rotation", "skip", "not requested (rotate_gateway_token "
                                        "is False)")])
    settings = session.settings
    token = settings.aig_token
    if token is None:
        return GatewayTokenCheck([Check(None, f"{label} set", "fail", f"CF_AIG_TOKEN is not set, so the gateway is "
                                        "called with CLOUDFLARE_API_TOKEN: create a token with AI Gateway Run and "
                                        f"put it in {ENV_FILE_NAME} as CF_AIG_TOKEN")])
    checks: list[Check] = []
    try:
        with CloudflareClient(base_url=settings.api_base_url, api_token=token,
                              account_id=settings.account_id) as client:
            status = client.verify_token()
        checks.append(Check(None, f"{label} active", "pass" if status.active else "fail",
                            f"Cloudflare says {status.status} ({status.scope} token)"))
    except AigwError as exc:
        checks.append(Check(None, f"{label} active", "fail", f"token verify failed: {exc}"))
    chosen = [provider] if isinstance(provider, str) else list(provider)
    slug = next((p for p in chosen if p), PROVIDERS[0])
    accepted = session.prober.probe_with_token(token, slug)
    ok = not accepted.rejected_by_gateway and accepted.outcome != "no_answer"
    checks.append(Check(None, f"{label} accepted by the gateway", "pass" if ok else "fail",
                        _describe(accepted) + ("" if ok else "; the old token still works: keep it until this "
                                                             "passes")))
    locked = session.prober.probe_without_gateway_token(slug)
    ok = locked.rejected_by_gateway
    checks.append(Check(None, "gateway still refuses requests without a token", "pass" if ok else "fail",
                        _describe(locked)))
    return GatewayTokenCheck(checks)
