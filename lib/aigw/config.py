"""Settings: read once from the environment and ``.dev.vars``, validated, with secrets wrapped.

A secret enters the program here, as a ``Secret``, and leaves only inside an HTTP header or the body
that stores it with Cloudflare (``Secret.reveal()``). The environment wins over ``.dev.vars``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from dotenv import dotenv_values

from aigw.errors import ConfigError

__all__ = [
    "DEFAULT_API_BASE_URL",
    "DEFAULT_API_BUDGET",
    "DEFAULT_GATEWAY_BASE_URL",
    "DEFAULT_GATEWAY_ID",
    "ENV_FILE_NAME",
    "GATEWAY_ID_PATTERN",
    "NO_ENV_FILE_VAR",
    "PROVIDERS",
    "PROVIDER_KEY_VARS",
    "VARIABLES",
    "Secret",
    "Settings",
    "find_env_file",
    "has_real_credentials",
    "load_settings",
    "masked",
    "merge_env",
    "read_env",
    "redact",
    "settings_from_env",
    "validate_account_id",
    "validate_gateway_id",
]

ENV_FILE_NAME: Final = ".dev.vars"
#: Set by ``aigw run`` on the twin without ``--env-file``: the kernel's settings are its environment alone.
NO_ENV_FILE_VAR: Final = "AIGW_NO_ENV_FILE"
DEFAULT_GATEWAY_ID: Final = "github-ai-agent"
DEFAULT_API_BASE_URL: Final = "https://api.cloudflare.com/client/v4"
DEFAULT_GATEWAY_BASE_URL: Final = "https://gateway.ai.cloudflare.com/v1"
GATEWAY_ID_PATTERN: Final = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
_ACCOUNT_ID_PATTERN: Final = re.compile(r"^[0-9a-f]{32}$")

#: Cloudflare's provider slugs, in the order the runbook treats them.
PROVIDERS: Final = ("google-ai-studio", "openai", "anthropic")
PROVIDER_KEY_VARS: Final[Mapping[str, str]] = {
    "google-ai-studio": "GOOGLE_AI_STUDIO_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
#: Every variable the project reads, in the order .dev.vars.example documents them.
VARIABLES: Final = (
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_GATEWAY_ID",
    "CLOUDFLARE_API_TOKEN",
    "CF_AIG_TOKEN",
    *PROVIDER_KEY_VARS.values(),
    "CLOUDFLARE_API_BASE_URL",
    "CLOUDFLARE_GATEWAY_BASE_URL",
    "AIGW_PROVIDER_BASE_URL",
    "AIGW_API_BUDGET",
    # Notebook 07 (Logpush export); read by aigw.logpush.
    "AIGW_LOGPUSH_BUCKET",
    "AIGW_LOGPUSH_PATH",
    "AIGW_LOGPUSH_ACCESS_KEY_ID",
    "AIGW_LOGPUSH_SECRET_ACCESS_KEY",
    "AIGW_LOGPUSH_ENDPOINT",
    "AIGW_LOGPUSH_REGION",
    "AIGW_LOGPUSH_PRIVATE_KEY_FILE",
)
#: Cloudflare's API budget per token: 1,200 requests per 300 s.
DEFAULT_API_BUDGET: Final = (1200, 300.0)
#: Values that only say "fill me in": a variable holding one counts as unset.
_PLACEHOLDER: Final = re.compile(r"^\s*(<.*>|your[-_].*|changeme|xxx+|\.\.\.)\s*$", re.IGNORECASE)


class Secret:
    """A credential. ``repr``/``str``/``format`` never show it; only ``reveal()`` does.

    **Parameters:**
    * value - the secret text.
    * name - what it is, e.g. ``"CLOUDFLARE_API_TOKEN"``; shown instead of the value.
    """

    __slots__ = ("_name", "_value")

    def __init__(self, value: str, name: str = "secret") -> None:
        self._value = value
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def reveal(self) -> str:
        """The value. Call it only where it goes into a request header or body."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._name}=***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value to disk or a pipe: refuse rather than leak.
        raise TypeError("a Secret cannot be pickled")


