"""Notebook 02: store the provider keys with Cloudflare (BYOK), and prove criterion 2.

``collect_keys`` -> ``ensure_store`` -> ``store_provider_keys`` -> ``verify_provider_keys``.

Each key becomes the Secrets Store secret ``{gateway_id}_{provider_slug}_{alias}`` (scope
``ai_gateway``), referenced by the gateway's provider config for ``(provider_slug, alias)``.

**How a changed key is noticed** (values are write-only: Cloudflare never returns them): the
secret's ``comment`` holds a salted fingerprint, ``aigw-fp:v1:<salt>:<HMAC-SHA256(salt, key)[:32]>``
(a random per-secret salt; 128 bits of an HMAC over a high-entropy key reveal nothing usable). A
re-run recomputes it with the stored salt: same key -> "unchanged", nothing written; different key ->
the secret's value is replaced in place (PATCH), reported as a rotation; the provider config keeps
pointing at the same secret id.

Names, fingerprints, the store and storing one key are ``aigw.steps.byok_secrets``' (notebook 06 uses them
too); this module re-exports them, since notebook 02 calls them here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aigw.cloudflare import ProviderConfig, Store
from aigw.config import ENV_FILE_NAME, PROVIDER_KEY_VARS, PROVIDERS, Secret, redact
from aigw.errors import ConfigError
from aigw.evidence import Check
from aigw.provider_check import check_provider_key
from aigw.session import Session
from aigw.steps import checks_list, markdown_table
from aigw.steps.byok_secrets import (
    BYOK_SCOPE,
    DEFAULT_STORE_NAME,
    KeyOutcome,
    StoreChoice,
    StoredKeys,
    ensure_store,
    fingerprint,
    fingerprint_matches,
    list_secrets_once_active,
    secret_name,
    store_provider_key,
)

# byok_secrets' names stay listed here: notebook 02 and its tests call them as provider_keys.*.
__all__ = [
    "DEFAULT_STORE_NAME",
    "KeyOutcome",
    "KeyVerification",
    "ProviderKeys",
    "StoreChoice",
    "StoredKeys",
    "collect_keys",
    "ensure_store",
    "fingerprint",
    "fingerprint_matches",
    "list_secrets_once_active",
    "secret_name",
    "store_provider_key",
    "store_provider_keys",
    "verify_provider_keys",
]


# --- keys -------------------------------------------------------------------------------------------


@dataclass
class ProviderKeys:
    """The keys to store, by provider, and what happened to the ones that are missing.

    In JupyterLab a missing key gets a password field with a *Store* button, drawn under the table that
    points at it: *Store* takes the key (the field is emptied at once, so the value never stays in the
    widget's state), stores it with Cloudflare, asks the provider whether it accepts it, and says so in
    the message under the field."""

    providers: tuple[str, ...]
    required: tuple[str, ...]
    keys: dict[str, Secret] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)
    widgets: dict[str, Any] = field(default_factory=dict, repr=False)
    messages: dict[str, Any] = field(default_factory=dict, repr=False)
    rows: dict[str, Any] = field(default_factory=dict, repr=False)

    def key(self, provider: str) -> Secret | None:
        """The key: configured, or typed into this notebook's password field (and stored with *Store*)."""
        if provider in self.keys:
            return self.keys[provider]
        widget = self.widgets.get(provider)
        value = str(getattr(widget, "value", "") or "").strip()
        return Secret(value, PROVIDER_KEY_VARS[provider]) if value else None

    def _state(self, provider: str) -> str:
        if provider in self.keys:
            return "entered in the field below and stored" if provider in self.widgets else "configured"
        if provider in self.widgets:
            return "not set: enter it in the password field below and press Store"
        return f"skipped: {self.skipped.get(provider, '')}"

    def _repr_markdown_(self) -> str:
        rows = [(provider, PROVIDER_KEY_VARS[provider], self._state(provider)) for provider in self.providers]
        return "**Provider keys** (values never shown)\n\n" + markdown_table(["provider", "variable", "key"], rows)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown(self._repr_markdown_()))  # type: ignore[no-untyped-call]
        for provider in self.providers:
            if provider in self.rows:
                display(self.rows[provider])  # type: ignore[no-untyped-call]


