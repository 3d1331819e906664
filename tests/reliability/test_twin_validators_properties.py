"""Property tests of the twin's request validators with random and hostile input (hypothesis).

For gateway ids (path and body), gateway settings bodies (create and PUT), Secrets Store bodies
(stores, secrets, PATCH) and provider config bodies: whatever arrives, the twin answers without a 5xx;
an error is a 4xx in Cloudflare's envelope (``success: false``, ``errors: [{code: int, message: str}]``);
and a refused request stored nothing (every row of every table is the same afterwards).

What is valid comes from Cloudflare's official OpenAPI (``tests/openapi/``), not from the client or the twin:
the gateway id's pattern and length are the schema's; a body the twin accepts must be one the schema allows
(the twin is never more lenient than Cloudflare's schema), and every answer of a declared status must match
the operation's response schema.

Bodies are sent as raw bytes, so hostile JSON that a client library would never produce (``NaN``,
``1e400``, lone surrogates, deep nesting, a body that is not UTF-8) reaches the validators too.
Envelope parsing of the client and the log filters have their own properties elsewhere
(``tests/client/test_envelope_properties.py``, ``tests/twin/test_logs_properties.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openapi_schema import SPEC, accepts

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow], derandomize=True,
)
GATEWAY_ID = "props-gw"
_CREATE = SPEC.operation("POST", "/accounts/a/ai-gateway/gateways")
assert _CREATE is not None
#: The gateway id as Cloudflare's schema has it: pattern, minLength, maxLength.
ID_SCHEMA: dict[str, Any] = dict((_CREATE.request_schema() or {})["properties"]["id"])


def _schema_id(value: str) -> bool:
    return accepts(ID_SCHEMA, value)

# --- hostile values ---------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "fixed", "sliding", "STOP_INSERTING", "ai_gateway", "workers",
                     "openai", "anthropic", "google-ai-studio", "default", "-1", "1e3", "true", "null",
                     "' OR 1=1 --", "../../etc/passwd", "<script>", "\u202e", "a" * 300]),
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
#: Raw bodies no JSON library writes, but a hostile client can send.
_RAW_HOSTILE = st.sampled_from([
    b"", b" ", b"null", b"[]", b"{}", b"{", b"}", b"\xff\xfe\x00", b"NaN", b"[NaN]", b"Infinity",
    b'{"id": NaN}', b'{"cache_ttl": 1e400}', b'{"cache_ttl": -Infinity}', b'{"name": "\\ud800"}',
    b'{"id": "\\udfff"}', b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"id": "gw", "id": "gw"}', b"\x00\x00\x00\x00", "{\"name\": \"\u00e9\"}".encode("latin-1"),
])


def _with_field(base: dict[str, Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with one of its keys (or a new one) set to a hostile value, or one key dropped."""
    keys = [*base.keys(), "extra"]
    set_one = st.tuples(st.sampled_from(keys), hostile).map(lambda kv: {**base, kv[0]: kv[1]})
    drop_one = st.sampled_from(list(base)).map(lambda k: {n: v for n, v in base.items() if n != k})
    return set_one | drop_one


def _bodies(base: dict[str, Any] | list[Any]) -> st.SearchStrategy[bytes]:
    """Bodies around a valid ``base``: one field made hostile, any JSON at all, or raw hostile bytes."""
    near: st.SearchStrategy[Any]
    if isinstance(base, dict):
        near = _with_field(base, json_values)
    else:
        near = st.builds(lambda item: [item], _with_field(base[0], json_values))
    as_json = st.one_of(near, json_values).map(lambda v: json.dumps(v).encode())
    return st.one_of(as_json, as_json, _RAW_HOSTILE)


# --- the twin, its state, and what an error must look like -------------------------------------


def _state(twin: TwinHandle) -> dict[str, list[tuple[Any, ...]]]:
    db = twin.context.db
    tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    return {t: sorted((tuple(row) for row in db.query(f'SELECT * FROM "{t}"')), key=repr) for t in sorted(tables)}


def _assert_cloudflare_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"], body
    for item in body["errors"]:
        assert isinstance(item["code"], int) and not isinstance(item["code"], bool)
        assert isinstance(item["message"], str) and item["message"]
        if "path" in item:
            assert all(isinstance(p, str) for p in item["path"])


def _send(twin: TwinHandle, http: httpx.Client, method: str, path: str, body: bytes | None) -> httpx.Response:
    return http.request(method, f"/accounts/{twin.account_id}/{path}", content=body,
                        headers={**twin.api_headers, "content-type": "application/json"})


