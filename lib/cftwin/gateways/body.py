"""What a gateway's create and update (PUT) bodies may hold, checked in the order Cloudflare's edge does:
every field's type and range (400 / 7001 at its ``path``), then the rules across fields. The checks are
``cftwin.validation``'s combinators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cftwin.context import TwinContext
from cftwin.envelope import CloudflareAPIError, validation_error
from cftwin.secrets_store import models as secrets
from cftwin.validation import (
    Check,
    boolean,
    enum,
    integer,
    is_gateway_id,
    list_of,
    number,
    obj,
    shape,
    string,
    string_map,
)

__all__ = ["UPDATE_ONLY_FIELDS", "validate_gateway", "validate_gateway_id"]


# --- nested gateway settings ----------------------------------------------------------------------
# Shapes from the SDKs' AIGatewayCreateParams / AIGatewayUpdateParams (generated from the spec) and
# the Terraform schema: a wrong type, a missing required member or an unknown enum value is a 7001 at
# the member's path, as for top-level fields. ASSUMPTION: unknown members inside these objects are
# ignored, as unknown top-level fields are.


_TEXT: Final = string(nullable=False)
_FLAG_OR_BLOCK: Final = enum("FLAG", "BLOCK", nullable=False)
_GUARDRAIL_CATEGORIES: Final[Mapping[str, Check]] = {
    name: _FLAG_OR_BLOCK for name in ("P1", *(f"S{i}" for i in range(1, 14)))
}
_DLP_POLICY: Final = shape({
    "id": _TEXT,
    "action": _FLAG_OR_BLOCK,
    "check": list_of(enum("REQUEST", "RESPONSE", nullable=False)),
    "enabled": boolean,
    "profiles": list_of(_TEXT),
})
_FILTER: Final = shape({"mode": enum("filter", nullable=False), "values": list_of(_TEXT)})


def _metadata_rule(value: Any, path: list[str]) -> Any:
    if isinstance(value, dict) and value.get("mode") == "partition":
        return obj(value, path, {"mode": enum("partition", nullable=False)}, {})
    return _FILTER(value, path)


def _dlp(value: Any, path: list[str]) -> Any:
    # Two shapes: one action for a list of profiles, or a list of policies.
    if isinstance(value, dict) and "policies" in value:
        return obj(value, path, {"enabled": boolean, "policies": list_of(_DLP_POLICY)}, {})
    return obj(value, path, {"action": _FLAG_OR_BLOCK, "enabled": boolean, "profiles": list_of(_TEXT)}, {})


def _metadata_rules(value: Any, path: list[str]) -> Any:
    if not isinstance(value, dict):
        raise validation_error(f"{path[-1]} must be a JSON object", path)
    for key, rule in value.items():
        _metadata_rule(rule, [*path, str(key)])
    return value


_SPEND_RULE: Final = shape(
    {"limit": number(0), "limitType": enum("cost", nullable=False), "window": integer(0, nullable=False)},
    {
        "id": _TEXT,
        "enabled": boolean,
        "metadata": _metadata_rules,
        "model": _FILTER,
        "provider": _FILTER,
        "technique": enum("fixed", "sliding", nullable=False),
    },
)
_GUARDRAILS: Final = shape(
    {"prompt": shape({}, _GUARDRAIL_CATEGORIES), "response": shape({}, _GUARDRAIL_CATEGORIES)}, nullable=True
)
_OTEL: Final = list_of(
    shape({"url": _TEXT, "headers": string_map},
           {"authorization": _TEXT, "content_type": enum("json", "protobuf", nullable=False)}),
    nullable=True,
)
_SPEND_LIMITS: Final = shape({}, {"enabled": boolean, "rules": list_of(_SPEND_RULE)}, nullable=True)
_STRIPE: Final = shape(
    {"authorization": _TEXT, "usage_events": list_of(shape({"payload": _TEXT}))}, nullable=True
)


#: Required in create and update bodies (present, though some may be null).
_REQUIRED: Final[Mapping[str, Check]] = {
    "cache_invalidate_on_update": boolean,
    "cache_ttl": integer(0),
    "collect_logs": boolean,
    "rate_limiting_interval": integer(0),
    "rate_limiting_limit": integer(0),
}
_OPTIONAL: Final[Mapping[str, Check]] = {
    "authentication": boolean,
    "byok_only": boolean,
    "log_classification": boolean,
    "log_management": integer(10000, 10000000),
    "log_management_strategy": enum("STOP_INSERTING", "DELETE_OLDEST"),
    "logpush": boolean,
    "logpush_public_key": string(16, 1024),
    "rate_limiting_technique": enum("fixed", "sliding"),
    "retry_backoff": enum("constant", "linear", "exponential"),
    "retry_delay": integer(0, 5000),
    "retry_max_attempts": integer(1, 5),
    "store_id": string(1, 32),
    "workers_ai_billing_mode": enum("postpaid", "unified", nullable=False),
    "zdr": boolean,
    "dlp": _dlp,
    "guardrails": _GUARDRAILS,
    "otel": _OTEL,
    "spend_limits": _SPEND_LIMITS,
    "stripe": _STRIPE,
}
#: Fields only an update takes: the SDKs' AIGatewayCreateParams lack them, AIGatewayUpdateParams has them
#: (cloudflare-typescript ``resources/ai-gateway/ai-gateway.ts``). ASSUMPTION: create refuses them
#: (400 / 7001 at the field's path) rather than dropping them, so that a client learns of it.
UPDATE_ONLY_FIELDS: Final = frozenset(
    {"dlp", "guardrails", "otel", "spend_limits", "stripe", "log_classification", "byok_only"}
)
#: What a new gateway holds for optional fields the body leaves out.
# ASSUMPTION: defaults not documented by Cloudflare are null/false; rate_limiting_technique "fixed".
_DEFAULTS: Final[Mapping[str, Any]] = {
    "rate_limiting_technique": "fixed",
    "authentication": True,
    "log_management": None,
    "log_management_strategy": None,
    "logpush": False,
    "logpush_public_key": None,
    "retry_backoff": None,
    "retry_delay": None,
    "retry_max_attempts": None,
    "store_id": None,
    "workers_ai_billing_mode": "postpaid",
    "zdr": False,
}


def validate_gateway_id(value: Any, path: list[str]) -> str:
    if not is_gateway_id(value):
        raise validation_error(
            "id must be 1-64 characters of a-z, 0-9 and '_', joined by single '-'", path
        )
    return value


def _authentication_locked() -> CloudflareAPIError:
    # Cloudflare changelog 2026-11-03 "required-authentication": new gateways are authenticated and
    # authentication cannot be turned off. ASSUMPTION: the 400 carries code 7001 with the field path.
    return validation_error(
        "authentication is required for AI Gateways and cannot be turned off", ["body", "authentication"]
    )


def validate_gateway(
    context: TwinContext, account_id: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """The stored form of a create (``existing`` None) or PUT body; raises 7001."""
    gateway: dict[str, Any] = {}
    for name, check in _REQUIRED.items():
        if name not in body:
            raise validation_error(f"{name} is required", ["body", name])
        gateway[name] = check(body[name], ["body", name])
    for name, check in _OPTIONAL.items():
        if name not in body:
            continue
        if existing is None and name in UPDATE_ONLY_FIELDS:
            raise validation_error(f"{name} is set by an update (PUT), not on create", ["body", name])
        gateway[name] = check(body[name], ["body", name])
    # ASSUMPTION: unknown fields and read-only ones (created_at, modified_at, is_default) are ignored.
    if existing is None:
        merged = {**_DEFAULTS, **gateway}
    else:
        # ASSUMPTION: PUT replaces the required set; optional fields left out keep their values.
        merged = {k: v for k, v in existing.items() if k not in {"id", "created_at", "modified_at"}}
        merged.update(gateway)
    if merged.get("authentication") is False and (existing is None or existing.get("authentication", True)):
        raise _authentication_locked()
    store_id = merged.get("store_id")
    if "store_id" in gateway and store_id is not None and secrets.get_store(context.db, account_id, store_id) is None:
        raise validation_error(f"store_id {store_id!r} is not a Secrets Store of this account", ["body", "store_id"])
    return merged