def _key_field(session: Session, keys: ProviderKeys, provider: str, *, alias: str, store_name: str) -> None:
    """A password field and a *Store* button for ``provider``'s missing key, and the message under them."""
    import ipywidgets

    variable = PROVIDER_KEY_VARS[provider]
    field_ = ipywidgets.Password(description=provider, placeholder=f"{variable} (not shown, not saved)")
    button = ipywidgets.Button(description="Store", button_style="primary", icon="lock")
    message = ipywidgets.HTML(f"{variable} is not set: type the key and press <b>Store</b>.")
    output = ipywidgets.Output()  # what a failed store raises lands here, under its field

    def stored(_: Any) -> None:
        value = str(field_.value or "").strip()
        field_.value = ""  # never left in the widget's state (saved notebooks keep widget state)
        if not value:
            message.value = f"Type the {provider} key first, then press <b>Store</b>."
            return
        key = Secret(value, variable)
        from aigw import evidence

        evidence.use_secrets([key])  # redacted from every check recorded from now on
        button.disabled = True
        message.value = f"Storing the {provider} key and asking {provider} whether it accepts it…"
        try:
            with output:
                choice = ensure_store(session, store_name)
                outcome = store_provider_key(session, choice.store, provider, key, alias=alias)
                answer = check_provider_key(session.settings, provider, key)
        except Exception as exc:  # shown under the field; the key stays unstored, Store may be pressed again
            message.value = f"❌ Not stored: {_html(redact(str(exc), [key]))}"
            return
        finally:
            button.disabled = False
        keys.keys[provider] = key
        session.sources[variable] = "widget"
        if answer.accepted:
            message.value = (f"✅ Stored as secret <code>{outcome.secret_name}</code> ({outcome.secret}); "
                             f"{_html(answer.detail)}. Run the cells from <i>Store the keys</i> down to record "
                             "criterion 2.")
        else:
            message.value = f"❌ Stored, but {_html(answer.detail)}."

    button.on_click(stored)
    keys.widgets[provider] = field_
    keys.messages[provider] = message
    keys.rows[provider] = ipywidgets.VBox([ipywidgets.HBox([field_, button]), message, output])


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def _check_providers(providers: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(providers, str):  # `-p providers openai,anthropic` arrives as one string
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    unknown = [p for p in providers if p not in PROVIDER_KEY_VARS]
    if unknown:
        raise ConfigError(f"{what}: unknown provider(s) {', '.join(unknown)}", hint=f"Use {', '.join(PROVIDERS)}")
    return tuple(providers)


def collect_keys(
    session: Session, providers: Sequence[str] | str = PROVIDERS, required_providers: Sequence[str] | str | None = None,
    *, alias: str = "default", store_name: str = "",
) -> ProviderKeys:
    """The keys from the environment / ``.dev.vars``. A missing one is asked for with a password field and
    a *Store* button (storing into ``store_name`` under ``alias``) when a person is at the notebook;
    otherwise it is an error for a required provider and a skip for another (``required_providers`` None:
    all of ``providers``)."""
    chosen = _check_providers(providers, "providers")
    required = _check_providers(required_providers if required_providers is not None else chosen,
                                "required_providers")
    result = ProviderKeys(chosen, required)
    for provider in chosen:
        key = session.settings.provider_key(provider)
        if key is not None:
            result.keys[provider] = key
            continue
        variable = PROVIDER_KEY_VARS[provider]
        if session.interactive:
            _key_field(session, result, provider, alias=alias, store_name=store_name)
        elif provider in required:
            raise ConfigError(f"{variable} is not set", hint=f"Put it in {ENV_FILE_NAME} or the environment "
                              f"(or drop {provider} from required_providers)")
        else:
            result.skipped[provider] = f"{variable} is not set and {provider} is not required"
    return result



def store_provider_keys(session: Session, store: StoreChoice | Store, keys: ProviderKeys, *,
                        alias: str = "default") -> StoredKeys:
    """``store_provider_key`` for every provider with a key; the others are skipped (or, if required
    and still missing after the password field, an error)."""
    target = store.store if isinstance(store, StoreChoice) else store
    configs = session.client.list_provider_configs(session.settings.gateway_id)
    outcomes: list[KeyOutcome] = []
    for provider in keys.providers:
        key = keys.key(provider)
        name = secret_name(session.settings.gateway_id, provider, alias)
        if key is None:
            if provider in keys.required:
                raise ConfigError(f"{PROVIDER_KEY_VARS[provider]} is not set",
                                  hint=f"Enter it in the password field above and press Store, or put it in "
                                  f"{ENV_FILE_NAME}")
            outcomes.append(KeyOutcome(provider, name, "skipped", "skipped", keys.skipped.get(provider, "no key")))
            continue
        outcomes.append(store_provider_key(session, target, provider, key, alias=alias, configs=configs))
    return StoredKeys(tuple(outcomes))


# --- verify -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyVerification:
    rows: tuple[tuple[str, str, str, str, str], ...]
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        table = markdown_table(["provider", "alias", "secret", "status", "preview"], self.rows)
        return f"**Verification (criterion 2)**\n\n{table}\n\n{checks_list(self.checks)}"


def _contains_value(config: ProviderConfig, key: Secret) -> bool:
    return key.reveal() in json.dumps(dict(config.raw), default=str)


def verify_provider_keys(session: Session, keys: ProviderKeys, store: StoreChoice | Store, *,
                         alias: str = "default", pending_wait_s: float = 30.0) -> KeyVerification:
    """Criterion 2: for each provider a provider config of ``alias`` with a ``secret_preview`` and never
    the value, backed by an ``ai_gateway``-scoped secret whose status is active, and a key the provider
    accepts (its free model list, ``aigw.provider_check``); all three present.

    A new secret may be ``pending`` for a moment before ``active`` (Cloudflare's status enum, TS
    ``secrets-store/stores/secrets.ts``): while one of the configs' secrets is, the store is read again,
    for up to ``pending_wait_s`` seconds; one still pending then fails, naming the wait.
    """
    client = session.client
    target = store.store if isinstance(store, StoreChoice) else store
    gateway_id = session.settings.gateway_id
    configs = client.list_provider_configs(gateway_id)
    wanted_ids = {c.secret_id for c in configs if c.alias == alias and c.provider_slug in keys.providers}
    configured = {c.provider_slug for c in configs if c.alias == alias}
    asking = [(p, k) for p in keys.providers if p in configured and (k := keys.key(p)) is not None]
    # The providers are asked before the store is read: a new secret is pending for a moment (about a second
    # on the twin), so their answers take part of that wait, and whether a provider accepts its key does not
    # depend on Cloudflare's copy. One after the other, in order: a seeded fault drill draws the same faults.
    answers = {p: check_provider_key(session.settings, p, k) for p, k in asking}
    listed, reads = list_secrets_once_active(session, target, lambda s: s.id in wanted_ids, pending_wait_s)
    secrets_by_id = {s.id: s for s in listed}
    checks: list[Check] = []
    rows: list[tuple[str, str, str, str, str]] = []
    active = 0
    for provider in keys.providers:
        config = next((c for c in configs if c.provider_slug == provider and c.alias == alias), None)
        key = keys.key(provider)
        if config is None:
            status: Literal["pass", "fail", "skip"] = "fail" if provider in keys.required else "skip"
            checks.append(Check(2, f"{provider} key stored", status, f"no provider config for alias {alias!r}"))
            rows.append((provider, alias, "—", "missing", "—"))
            continue
        stored = secrets_by_id.get(config.secret_id or "")
        problems = []
        if not config.secret_preview:
            problems.append("no secret_preview")
        if key is not None and _contains_value(config, key):
            problems.append("the API returned the key's value")
        if stored is None:
            problems.append("its secret is not in the store")
        else:
            if stored.status == "pending":
                problems.append(f"secret status still pending after {pending_wait_s:g} s ({reads} reads): "
                                "run this step again in a minute")
            elif stored.status != "active":
                problems.append(f"secret status {stored.status}")
            if BYOK_SCOPE not in stored.scopes:
                problems.append(f"secret scopes {list(stored.scopes)} lack {BYOK_SCOPE}")
            if stored.name != secret_name(gateway_id, provider, alias):
                problems.append(f"secret named {stored.name}, not {secret_name(gateway_id, provider, alias)}")
        if not problems:
            # Stored and active with Cloudflare is not enough: the provider must accept the key.
            if key is None:
                problems.append(f"the key is not in this session to ask {provider} about it; put it in "
                                f"{ENV_FILE_NAME} or enter it above, and run this check again")
            else:
                answer = answers[provider]
                if not answer.accepted:
                    problems.append(answer.detail)
        ok = not problems
        active += ok
        # The preview is Cloudflare's own few characters; shown masked further, as at most 4 of them.
        preview = (config.secret_preview or "")[:4] + "…" if config.secret_preview else "—"
        checks.append(Check(2, f"{provider} key stored and active", "pass" if ok else "fail",
                            "; ".join(problems) if problems else
                            f"config {config.id}, secret {stored.name if stored else '?'} active"
                            f"{f' (after {reads} reads of the store)' if reads > 1 else ''}, preview present, "
                            f"accepted by {provider}"))
        rows.append((provider, alias, stored.name if stored else "—", stored.status or "?" if stored else "—", preview))
    wanted = len(PROVIDERS)
    checks.append(Check(2, f"{wanted} provider keys stored and active", "pass" if active >= wanted else "fail",
                        f"{active} of {wanted} ({', '.join(PROVIDERS)})"))
    return KeyVerification(tuple(rows), checks)