def _parsed(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def _outcome(twin: TwinHandle, http: httpx.Client, method: str, path: str, body: bytes | None) -> httpx.Response:
    """Send; a 5xx fails; a 4xx must be Cloudflare's error shape and leave every table as it was. For an
    operation of Cloudflare's OpenAPI: an accepted request must be one the schema allows, and the answer (of a
    declared status) must match the schema."""
    before = _state(twin)
    response = _send(twin, http, method, path, body)
    assert response.status_code < 500, (method, path, body[:200] if body else body, response.text[:300])
    if response.status_code >= 400:
        _assert_cloudflare_error(response)
        assert _state(twin) == before, "a refused request changed the state"
    full_path = response.request.url.path
    op = SPEC.operation(method, full_path)
    if op is not None:
        if response.status_code < 300:
            document = _parsed(body)
            assert document is not _NOT_JSON, "the twin accepted a body that is not JSON"
            wrong = SPEC.request_violations(method, full_path, (), document)
            assert not wrong, f"the twin accepted what Cloudflare's schema refuses: {wrong}"
        if response.status_code in op.statuses:
            wrong = SPEC.response_violations(method, full_path, response.status_code, response.content)
            assert not wrong, wrong
    return response


@pytest.fixture(scope="module")
def http(twin: TwinHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twin.server.api_base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ready(twin: TwinHandle, http: httpx.Client) -> dict[str, str]:
    """A gateway with a Secrets Store (so provider configs can be made), and a big API budget."""
    twin.reset(api_budget_requests=10_000_000)
    store = _send(twin, http, "POST", "secrets_store/stores", json.dumps({"name": "props_store"}).encode())
    store.raise_for_status()
    store_id = store.json()["result"]["id"]
    body = {"id": GATEWAY_ID, "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
            "rate_limiting_interval": 0, "rate_limiting_limit": 0, "store_id": store_id}
    _send(twin, http, "POST", "ai-gateway/gateways", json.dumps(body).encode()).raise_for_status()
    secret = _send(twin, http, "POST", f"secrets_store/stores/{store_id}/secrets",
                   json.dumps([{"name": "props_secret", "value": "v" * 24, "scopes": ["ai_gateway"]}]).encode())
    secret.raise_for_status()
    return {"store_id": store_id, "secret_id": secret.json()["result"][0]["id"]}


def _undo(twin: TwinHandle, http: httpx.Client, response: httpx.Response, delete_path: str | None) -> None:
    """A body that happened to be valid made something: remove it so the next example starts alike."""
    if response.status_code < 300 and delete_path is not None:
        _send(twin, http, "DELETE", delete_path, None)


_GATEWAY_BODY: dict[str, Any] = {
    "id": "props-new", "cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
    "rate_limiting_interval": 0, "rate_limiting_limit": 0,
}


# --- gateway ids --------------------------------------------------------------------------------

_bad_ids = st.one_of(
    st.text(min_size=0, max_size=80),
    st.text(alphabet="abc-_", min_size=1, max_size=10),
    st.text(alphabet="a", min_size=65, max_size=90),
    st.sampled_from(["-a", "a-", "a--b", "A", "a b", "a.b", "ä", "a/b", "a%2Fb", "", "a\x00"]),
).filter(lambda s: not _schema_id(s))


@PROPERTY_SETTINGS
@given(gateway_id=_bad_ids)
def test_a_gateway_id_off_the_pattern_is_refused_with_7001(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], gateway_id: str
) -> None:
    body = json.dumps({**_GATEWAY_BODY, "id": gateway_id}).encode()
    response = _outcome(twin, http, "POST", "ai-gateway/gateways", body)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": 7001, "path": ["body", "id"],
        "message": response.json()["errors"][0]["message"]}


@PROPERTY_SETTINGS
@given(gateway_id=_bad_ids.filter(lambda s: s and "/" not in s and s not in {".", ".."} and "%" not in s
                                  and "?" not in s and "#" not in s))
def test_a_bad_gateway_id_in_the_path_never_crashes(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], gateway_id: str
) -> None:
    from urllib.parse import quote

    for method, body in (("GET", None), ("PUT", json.dumps(_GATEWAY_BODY).encode()), ("DELETE", None)):
        response = _outcome(twin, http, method, f"ai-gateway/gateways/{quote(gateway_id, safe='')}", body)
        assert response.status_code in (400, 404)


# --- gateway settings bodies ----------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(body=_bodies(_GATEWAY_BODY))
def test_gateway_create_bodies(twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes) -> None:
    response = _outcome(twin, http, "POST", "ai-gateway/gateways", body)
    if response.status_code < 300:
        created = response.json()["result"]
        assert _schema_id(created["id"]) and created["authentication"] is True
        _undo(twin, http, response, f"ai-gateway/gateways/{created['id']}")


