"""The twin's one validation module, shared by its services: identifier rules, query parameters and
request-body checks. Every refusal is Cloudflare's 400 / 7001 with the offending field's ``path``.

Rules are written down from Cloudflare's sources (never from a client's):

* Gateway id: the official OpenAPI (``ai-gateway.openapi.json``, ``components/.../id``: ``pattern
  ^[a-z0-9_]+(?:-[a-z0-9_]+)*$``, ``maxLength 64``, ``minLength 1``).
* Account id: 32 lowercase hex characters (the ``account_id`` parameter's ``maxLength: 32`` in the same
  file; every account id Cloudflare issues is hex). ASSUMPTION: the twin refuses other shapes at seeding.
* A secret value (a Secrets Store secret, or a provider config's key, which becomes one): a non-empty
  string of at most 65,536 bytes ("Manage account secrets").

Body checks are ``Check`` functions ``(value, path) -> value`` built from small combinators
(``integer(0, 5)``, ``enum("fixed", "sliding")``, ``shape(required, optional)``, ``list_of(...)``), so a
service declares a body's shape as data and every service reports a bad field the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeGuard

from starlette.requests import Request

from cftwin.envelope import validation_error

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "GATEWAY_ID_MAX",
    "GATEWAY_ID_PATTERN",
    "INT64_MAX",
    "MAX_SECRET_BYTES",
    "Check",
    "boolean",
    "choice_param",
    "enum",
    "integer",
    "is_account_id",
    "is_gateway_id",
    "is_loopback_host",
    "list_of",
    "number",
    "obj",
    "parse_bool_param",
    "parse_page_params",
    "secret_value",
    "shape",
    "string",
    "string_map",
]

GATEWAY_ID_PATTERN: Final = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
GATEWAY_ID_MAX: Final = 64
ACCOUNT_ID_PATTERN: Final = re.compile(r"^[0-9a-f]{32}$")
MAX_SECRET_BYTES: Final = 65536
INT64_MAX: Final = 2**63 - 1


def is_gateway_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 1 <= len(value) <= GATEWAY_ID_MAX and bool(GATEWAY_ID_PATTERN.fullmatch(value))


def is_account_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(ACCOUNT_ID_PATTERN.fullmatch(value))


# --- query parameters ---------------------------------------------------------------------------

_INT: Final = re.compile(r"^-?\d+$")


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT.match(raw.strip()):
        raise validation_error(f"{name} must be an integer", ["query", name])
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise validation_error(f"{name} must be {bounds}", ["query", name])
    return value


def parse_page_params(
    request: Request, default_per_page: int = 20, min_per_page: int = 1, max_per_page: int = 100
) -> tuple[int, int]:
    """``(page, per_page)`` from the query; 7001 with ``["query", name]`` when out of range."""
    page = _int_param(request, "page", 1, 1, None)
    per_page = _int_param(request, "per_page", default_per_page, min_per_page, max_per_page)
    return page, per_page


def parse_bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise validation_error(f"{name} must be true or false", ["query", name])


def choice_param(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (``default`` when absent or empty); 7001 at ``["query", name]`` otherwise."""
    raw = request.query_params.get(name) or default
    if raw not in choices:
        raise validation_error(f"{name} must be one of {', '.join(choices)}", ["query", name])
    return raw


# --- request bodies -----------------------------------------------------------------------------

Check = Callable[[Any, list[str]], Any]


def boolean(value: Any, path: list[str]) -> bool:
    if not isinstance(value, bool):
        raise validation_error(f"{path[-1]} must be a boolean", path)
    return value


def integer(lo: int | None = None, hi: int | None = None, *, nullable: bool = True) -> Check:
    def check(value: Any, path: list[str]) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise validation_error(f"{path[-1]} must be an integer", path)
        number = int(value)
        # ASSUMPTION: an integer field is a signed 64-bit one (as SQLite's INTEGER); larger is a 7001.
        if (lo is not None and number < lo) or number > (hi if hi is not None else INT64_MAX):
            bounds = f"between {lo} and {hi if hi is not None else INT64_MAX}"
            raise validation_error(f"{path[-1]} must be {bounds}", path)
        return number

    return check


def enum(*choices: str, nullable: bool = True) -> Check:
    def check(value: Any, path: list[str]) -> str | None:
        if value is None and nullable:
            return None
        if value not in choices:
            raise validation_error(f"{path[-1]} must be one of {', '.join(choices)}", path)
        return str(value)

    return check


def string(lo: int = 0, hi: int | None = None, *, nullable: bool = True) -> Check:
    def check(value: Any, path: list[str]) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or len(value) < lo or (hi is not None and len(value) > hi):
            size = f" of {lo} to {hi} characters" if hi is not None else ""
            raise validation_error(f"{path[-1]} must be a string{size}", path)
        return value

    return check


def obj(value: Any, path: list[str], required: Mapping[str, Check], optional: Mapping[str, Check]) -> Any:
    """``value`` as a JSON object with the ``required`` members and, when present, the ``optional`` ones.

    ASSUMPTION: unknown members are ignored, as Cloudflare ignores unknown fields.
    """
    if not isinstance(value, dict):
        raise validation_error(f"{path[-1]} must be a JSON object", path)
    for name, check in required.items():
        if name not in value:
            raise validation_error(f"{name} is required", [*path, name])
        check(value[name], [*path, name])
    for name, check in optional.items():
        if name in value:
            check(value[name], [*path, name])
    return value


def shape(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None, *,
          nullable: bool = False) -> Check:
    def check(value: Any, path: list[str]) -> Any:
        if value is None and nullable:
            return None
        return obj(value, path, required, optional or {})

    return check


def list_of(item: Check, *, nullable: bool = False) -> Check:
    def check(value: Any, path: list[str]) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            raise validation_error(f"{path[-1]} must be a JSON array", path)
        for index, element in enumerate(value):
            item(element, [*path, str(index)])
        return value

    return check


def number(lo: float | None = None) -> Check:
    def check(value: Any, path: list[str]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise validation_error(f"{path[-1]} must be a number", path)
        if lo is not None and value < lo:
            raise validation_error(f"{path[-1]} must be at least {lo:g}", path)
        return float(value)

    return check


def string_map(value: Any, path: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise validation_error(f"{path[-1]} must be an object of strings", path)
    return value


def secret_value(value: Any, path: list[str]) -> str:
    """A secret's value: a non-empty string of at most ``MAX_SECRET_BYTES`` (UTF-8)."""
    if not isinstance(value, str) or not value:
        raise validation_error(f"{path[-1]} must be a non-empty string", path)
    if len(value.encode("utf-8")) > MAX_SECRET_BYTES:
        raise validation_error(f"{path[-1]} must be at most {MAX_SECRET_BYTES} bytes", path)
    return value


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: where the twin serves, delivers and answers its admin API."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
