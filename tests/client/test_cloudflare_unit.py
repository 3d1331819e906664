"""Unit tests of aigw.cloudflare on httpx.MockTransport: envelopes, error mapping, retries, budget, recovery.

Each test drives one function of the client against a hand-written handler; a fake clock and sleep make
backoff and deadlines exact without waiting. The end-to-end path is in test_cloudflare_twin.py.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aigw.cloudflare import (
    CloudflareClient,
    Gateway,
    LogColumns,
    RequestBudget,
    RetryPolicy,
    append_columns,
    encode_filters,
    parse_envelope,
)
from aigw.cloudflare.budget import RateLimitHeaders, parse_rate_limit
from aigw.config import Secret
from aigw.errors import (
    AigwError,
    AuthenticationError,
    CloudflareError,
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)

ACCOUNT = "0123456789abcdef0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that moves only when the code sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def envelope(result: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def failure(status: int, code: int | None, message: str, **item: Any) -> httpx.Response:
    error: dict[str, Any] = {"message": message, **item}
    if code is not None:
        error["code"] = code
    return httpx.Response(status, json={"success": False, "errors": [error], "messages": [], "result": None})


def make_client(
    handler: Handler,
    *,
    token: Secret | None = None,
    attempts: int = 4,
    deadline: float = 60.0,
    budget: RequestBudget | None = None,
    fake: FakeTime | None = None,
) -> CloudflareClient:
    fake = fake or FakeTime()
    client = CloudflareClient(
        base_url="https://api.example.test/client/v4",
        api_token=token or Secret(secrets.token_urlsafe(24), "CLOUDFLARE_API_TOKEN"),
        account_id=ACCOUNT,
        deadline=deadline,
        budget=budget or RequestBudget(1000, 1.0),
        retry=RetryPolicy(attempts=attempts, base_s=0.5, max_s=4.0),
        transport=httpx.MockTransport(handler),
        seed=7,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    return client


GATEWAY = {
    "id": "gw-1",
    "cache_invalidate_on_update": False,
    "cache_ttl": 0,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
    "authentication": True,
    "created_at": "2026-01-01T00:00:00Z",
    "modified_at": "2026-01-01T00:00:00Z",
    "store_id": None,
}


# --- envelope parsing -------------------------------------------------------------------------------------


def test_full_envelope_unwraps_result_and_result_info() -> None:
    body = envelope([{"id": "a"}], result_info={"page": 1, "per_page": 20, "count": 1, "total_count": 1})
    env = parse_envelope(200, json.dumps(body).encode())
    assert env.result == [{"id": "a"}]
    assert env.result_info == {"page": 1, "per_page": 20, "count": 1, "total_count": 1}


def test_slim_ai_gateway_envelope_and_bare_success() -> None:
    assert parse_envelope(200, b'{"success": true, "result": {"id": "gw"}}').result == {"id": "gw"}
    env = parse_envelope(200, b'{"success": true}')
    assert env.result is None and env.result_info is None


def test_bare_body_only_where_allowed() -> None:
    assert parse_envelope(200, b'{"messages": [1]}', bare_ok=True).result == {"messages": [1]}
    with pytest.raises(CloudflareError, match="without Cloudflare's envelope"):
        parse_envelope(200, b'{"messages": [1]}')


def fail_body(code: int | None, message: str, **item: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, **item}
    if code is not None:
        error["code"] = code
    return {"success": False, "errors": [error]}


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (401, fail_body(10000, "Authentication error"), AuthenticationError, 10000),
        (400, fail_body(6003, "Invalid request headers"), AuthenticationError, 6003),
        (403, fail_body(9106, "Missing X-Auth-Key"), AuthenticationError, 9106),
        (403, fail_body(10000, "Authentication error"), PermissionDeniedError, 10000),
        (404, fail_body(7002, "Not Found"), NotFoundError, 7002),
        (409, fail_body(None, "in use"), ConflictError, None),
        # Cloudflare's recorded codes: a duplicate gateway is 7001 "already exists"; Secrets Store says 1003
        # secret_name_already_exists / maximum_stores_exceeded and 1001 store_not_found / secret_not_found;
        # an account id that names no account 7003 (with 7000).
        (400, fail_body(7001, "A gateway with id 'gw' already exists", path=["body", "id"]), ConflictError, 7001),
        (400, fail_body(1003, "secret_name_already_exists"), ConflictError, 1003),
        (400, fail_body(1003, "maximum_stores_exceeded"), QuotaExceededError, 1003),
        (404, fail_body(1001, "store_not_found"), NotFoundError, 1001),
        (400, fail_body(1001, "secret_not_found: no such secret"), NotFoundError, 1001),
        (400, fail_body(1001, "secret_scope_invalid"), ValidationError, 1001),
        (400, fail_body(7003, "Could not route to /client/v4/accounts/x/ai-gateway/gateways, perhaps your object "
                              "identifier is invalid?"), NotFoundError, 7003),
        (400, fail_body(7001, "Input Validation Error", path=["body", "cache_ttl"]), ValidationError, 7001),
        (400, fail_body(7001, "Maximum number of gateways (10) reached for this account"), QuotaExceededError, 7001),
        (400, {**fail_body(None, "Maximum number of gateways reached"), "result": {}}, QuotaExceededError, None),
        (429, {"code": 10100, "message": "More than 1200 requests per 300 seconds reached."}, RateLimitedError, 10100),
        (503, fail_body(10001, "Internal"), ServerError, 10001),
        (418, fail_body(1234, "teapot"), CloudflareError, 1234),
    ],
)
def test_error_mapping(status: int, body: dict[str, Any], expected: type[CloudflareError], code: int | None) -> None:
    with pytest.raises(expected) as caught:
        parse_envelope(status, json.dumps(body).encode(), method="GET", path="/x")
    err = caught.value
    assert type(err) is expected
    assert err.status == status
    text = str(err)
    assert "\n" not in text and f"HTTP {status}" in text and "GET /x" in text
    if code is not None:
        assert err.codes == (code,) and f"code {code}" in text


def test_a_full_store_is_a_quota_error_with_the_fix() -> None:
    with pytest.raises(QuotaExceededError) as caught:
        parse_envelope(400, json.dumps(fail_body(1003, "maximum_stores_exceeded")).encode(), method="POST", path="/s")
    assert "one store per account" in str(caught.value) and "code 1003" in str(caught.value)


def test_validation_error_names_the_field_path() -> None:
    body = {"success": False, "errors": [{"code": 7001, "message": "Input Validation Error", "path": ["body", "id"]}]}
    with pytest.raises(ValidationError) as caught:
        parse_envelope(400, json.dumps(body).encode(), method="POST", path="/gw")
    assert caught.value.errors[0].path == ("body", "id")
    assert "at body.id" in str(caught.value)


def test_html_502_from_a_proxy_gives_one_clear_line() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad</h1>\n</body></html>"
    with pytest.raises(ServerError) as caught:
        parse_envelope(502, html, content_type="text/html; charset=utf-8", method="GET", path="/gw")
    text = str(caught.value)
    assert "502 Bad Gateway" in text and "text/html" in text and "\n" not in text


def test_success_false_with_200_is_an_error() -> None:
    body = {"success": False, "errors": [{"code": 7001, "message": "bad"}]}
    with pytest.raises(ValidationError):
        parse_envelope(200, json.dumps(body).encode())


def test_error_text_is_redacted() -> None:
    planted = secrets.token_urlsafe(20)
    body = fail_body(7001, f"value {planted} is bad", path=["body", planted])
    with pytest.raises(ValidationError) as caught:
        parse_envelope(400, json.dumps(body).encode(), secrets=[Secret(planted)])
    assert planted not in str(caught.value)
    assert planted not in repr(caught.value.errors)


# --- retries, Retry-After, deadline --------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_that_long() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "3"}, json=fail_body(10100, "slow"))
        return httpx.Response(200, json=envelope(GATEWAY))

    fake = FakeTime()
    client = make_client(handler, fake=fake)
    gateway = client.get_gateway("gw-1")
    assert gateway.id == "gw-1" and len(calls) == 2
    assert fake.sleeps and fake.sleeps[0] >= 3.0
    snap = client.stats.snapshot()
    assert snap["requests"] == 2 and snap["retries"] == 1 and snap["retries_by_reason"] == {"429": 1}


def test_5xx_gives_up_after_the_attempts_with_a_server_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return failure(503, 10001, "Internal error")

    client = make_client(handler, attempts=3)
    with pytest.raises(ServerError, match="gave up after 3 attempts"):
        client.list_gateways()
    assert client.stats.snapshot()["retries_by_reason"] == {"5xx": 2}


def test_backoff_grows_exponentially_with_jitter() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return failure(500, None, "boom")

    fake = FakeTime()
    client = make_client(handler, attempts=5, fake=fake)
    with pytest.raises(ServerError):
        client.get_gateway("gw")
    assert len(fake.sleeps) == 4
    for n, delay in enumerate(fake.sleeps, start=1):
        ceiling = min(4.0, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_deadline_stops_retrying_server_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return failure(502, None, "bad gateway")

    fake = FakeTime()
    client = make_client(handler, attempts=100, deadline=10.0, fake=fake)
    with pytest.raises(ServerError, match="no time left in the 10 s deadline"):
        client.get_gateway("gw")
    assert sum(fake.sleeps) < 10.0


def test_deadline_on_timeouts_is_a_deadline_exceeded_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = make_client(handler, attempts=100, deadline=5.0)
    with pytest.raises(DeadlineExceededError) as caught:
        client.get_gateway("gw")
    assert isinstance(caught.value, TransportError)
    assert "ReadTimeout" in str(caught.value)


def test_connection_refused_after_attempts_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make_client(handler, attempts=2)
    with pytest.raises(TransportError, match="gave up after 2 attempts") as caught:
        client.list_stores()
    assert not isinstance(caught.value, DeadlineExceededError)
    assert client.stats.snapshot()["retries_by_reason"] == {"connection": 1}


def test_client_errors_are_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return failure(404, 7002, "Not Found")

    client = make_client(handler)
    assert client.find_gateway("nope") is None
    assert len(calls) == 1


# --- check before retry ------------------------------------------------------------------------------------


class GatewayServer:
    """A fake gateways API that can lose the answer to a POST after acting on it."""

    def __init__(self, post_outcomes: list[str]) -> None:
        self.gateways: dict[str, dict[str, Any]] = {}
        self.post_outcomes = post_outcomes
        self.calls: list[tuple[str, str]] = []
        self.stale_gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        path = request.url.path
        if request.method == "POST":
            outcome = self.post_outcomes.pop(0) if self.post_outcomes else "ok"
            if outcome == "refused":
                raise httpx.ConnectError("refused", request=request)
            if outcome == "502-before":
                return failure(502, None, "bad gateway")
            body = json.loads(request.content)
            if body["id"] in self.gateways:
                # As Cloudflare answers a duplicate gateway (GatewayAlreadyExists: code 7001).
                return failure(400, 7001, f"A gateway with id '{body['id']}' already exists", path=["body", "id"])
            self.gateways[body["id"]] = {**GATEWAY, **body}
            if outcome == "timeout-after":
                raise httpx.ReadTimeout("lost", request=request)
            if outcome == "drop-after":
                raise httpx.RemoteProtocolError("dropped", request=request)
            if outcome == "502-after":
                return failure(502, None, "bad gateway")
            return httpx.Response(200, json=envelope(self.gateways[body["id"]]))
        gateway_id = path.rsplit("/", 1)[-1]
        if request.method == "GET" and self.stale_gets > 0:
            self.stale_gets -= 1  # a read that does not see the write yet
            return failure(404, 7002, "Not Found")
        if request.method == "GET" and gateway_id in self.gateways:
            return httpx.Response(200, json=envelope(self.gateways[gateway_id]))
        return failure(404, 7002, "Not Found")

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)


@pytest.mark.parametrize("lost", ["timeout-after", "drop-after", "502-after"])
def test_create_whose_answer_was_lost_is_found_not_repeated(lost: str) -> None:
    server = GatewayServer([lost])
    client = make_client(server)
    gateway = client.create_gateway("gw-new", {"collect_logs": True})
    assert gateway.id == "gw-new"
    assert server.count("POST") == 1 and server.count("GET") == 1
    assert client.stats.snapshot()["recoveries_by_outcome"] == {"took_effect": 1}


def test_lost_create_then_already_exists_is_checked_and_adopted() -> None:
    # The check after the lost answer reads a stale "not found", so the create is repeated and Cloudflare
    # answers 7001 "already exists": the client checks again and adopts what its first request made.
    server = GatewayServer(["timeout-after"])
    server.stale_gets = 1
    client = make_client(server)
    gateway = client.create_gateway("gw-new", {"collect_logs": True})
    assert gateway.id == "gw-new"
    assert server.count("POST") == 2 and server.count("GET") == 2
    assert client.stats.snapshot()["recoveries_by_outcome"] == {"absent": 1, "took_effect": 1}


def test_create_that_did_not_happen_is_checked_then_repeated() -> None:
    server = GatewayServer(["502-before"])
    client = make_client(server)
    assert client.create_gateway("gw-new").id == "gw-new"
    assert server.count("POST") == 2 and server.count("GET") == 1
    assert client.stats.snapshot()["recoveries_by_outcome"] == {"absent": 1}


def test_create_that_was_never_sent_is_repeated_without_a_check() -> None:
    server = GatewayServer(["refused"])
    client = make_client(server)
    assert client.create_gateway("gw-new").id == "gw-new"
    assert server.count("POST") == 2 and server.count("GET") == 0


def test_create_of_an_existing_gateway_is_a_conflict() -> None:
    server = GatewayServer([])
    server.gateways["gw-1"] = dict(GATEWAY)
    client = make_client(server)
    with pytest.raises(ConflictError, match="code 7001: A gateway with id 'gw-1' already exists"):
        client.create_gateway("gw-1")


def test_create_sends_required_defaults_and_caller_settings() -> None:
    server = GatewayServer([])
    client = make_client(server)
    gw = client.create_gateway("gw-2", {"cache_ttl": 300, "rate_limiting_limit": 50})
    assert (gw.cache_ttl, gw.rate_limiting_limit, gw.collect_logs, gw.authentication) == (300, 50, True, True)


def test_create_secret_recovers_by_listing_for_its_name() -> None:
    posted: list[Any] = []
    value = Secret(secrets.token_urlsafe(24), "OPENAI_API_KEY")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(json.loads(request.content))
            raise httpx.ReadTimeout("lost", request=request)
        query = parse_qs(urlsplit(str(request.url)).query)
        assert query["search"] == ["gw_openai_default"]
        item = {"id": "s1", "name": "gw_openai_default", "store_id": "st", "scopes": ["ai_gateway"]}
        return httpx.Response(200, json=envelope([item] if query["page"] == ["1"] else []))

    client = make_client(handler)
    secret = client.create_secret("st", "gw_openai_default", value)
    assert secret.id == "s1" and secret.scopes == ("ai_gateway",)
    assert len(posted) == 1 and posted[0] == [
        {"name": "gw_openai_default", "scopes": ["ai_gateway"], "value": value.reveal()}
    ]


def test_create_provider_config_recovers_by_slug_and_alias() -> None:
    state: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = json.loads(request.content)
            state.append({"id": "pc1", "gateway_id": "gw", **body, "secret_preview": "ab**"})
            return failure(500, None, "oops")
        page = parse_qs(urlsplit(str(request.url)).query)["page"][0]
        return httpx.Response(200, json=envelope(state if page == "1" else []))

    client = make_client(handler)
    config = client.create_provider_config("gw", "anthropic", "default", secret_id="sec-1")
    assert (config.id, config.provider_slug, config.alias, config.secret_id) == ("pc1", "anthropic", "default", "sec-1")
    assert len(state) == 1


def test_delete_retried_after_a_lost_answer_counts_404_as_done() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("lost", request=request)
        return failure(404, 7002, "Not Found")

    client = make_client(handler)
    client.delete_gateway("gw")
    assert len(calls) == 2
    with pytest.raises(NotFoundError):
        make_client(lambda r: failure(404, 7002, "Not Found")).delete_gateway("gw")


# --- budget -------------------------------------------------------------------------------------------------


def test_budget_waits_for_the_oldest_slot_to_leave_the_window() -> None:
    fake = FakeTime()
    budget = RequestBudget(3, 10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        budget.release(budget.acquire())
    fake.now += 4.0
    budget.acquire()
    assert fake.sleeps == [pytest.approx(6.0)]
    assert budget.in_window() == 1 + 0  # the first three left the window


def test_budget_raises_when_waiting_would_pass_the_deadline() -> None:
    fake = FakeTime()
    budget = RequestBudget(2, 30.0, clock=fake.clock, sleep=fake.sleep)
    budget.acquire()
    budget.acquire()
    with pytest.raises(DeadlineExceededError, match="budget"):
        budget.acquire(deadline_at=fake.now + 5.0)
    assert fake.sleeps == []


def test_budget_release_counts_the_slot_from_the_answer() -> None:
    fake = FakeTime()
    budget = RequestBudget(1, 10.0, clock=fake.clock, sleep=fake.sleep)
    slot = budget.acquire()
    fake.now += 2.0  # the answer took 2 s
    budget.release(slot)
    budget.acquire()
    assert fake.sleeps == [pytest.approx(10.0)]


def test_budget_adapts_to_rate_limit_headers() -> None:
    fake = FakeTime()
    budget = RequestBudget(100, 10.0, clock=fake.clock, sleep=fake.sleep)
    budget.observe(limit=5, remaining=1)  # another tool spent 4 of the token's 5
    budget.acquire()
    assert fake.sleeps == []
    budget.acquire()
    assert fake.sleeps == [pytest.approx(10.0)]


def test_rate_limit_headers_are_read_in_the_ietf_form_and_the_old_one() -> None:
    ietf = parse_rate_limit(httpx.Headers({"Ratelimit": '"default";r=50;t=30',
                                           "Ratelimit-Policy": '"default";q=1200;w=300'}))
    assert ietf == RateLimitHeaders(limit=1200, remaining=50, reset_s=30.0, window_s=300.0)
    several = parse_rate_limit(httpx.Headers({"Ratelimit": '"burst";r=5;t=1, "default";r=7;t=9'}))
    assert (several.remaining, several.reset_s, several.limit) == (7, 9.0, None)
    old = parse_rate_limit(httpx.Headers({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3"}))
    assert (old.limit, old.remaining, old.reset_s) == (10, 3, None)
    assert parse_rate_limit(httpx.Headers({"Ratelimit": "garbage;r=x"})).remaining is None


def test_budget_forgets_requests_of_others_when_the_servers_window_ends() -> None:
    fake = FakeTime()
    budget = RequestBudget(10, 300.0, clock=fake.clock, sleep=fake.sleep)
    budget.observe(limit=10, remaining=0, reset_s=20.0)  # spent elsewhere; the server's window ends in 20 s
    budget.acquire()
    assert fake.sleeps == [pytest.approx(20.0)]  # not a whole 300 s window


def test_client_follows_the_ratelimit_headers() -> None:
    fake = FakeTime()
    budget = RequestBudget(100, 300.0, clock=fake.clock, sleep=fake.sleep)
    headers = {"Ratelimit": '"default";r=0;t=42', "Ratelimit-Policy": '"default";q=4;w=300'}
    client = make_client(lambda r: httpx.Response(200, json=envelope(GATEWAY), headers=headers),
                         budget=budget, fake=fake)
    client.get_gateway("gw-1")
    assert budget.capacity == 4
    client.get_gateway("gw-1")  # the server has no room left: wait for its window's end, then send
    assert fake.sleeps == [pytest.approx(42.0)]


def test_a_spent_budget_is_waited_out_past_the_operation_deadline_with_progress(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json=fail_body(10100, "More than 1200 requests per 300 seconds reached."),
                                  headers={"Retry-After": "287", "Ratelimit": '"default";r=0;t=287'})
        return httpx.Response(200, json=envelope(GATEWAY))

    fake = FakeTime()
    client = make_client(handler, deadline=60.0, fake=fake)
    with caplog.at_level(logging.WARNING, logger="aigw.cloudflare"):
        assert client.get_gateway("gw-1").id == "gw-1"
    assert sum(fake.sleeps) == pytest.approx(287.0)
    assert len(calls) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("Cloudflare's API budget is spent (429 on GET ") and "waiting 287 s" in lines[0]
    assert any("s left" in line for line in lines[1:])


def test_a_spent_budget_is_not_waited_past_the_runs_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=fail_body(10100, "More than 1200 requests per 300 seconds reached."),
                              headers={"Retry-After": "300"})

    fake = FakeTime()
    client = make_client(handler, fake=fake)
    client.run_deadline_at = fake.now + 100.0
    with pytest.raises(RateLimitedError, match=r"blocked for 300 s more, past the run's deadline"):
        client.get_gateway("gw-1")
    assert fake.sleeps == []


def test_client_under_a_budget_waits_instead_of_sending() -> None:
    fake = FakeTime()
    budget = RequestBudget(2, 5.0, clock=fake.clock, sleep=fake.sleep)
    client = make_client(lambda r: httpx.Response(200, json=envelope(GATEWAY)), budget=budget, fake=fake)
    for _ in range(5):
        client.get_gateway("gw-1")
    assert fake.sleeps and sum(fake.sleeps) >= 10.0 - 1e-6
    assert client.stats.snapshot()["budget_waits"] >= 1


def test_shared_budget_is_per_token() -> None:
    a = Secret(secrets.token_urlsafe(16))
    b = Secret(secrets.token_urlsafe(16))
    assert RequestBudget.shared(a) is RequestBudget.shared(Secret(a.reveal()))
    assert RequestBudget.shared(a) is not RequestBudget.shared(b)


# --- operations -----------------------------------------------------------------------------------------------


def test_pagination_follows_pages_until_an_empty_one() -> None:
    pages: list[str] = []
    items = [dict(GATEWAY, id=f"gw-{i}") for i in range(120)]

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        pages.append(query["page"][0])
        chunk = items[(page - 1) * per_page : page * per_page]
        # total_count deliberately wrong: the SDKs ignore it, and so does the client.
        return httpx.Response(200, json=envelope(chunk, result_info={"page": page, "total_count": 3}))

    gateways = make_client(handler).list_gateways()
    assert [g.id for g in gateways] == [f"gw-{i}" for i in range(120)]
    assert pages == ["1", "2", "3", "4"]


def test_update_gateway_puts_current_settings_merged_with_changes() -> None:
    current = dict(GATEWAY, rate_limiting_technique="fixed", log_management=20000)
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            body = json.loads(request.content)
            sent.append(body)
            return httpx.Response(200, json=envelope({**current, **body}))
        return httpx.Response(200, json=envelope(current))

    gw = make_client(handler).update_gateway("gw-1", {"cache_ttl": 600, "id": "ignored"})
    assert gw.cache_ttl == 600 and gw.log_management == 20000
    body = sent[0]
    assert body["cache_ttl"] == 600 and body["rate_limiting_technique"] == "fixed" and body["log_management"] == 20000
    assert not {"id", "created_at", "modified_at"} & set(body)


def test_verify_token_falls_back_to_the_account_endpoint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/user/tokens/verify"):
            return failure(401, 1000, "Invalid API Token")
        return httpx.Response(200, json=envelope({"id": "t1", "status": "active"}))

    status = make_client(handler).verify_token()
    assert status.active and status.scope == "account"


def test_verify_token_reports_the_user_endpoint_error_when_both_fail() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/user/tokens/verify"):
            return failure(401, 1000, "Invalid API Token")
        return failure(404, 7003, "No route for the URI")

    with pytest.raises(AuthenticationError, match="user/tokens/verify"):
        make_client(handler).verify_token()


def test_verify_token_says_when_the_account_does_not_exist() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/user/tokens/verify"):
            return failure(401, 1000, "Invalid API Token")
        return failure(400, 7003, "Could not route to /client/v4/accounts/x/tokens/verify, perhaps your object "
                                  "identifier is invalid?")

    with pytest.raises(NotFoundError, match=f"account {ACCOUNT} does not exist: .* Check CLOUDFLARE_ACCOUNT_ID"):
        make_client(handler).verify_token()


def test_filters_encodings() -> None:
    filters = [
        {"key": "provider", "operator": "eq", "value": ["openai"]},
        {"key": "success", "operator": "eq", "value": [False]},
    ]
    (name, value), = encode_filters(filters, "json")
    assert name == "filters" and json.loads(value) == filters
    assert encode_filters(filters, "dots") == [
        ("filters.key", "provider"), ("filters.operator", "eq"), ("filters.value", "openai"),
        ("filters.key", "success"), ("filters.operator", "eq"), ("filters.value", "false"),
    ]
    with pytest.raises(ValidationError):
        encode_filters([{"key": "model"}])


def test_append_columns_keeps_columns_aligned() -> None:
    columns = LogColumns(("id", "model"))
    append_columns(columns, [{"id": "a", "model": "m"}, {"id": "b", "extra": 1}])
    append_columns(columns, [{"id": "c", "cost": 0.5}])
    assert columns.rows == 3
    assert columns["id"] == ["a", "b", "c"]
    assert columns["model"] == ["m", None, None]
    assert columns["extra"] == [None, 1, None]
    assert columns["cost"] == [None, None, 0.5]
    with pytest.raises(CloudflareError):
        append_columns(columns, ["not a log"])


def logs_handler(logs: list[dict[str, Any]], seen_queries: list[dict[str, list[str]]]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        seen_queries.append(query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        chunk = logs[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(logs)}
        return httpx.Response(200, json=envelope(chunk, result_info=info))

    return handler


@pytest.mark.parametrize("concurrency", [1, 4])
def test_fetch_logs_reads_every_page_into_columns(concurrency: int) -> None:
    logs = [
        {"id": f"{i:04d}", "created_at": f"2026-01-01T00:00:{i % 60:02d}Z", "model": "m", "duration": i}
        for i in range(237)
    ]
    queries: list[dict[str, list[str]]] = []
    progress: list[tuple[int, int | None]] = []
    client = make_client(logs_handler(logs, queries))
    columns = client.fetch_logs("gw", since="2026-01-01T00:00:00Z", per_page=50, concurrency=concurrency,
                                progress=lambda n, t: progress.append((n, t)))
    assert columns.rows == 237 and columns["id"] == [log["id"] for log in logs]
    assert columns["duration"] == list(range(237)) and columns["tokens_in"] == [None] * 237
    assert len({len(v) for v in columns.values()}) == 1
    assert sorted(int(q["page"][0]) for q in queries) == [1, 2, 3, 4, 5, 6]  # 5 pages + the empty one
    filters = json.loads(queries[0]["filters"][0])
    assert filters == [{"key": "created_at", "operator": "gt", "value": ["2026-01-01T00:00:00Z"]}]
    assert queries[0]["order_by"] == ["created_at"] and queries[0]["order_by_direction"] == ["asc"]
    assert progress[-1] == (237, 237)


def test_fetch_logs_keeps_reading_past_a_stale_total_and_skips_duplicates() -> None:
    logs = [{"id": f"{i:04d}"} for i in range(120)]

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        start = (page - 1) * per_page - (1 if page > 1 else 0)  # pages overlap by one log
        chunk = logs[max(start, 0) : page * per_page]
        return httpx.Response(200, json=envelope(chunk, result_info={"total_count": 60}))

    columns = make_client(handler).fetch_logs("gw", per_page=50)
    assert columns["id"] == [log["id"] for log in logs]


def test_fetch_logs_without_total_reads_until_empty() -> None:
    logs = [{"id": f"{i:04d}"} for i in range(130)]

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        return httpx.Response(200, json={"success": True, "result": logs[(page - 1) * per_page : page * per_page]})

    columns = make_client(handler).fetch_logs("gw", per_page=50, concurrency=3)
    assert columns.rows == 130 and columns.total_count is None


def test_fetch_logs_page_failure_is_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = parse_qs(urlsplit(str(request.url)).query)["page"][0]
        if page == "3":
            return failure(400, 7001, "Input Validation Error", path=["query", "page"])
        return httpx.Response(200, json=envelope([{"id": page + str(i)} for i in range(50)],
                                                result_info={"total_count": 200}))

    with pytest.raises(ValidationError, match=r"query\.page"):
        make_client(handler).fetch_logs("gw", per_page=50, concurrency=4)


def test_list_logs_parses_a_page() -> None:
    logs = [{"id": "01J", "metadata": '{"aigw_run_id": "r1"}', "success": True, "duration": 12, "cost": 0.001}]
    page = make_client(logs_handler(logs, [])).list_logs("gw", per_page=5)
    assert page.total_count == 1 and page.logs[0].metadata == {"aigw_run_id": "r1"}
    assert page.logs[0].duration == 12 and page.logs[0].success is True


def test_gateway_settings_exclude_read_only_fields() -> None:
    gw = Gateway.from_api(dict(GATEWAY, is_default=False, dlp={"enabled": False}))
    assert "id" not in gw.settings() and "is_default" not in gw.settings()
    assert gw.settings()["dlp"] == {"enabled": False}


# --- secrets never leak ----------------------------------------------------------------------------------------


def test_secrets_appear_in_no_repr_log_or_error(caplog: pytest.LogCaptureFixture) -> None:
    token = Secret(secrets.token_urlsafe(32), "CLOUDFLARE_API_TOKEN")
    key = Secret(secrets.token_urlsafe(32), "OPENAI_API_KEY")
    planted = {token.reveal(), key.reveal()}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {token.reveal()}"
        if request.method == "POST":
            # A server that echoes what it got: the client must still not repeat it.
            return failure(400, 7001, f"bad secret {request.content.decode()} {request.headers['authorization']}")
        raise httpx.ConnectError(f"refused {request.headers['authorization']}", request=request)

    caplog.set_level(logging.DEBUG)
    client = make_client(handler, token=token, attempts=2)
    errors: list[AigwError] = []
    with pytest.raises(ValidationError) as caught:
        client.create_secret("st", "name", key)
    errors.append(caught.value)
    with pytest.raises(TransportError) as caught2:
        client.get_store("st")
    errors.append(caught2.value)
    texts = [repr(client), str(client), repr(client.budget), repr(client.stats), repr(client._transport.http.auth)]
    texts += [str(e) for e in errors] + [repr(e.errors if isinstance(e, CloudflareError) else e) for e in errors]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(e.__cause__) for e in errors if e.__cause__ is not None]
    assert caplog.records  # the client did log its requests
    for text in texts:
        for value in planted:
            assert value not in text
