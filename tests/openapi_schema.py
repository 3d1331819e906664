"""Cloudflare's official OpenAPI as the test oracle for the twin: validate requests and responses against it.

The documents are Cloudflare's own (``tests/openapi/``, copied unchanged from the team's reference folder,
``cloudflare-openapi/``; see ``tests/openapi/README.md``). They are self-contained (no ``$ref``) OpenAPI 3.0
schemas, so ``jsonschema`` (Draft 7) checks them once OpenAPI 3.0's one extra keyword, ``nullable``, is turned
into JSON Schema's ``"type": [..., "null"]``. Why not ``openapi-core``: it would add eight packages to check what
these ~30 lines and ``jsonschema`` (already installed) check, and it resolves the same schemas the same way.

``date-time`` is checked as RFC 3339 (jsonschema checks formats only with optional packages installed).

Use:

* ``SPEC.operation(method, path)`` - the operation a ``/client/v4`` path is (``None``: not in the documents).
* ``SPEC.response_violations(...)`` / ``SPEC.request_violations(...)`` - what is wrong, as lines (empty: valid).
* ``schema_hook(record)`` - an httpx response hook that fails the exchange (``SchemaViolation``) when a
  response the documents declare violates its schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema

__all__ = [
    "SPEC",
    "SPEC_FILES",
    "SUPERSEDED",
    "Exchange",
    "Operation",
    "SchemaCheckingTransport",
    "SchemaViolation",
    "Spec",
    "accepts",
    "schema_hook",
    "to_json_schema",
]

SPEC_DIR = Path(__file__).parent / "openapi"
#: The newest first: where both documents describe an operation, the newer one is the truth.
SPEC_FILES = (SPEC_DIR / "ai-gateway.2026-07-27.partial.openapi.json", SPEC_DIR / "ai-gateway.openapi.json")
API_PREFIX = "/client/v4"
_METHODS = ("get", "put", "post", "patch", "delete")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class SchemaViolation(AssertionError):
    """A twin answer (or a request a test sends) that Cloudflare's schema does not allow."""


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword judges non-strings
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return True