@PROPERTY_SETTINGS
@given(body=_bodies({k: v for k, v in _GATEWAY_BODY.items() if k != "id"}))
def test_gateway_update_bodies(twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes) -> None:
    before = _send(twin, http, "GET", f"ai-gateway/gateways/{GATEWAY_ID}", None).json()["result"]
    response = _outcome(twin, http, "PUT", f"ai-gateway/gateways/{GATEWAY_ID}", body)
    if response.status_code < 300:
        after = response.json()["result"]
        assert after["authentication"] is True  # never turned off by an update
        restore = {k: before[k] for k in (*_GATEWAY_BODY, *after) if k in before and k not in {
            "id", "created_at", "modified_at", "is_default"}}
        _send(twin, http, "PUT", f"ai-gateway/gateways/{GATEWAY_ID}", json.dumps(restore).encode()).raise_for_status()


# --- Secrets Store bodies ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(body=_bodies({"name": "another_store"}))
def test_store_create_bodies(twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes) -> None:
    # One store per account (open beta) is already used: nothing may be stored, whatever the body.
    response = _outcome(twin, http, "POST", "secrets_store/stores", body)
    assert response.status_code >= 400


@PROPERTY_SETTINGS
@given(body=_bodies([{"name": "props_new", "value": "x" * 24, "scopes": ["ai_gateway"], "comment": "c"}]))
def test_secret_create_bodies(twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes) -> None:
    path = f"secrets_store/stores/{ready['store_id']}/secrets"
    response = _outcome(twin, http, "POST", path, body)
    if response.status_code < 300:
        for item in response.json()["result"]:
            assert "value" not in item  # a value is write-only
            _undo(twin, http, response, f"{path}/{item['id']}")


@PROPERTY_SETTINGS
@given(body=_bodies({"value": "y" * 24, "comment": "c", "scopes": ["ai_gateway"]}))
def test_secret_patch_bodies(twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes) -> None:
    path = f"secrets_store/stores/{ready['store_id']}/secrets/{ready['secret_id']}"
    response = _outcome(twin, http, "PATCH", path, body)
    if response.status_code < 300:
        assert "value" not in response.json()["result"]


# --- provider config bodies -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(body=_bodies({"provider_slug": "openai", "alias": "props", "default_config": False, "secret": "z" * 30}))
def test_provider_config_create_bodies(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes
) -> None:
    path = f"ai-gateway/gateways/{GATEWAY_ID}/provider_configs"
    before = _state(twin)
    response = _outcome(twin, http, "POST", path, body)
    if response.status_code < 300:
        created = response.json()["result"]
        assert "z" * 30 not in response.text  # the key is never echoed
        _undo(twin, http, response, f"{path}/{created['id']}")
        secret = created.get("secret_id")
        if secret and secret != ready["secret_id"]:
            _send(twin, http, "DELETE", f"secrets_store/stores/{ready['store_id']}/secrets/{secret}", None)
        assert _state(twin).keys() == before.keys()


@PROPERTY_SETTINGS
@given(body=_bodies({"provider_slug": "anthropic", "alias": "props2", "default_config": False,
                     "secret_id": "0" * 32}))
def test_provider_config_by_secret_id_bodies(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes
) -> None:
    response = _outcome(twin, http, "POST", f"ai-gateway/gateways/{GATEWAY_ID}/provider_configs", body)
    if response.status_code < 300:
        _undo(twin, http, response, f"ai-gateway/gateways/{GATEWAY_ID}/provider_configs/"
                                    f"{response.json()['result']['id']}")


@PROPERTY_SETTINGS
@given(body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), _RAW_HOSTILE))
def test_provider_config_update_bodies(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], body: bytes
) -> None:
    # Hostile bodies against a config that does not exist: never a 5xx, never a stored secret.
    response = _outcome(twin, http, "PUT", f"ai-gateway/gateways/{GATEWAY_ID}/provider_configs/{'f' * 32}", body)
    assert response.status_code in (400, 404)


@PROPERTY_SETTINGS
@given(token=st.text(min_size=1, max_size=60).filter(lambda t: re.fullmatch(r"[\x21-\x7e]*", t) is not None))
def test_any_other_token_is_refused_and_changes_nothing(
    twin: TwinHandle, http: httpx.Client, ready: dict[str, str], token: str
) -> None:
    assume(token not in {twin.seed.api_token, twin.seed.aig_token})
    before = _state(twin)
    response = http.post(f"/accounts/{twin.account_id}/ai-gateway/gateways", content=json.dumps(_GATEWAY_BODY),
                         headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert response.status_code in (401, 403)
    _assert_cloudflare_error(response)
    assert _state(twin) == before