def redact(text: str, secrets: Iterable[Secret | str]) -> str:
    """``text`` with every secret value in it replaced by ``***``."""
    values = sorted(
        {s.reveal() if isinstance(s, Secret) else s for s in secrets}, key=len, reverse=True
    )
    for value in values:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def masked(value: str) -> str:
    """How an error shows a value that could be a secret (a token pasted into the wrong variable):
    its first two characters (fewer when it is short) and its length, never more."""
    keep = min(2, len(value) // 4)
    return f"'{value[:keep]}…' ({len(value)} characters)"


@dataclass(frozen=True)
class Settings:
    """Everything the runbook needs to know about its target, validated."""

    account_id: str
    gateway_id: str = DEFAULT_GATEWAY_ID
    api_token: Secret | None = None
    aig_token: Secret | None = None
    provider_keys: Mapping[str, Secret] = field(default_factory=dict)
    api_base_url: str = DEFAULT_API_BASE_URL
    gateway_base_url: str = DEFAULT_GATEWAY_BASE_URL
    #: Where each provider is reached directly (for overhead measurements); None: the real providers.
    provider_base_url: str | None = None
    #: The client's request budget for the token: (requests, seconds). A twin told to enforce a
    #: scaled budget announces it here; against Cloudflare it stays at Cloudflare's.
    api_budget: tuple[int, float] = DEFAULT_API_BUDGET
    env_file: Path | None = None

    @property
    def gateway_token(self) -> Secret | None:
        """The ``cf-aig-authorization`` token: ``CF_AIG_TOKEN``, else the API token (as the contract does)."""
        return self.aig_token or self.api_token

    def require_api_token(self) -> Secret:
        if self.api_token is None:
            raise ConfigError(
                "CLOUDFLARE_API_TOKEN is not set",
                hint=f"Put it in {ENV_FILE_NAME} (see .dev.vars.example) or export it",
            )
        return self.api_token

    def gateway_token_warning(self) -> str | None:
        """One line when ``CF_AIG_TOKEN`` is unset and the gateway would get the API token instead.

        AI Gateway's Run is a permission group apart from Read and Write, and the data plane's
        ``cf-aig-authorization`` needs it; ``.dev.vars.example`` asks the API token for Read, Write and
        Secrets Store Write only. Cloudflare's token verify does not show a token's permissions, so whether
        the API token holds Run is not known here: None when ``CF_AIG_TOKEN`` is set (or no token is).
        """
        if self.aig_token is not None or self.api_token is None:
            return None
        return (
            "CF_AIG_TOKEN is not set, so the gateway gets CLOUDFLARE_API_TOKEN, which needs AI Gateway Run as well "
            "(.dev.vars.example asks it for Read, Write and Secrets Store Write only); without Run every probe "
            "answers 401 / code 2009: put a token with AI Gateway Run in CF_AIG_TOKEN"
        )

    def require_gateway_token(self) -> Secret:
        token = self.gateway_token
        if token is None:
            raise ConfigError(
                "Neither CF_AIG_TOKEN nor CLOUDFLARE_API_TOKEN is set",
                hint=f"Put the gateway's run token in {ENV_FILE_NAME} as CF_AIG_TOKEN",
            )
        return token

    def provider_key(self, provider: str) -> Secret | None:
        return self.provider_keys.get(provider)

    def secrets(self) -> Iterator[Secret]:
        """Every configured secret value, for redaction and leak scans."""
        for token in (self.api_token, self.aig_token):
            if token is not None:
                yield token
        yield from self.provider_keys.values()

    @property
    def is_loopback(self) -> bool:
        """True when the API is served from this machine (a twin), not from Cloudflare."""
        host = urlsplit(self.api_base_url).hostname or ""
        return host in {"localhost", "::1"} or host.startswith("127.")


def validate_account_id(value: str) -> str:
    value = value.strip()
    if not _ACCOUNT_ID_PATTERN.fullmatch(value):
        raise ConfigError(
            f"CLOUDFLARE_ACCOUNT_ID {masked(value)} is not an account id (32 lowercase hex characters)",
            hint="Copy it from the dashboard: Account Home > the account's menu > Copy account ID",
        )
    return value


def validate_gateway_id(value: str, *, name: str = "CLOUDFLARE_GATEWAY_ID") -> str:
    if not 1 <= len(value) <= 64 or not GATEWAY_ID_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{name} {masked(value)} is not a valid gateway id",
            hint="Use 1-64 characters: lowercase letters, digits and '_', joined by single '-' "
            "(pattern ^[a-z0-9_]+(?:-[a-z0-9_]+)*$)",
        )
    return value


def _validate_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{name} {masked(value)} is not an http(s) URL", hint="Fix it in .dev.vars")
    return value.rstrip("/")


def _parse_budget(value: str | None) -> tuple[int, float]:
    if value is None:
        return DEFAULT_API_BUDGET
    requests, _, seconds = value.partition("/")
    try:
        budget = (int(requests), float(seconds))
    except ValueError:
        budget = (0, 0.0)
    if budget[0] < 1 or budget[1] <= 0:
        raise ConfigError(
            f"AIGW_API_BUDGET {masked(value)} is not a budget", hint="Write it as REQUESTS/SECONDS, e.g. 1200/300"
        )
    return budget