def to_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``nullable: true`` adds ``null``; annotations are dropped."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {k: to_json_schema(v) for k, v in schema.items()
                 if k not in ("nullable", "example", "x-auditable") and not k.startswith("x-")}
    # properties' names are data, not keywords: convert their schemas but keep every name.
    if isinstance(schema.get("properties"), dict):
        converted["properties"] = {name: to_json_schema(s) for name, s in schema["properties"].items()}
    if schema.get("nullable") is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        elif kind is None:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _violations(schema: Mapping[str, Any], instance: Any, where: str) -> list[str]:
    validator = jsonschema.Draft7Validator(to_json_schema(schema), format_checker=_FORMATS)
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        at = ".".join(str(p) for p in error.absolute_path) or "(top)"
        found.append(f"{where} at {at}: {error.message}")
    return found


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # as in the document, after /client/v4: /accounts/{account_id}/ai-gateway/...
    spec: Mapping[str, Any] = field(repr=False)
    source: str
    pattern: re.Pattern[str] = field(repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId"))

    @property
    def statuses(self) -> set[int]:
        return {int(s) for s in self.spec.get("responses", {}) if s.isdigit()}

    def path_values(self, path: str) -> dict[str, str]:
        match = self.pattern.match(path)
        return match.groupdict() if match else {}

    def parameters(self, where: str) -> list[Mapping[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]

    def response_schema(self, status: int) -> Mapping[str, Any] | None:
        answer = self.spec.get("responses", {}).get(str(status))
        if answer is None:
            return None
        content = answer.get("content", {}).get("application/json", {})
        schema = content.get("schema")
        return schema if isinstance(schema, dict) else None

    def request_schema(self) -> Mapping[str, Any] | None:
        body = self.spec.get("requestBody", {}).get("content", {}).get("application/json", {})
        schema = body.get("schema")
        return schema if isinstance(schema, dict) else None


#: Where a newer Cloudflare source supersedes a document: (operationId, status or "request") -> why, and the
#: change to that schema. Kept to the known cases so that everything else is checked as the documents say.
SUPERSEDED: dict[tuple[str, int | str], tuple[str, Callable[[dict[str, Any]], None]]] = {}


def _list_logs_without_payloads(schema: dict[str, Any]) -> None:
    items = schema["properties"]["result"]["items"]
    items["required"] = [name for name in items["required"] if name not in ("request", "response")]


SUPERSEDED[("aig-config-list-gateway-logs", 200)] = (
    "the extract's list-logs schema requires `request` and `response` (the payloads); the official SDKs "
    "generated from Cloudflare's current OpenAPI no longer have them in a list item (cloudflare 5.9.0 "
    "`types/ai_gateway/log_list_response.py`): payloads are read from `/logs/{id}/request|response`",
    _list_logs_without_payloads,
)


def _technique_optional(schema: dict[str, Any]) -> None:
    schema["required"] = [name for name in schema["required"] if name != "rate_limiting_technique"]


for _operation in ("aig-config-create-gateway", "aig-config-update-gateway"):
    SUPERSEDED[(_operation, "request")] = (
        "the extract requires `rate_limiting_technique`; the SDKs generated from Cloudflare's current OpenAPI "
        "make it optional (cloudflare 5.9.0 `ai_gateway_create_params.py` / `ai_gateway_update_params.py`: "
        "`rate_limiting_technique: Optional[...]`, not `Required`)",
        _technique_optional,
    )


def _payload_object_or_array(schema: dict[str, Any]) -> None:
    schema.clear()
    schema["type"] = ["object", "array"]


SUPERSEDED[("aig-config-get-gateway-log-request", 200)] = (
    "ASSUMPTION: the payload endpoint returns the request body as it was sent; a universal-endpoint request's "
    "body is a JSON array of steps (cloudflare-docs `ai-gateway/usage/universal.mdx`), which the schema's "
    "`type: object` leaves out",
    _payload_object_or_array,
)


def accepts(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` is valid by the OpenAPI ``schema``."""
    return not _violations(schema, value, "")


def _param_value(schema: Mapping[str, Any], raw: str) -> Any:
    """A query or path string as the parameter's declared type (left a string when it is not one)."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


class Spec:
    """The operations of the OpenAPI documents ``files`` (the first to describe an operation wins)."""

    def __init__(self, files: Iterable[Path]) -> None:
        self.operations: list[Operation] = []
        seen: set[tuple[str, str]] = set()
        for path in files:
            document = json.loads(path.read_text(encoding="utf-8"))
            for template, item in document["paths"].items():
                for method in _METHODS:
                    if method not in item:
                        continue
                    shape = re.sub(r"\{[^}]+\}", "{}", template)
                    if (method, shape) in seen:
                        continue
                    seen.add((method, shape))
                    for (operation_id, status), (_, change) in SUPERSEDED.items():
                        if item[method].get("operationId") == operation_id:
                            part = (item[method]["requestBody"] if status == "request"
                                    else item[method]["responses"][str(status)])
                            change(part["content"]["application/json"]["schema"])
                    regex = "^" + re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
                    self.operations.append(Operation(method.upper(), template, item[method], path.name,
                                                     re.compile(regex)))

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation ``method path`` is; ``path`` may carry the ``/client/v4`` prefix."""
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX):]
        return next((op for op in self.operations if op.method == method.upper() and op.pattern.match(path)),
                    None)

    def response_violations(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        """What is wrong with this answer by the documents; ``[]`` when valid or not described by them."""
        op = self.operation(method, path)
        if op is None:
            return []
        where = f"{op.operation_id} {status}"
        if status not in op.statuses:
            return [f"{where}: status {status} is not among the operation's declared {sorted(op.statuses)}"]
        schema = op.response_schema(status)
        if schema is None:
            return []
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{where}: the body is not JSON: {body[:80]!r}"]
        return _violations(schema, document, where)

    def request_violations(self, method: str, path: str, query: Sequence[tuple[str, str]] = (),
                           body: Any = None) -> list[str]:
        """What is wrong with this request by the documents (path and query parameters, JSON body)."""
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no operation of the documents"]
        where = f"{op.operation_id} request"
        found: list[str] = []
        values = op.path_values(path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path)
        for param in op.parameters("path"):
            raw = values.get(str(param["name"]), "")
            found += _violations(param.get("schema", {}), _param_value(param.get("schema", {}), raw),
                                 f"{where} path {param['name']}")
        declared = {str(p["name"]): p for p in op.parameters("query")}
        for name, raw in query:
            param = declared.get(name)
            schema = param.get("schema", {}) if param is not None else {}
            if param is None or schema.get("type") in ("array", "object"):
                continue  # undeclared, or a structured parameter whose encoding the documents leave open
            found += _violations(schema, _param_value(schema, raw), f"{where} query {name}")
        schema = op.request_schema()
        if schema is not None and body is not None:
            found += _violations(schema, body, f"{where} body")
        return found


SPEC = Spec(SPEC_FILES)


@dataclass(frozen=True)
class Exchange:
    """One request to an operation of the documents, what the twin answered, and what the schema says."""

    operation: Operation
    status: int
    request_violations: tuple[str, ...]
    response_violations: tuple[str, ...]


def schema_hook(record: list[Exchange] | None = None, spec: Spec = SPEC, *, strict: bool = True,
                declared_only: bool = False) -> Callable[[httpx.Response], None]:
    """An httpx response hook: every answer to an operation of the documents is validated against its schema
    (its status must be declared, its body must match). ``strict``: a violation raises ``SchemaViolation``
    at once. ``declared_only``: an answer of a status the operation does not declare (the 401, 403, 409, 429
    of Cloudflare's generic errors, which the documents leave out) is not checked. With ``record``, each
    such exchange is appended, with what the documents say of the request and of the response."""

    def check(response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        op = spec.operation(request.method, path)
        if op is None or (declared_only and response.status_code not in op.statuses):
            return
        response.read()
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content
        asked = spec.request_violations(request.method, path, list(request.url.params.multi_items()), body)
        wrong = spec.response_violations(request.method, path, response.status_code, response.content)
        if record is not None:
            record.append(Exchange(op, response.status_code, tuple(asked), tuple(wrong)))
        if wrong and strict:
            raise SchemaViolation(f"{request.method} {path} -> {response.status_code} violates Cloudflare's schema "
                                  f"({op.source}):\n  " + "\n  ".join(wrong))

    return check


class SchemaCheckingTransport(httpx.HTTPTransport):
    """Real HTTP, with ``schema_hook(declared_only=True)`` on every answer: for a client that takes a transport
    (the runbook's ``CloudflareClient``), so its exchanges with the twin are checked as a hook checks others."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = schema_hook(declared_only=True)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.request = request
        self._check(response)
        return response