def find_env_file(start: Path | None = None) -> Path | None:
    """The nearest ``.dev.vars`` in ``start`` or a folder above it (a notebook runs in notebooks/)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ENV_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def read_env(env_file: Path | None = None, *, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged variables: ``env_file`` first, then the environment over it. Placeholders are dropped."""
    merged: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigError(f"env file {str(env_file)!r} does not exist", hint="Check the --env-file path")
        for key, value in dotenv_values(env_file).items():
            if value is not None:
                merged[key] = value
    return merge_env(merged, os.environ if environ is None else environ)


def merge_env(file_values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` over ``file_values``, placeholders and blanks dropped: what ``read_env`` gives, for
    values already read (a run's plan reads its file once)."""
    merged = {**file_values, **environ}
    return {k: v.strip() for k, v in merged.items() if v.strip() and not _PLACEHOLDER.match(v)}


def _check_key(name: str, value: str) -> str:
    """A provider key is one printable token: a space, a quote or a control character inside means a
    bad paste (two values, a line break, a comment), which Cloudflare would store and the provider refuse."""
    bad = next((c for c in value if c.isspace() or not c.isprintable() or c in "\"'"), None)
    if bad is not None:
        what = "a quote" if bad in "\"'" else ("a space or line break" if bad.isspace() else "a control character")
        raise ConfigError(
            f"{name} is malformed: it holds {what} ({len(value)} characters; the value is not shown)",
            hint=f"Paste the key alone on one line in {ENV_FILE_NAME}, e.g. {name}=<the key>",
        )
    return value


def load_settings(
    env_file: Path | str | None = None,
    *,
    search_from: Path | None = None,
    environ: Mapping[str, str] | None = None,
    search: bool = True,
) -> Settings:
    """Settings from the environment and ``.dev.vars`` (found from ``search_from`` upwards; with
    ``search=False`` and no ``env_file``, from the environment alone)."""
    path = Path(env_file) if env_file is not None else (find_env_file(search_from) if search else None)
    return settings_from_env(read_env(path, environ=environ), env_file=path)


def settings_from_env(env: Mapping[str, str], *, env_file: Path | None = None) -> Settings:
    """Settings from variables already merged (``read_env`` / ``merge_env``); ``env_file`` is where they
    were read from, for the messages and ``Settings.env_file``."""
    path = env_file
    account = env.get("CLOUDFLARE_ACCOUNT_ID")
    if not account:
        where = str(path) if path else f"no {ENV_FILE_NAME} found"
        raise ConfigError(
            f"CLOUDFLARE_ACCOUNT_ID is not set ({where})",
            hint="Copy .dev.vars.example to .dev.vars and fill it in, or run `aigw run` to rehearse on the twin",
        )
    keys = {
        slug: Secret(_check_key(var, env[var]), var) for slug, var in PROVIDER_KEY_VARS.items() if env.get(var)
    }
    provider_base = env.get("AIGW_PROVIDER_BASE_URL")
    return Settings(
        account_id=validate_account_id(account),
        gateway_id=validate_gateway_id(env.get("CLOUDFLARE_GATEWAY_ID", DEFAULT_GATEWAY_ID)),
        api_token=Secret(env["CLOUDFLARE_API_TOKEN"], "CLOUDFLARE_API_TOKEN")
        if env.get("CLOUDFLARE_API_TOKEN")
        else None,
        aig_token=Secret(env["CF_AIG_TOKEN"], "CF_AIG_TOKEN") if env.get("CF_AIG_TOKEN") else None,
        provider_keys=keys,
        api_base_url=_validate_url(
            "CLOUDFLARE_API_BASE_URL", env.get("CLOUDFLARE_API_BASE_URL", DEFAULT_API_BASE_URL)
        ),
        gateway_base_url=_validate_url(
            "CLOUDFLARE_GATEWAY_BASE_URL", env.get("CLOUDFLARE_GATEWAY_BASE_URL", DEFAULT_GATEWAY_BASE_URL)
        ),
        provider_base_url=_validate_url("AIGW_PROVIDER_BASE_URL", provider_base) if provider_base else None,
        api_budget=_parse_budget(env.get("AIGW_API_BUDGET")),
        env_file=path,
    )


def has_real_credentials(env: Mapping[str, str]) -> bool:
    """True when ``env`` (merged, placeholders dropped) can reach the real Cloudflare API (the plan's and a
    session's default target)."""
    account = env.get("CLOUDFLARE_ACCOUNT_ID", "")
    if not account or not env.get("CLOUDFLARE_API_TOKEN"):
        return False
    try:
        validate_account_id(account)
    except ConfigError:
        return False
    probe = Settings(account_id=account, api_base_url=env.get("CLOUDFLARE_API_BASE_URL", DEFAULT_API_BASE_URL))
    return not probe.is_loopback
