"""Time on the twin (``cftwin.timing``): a log reaches the logs API after ``log_delay_s``, a cached response
is readable after ``cache_write_delay_s``, a new secret is ``pending`` for ``secret_pending_s``.

Driven over real HTTP. "Not yet" is checked with a delay far longer than the test (30 s), "then" by polling
with a bound on a short delay: nothing here asserts how long anything took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from cftwin.cli import build_parser, delay_options
from cftwin.context import TwinOptions
from cftwin.dataplane import cache
from cftwin.db import Database
from cftwin.errors import TwinConfigError
from cftwin.timing import NO_DELAYS, REALISTIC_DELAYS, with_secret_status
from test_dataplane_gateway import Gateways, _aig, _chat

LONG_S = 30.0  # longer than any of these tests runs: what it delays is not there yet
SHORT_S = 0.3
T = TypeVar("T")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


@pytest.fixture
def gw(twin: Any, client: httpx.Client) -> Iterator[Gateways]:
    twin.reset()
    yield Gateways(twin, client)
    twin.reset()


def _eventually(probe: Callable[[], T | None], bound_s: float = 15.0) -> T:
    """``probe()`` until it returns something; a failure if it never does within ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while True:
        found = probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, "never appeared"
        time.sleep(0.05)


def _logs(twin: Any, gw: Gateways, gateway_id: str) -> list[dict[str, Any]]:
    answer = gw.client.get(f"{gw.api}/ai-gateway/gateways/{gateway_id}/logs", headers=twin.api_headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["result"])


def test_the_defaults_are_realistic_and_the_fixture_has_none() -> None:
    options = TwinOptions()
    assert {name: getattr(options, name) for name in REALISTIC_DELAYS} == dict(REALISTIC_DELAYS)
    assert all(seconds > 0 for seconds in REALISTIC_DELAYS.values())
    assert set(NO_DELAYS) == set(REALISTIC_DELAYS) and not any(NO_DELAYS.values())


def test_a_log_reaches_the_logs_api_only_after_the_delay(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(log_delay_s=LONG_S)
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    answer = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert answer.status_code == 200, answer.text
    log_id = answer.headers["cf-aig-log-id"]  # the id is known at once; the entry is not
    assert _logs(twin, gw, gateway_id) == []
    missing = client.get(f"{gw.api}/ai-gateway/gateways/{gateway_id}/logs/{log_id}", headers=twin.api_headers)
    assert missing.status_code == 404


def test_a_delayed_log_appears_with_the_time_of_its_request(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(log_delay_s=SHORT_S)
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    answer = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    answered_at = datetime.now(UTC)
    log_id = answer.headers["cf-aig-log-id"]
    entries = _eventually(lambda: _logs(twin, gw, gateway_id) or None)
    assert [e["id"] for e in entries] == [log_id]
    log = gw.log(gateway_id, log_id)
    assert log["model"] == "gpt-4o-mini" and log["success"] is True
    # Stamped with the request's time, not the (later) time it was stored: a run's time window finds it.
    assert datetime.fromisoformat(log["created_at"].replace("Z", "+00:00")) <= answered_at


def test_a_repeat_before_the_cache_write_lands_misses(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(cache_write_delay_s=LONG_S)
    gateway_id = gw.gateway(cache_ttl=300)
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    statuses = [client.post(url, json=_chat(), headers=_aig(twin)).headers["cf-aig-cache-status"]
                for _ in range(3)]
    assert statuses == ["MISS", "MISS", "MISS"]


def test_once_the_cache_write_lands_the_repeat_hits(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(cache_write_delay_s=SHORT_S)
    gateway_id = gw.gateway(cache_ttl=300)
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    url = gw.base(gateway_id) + "/openai/chat/completions"
    first = client.post(url, json=_chat(), headers=_aig(twin))
    assert first.headers["cf-aig-cache-status"] == "MISS"

    def hit() -> httpx.Response | None:
        answer = client.post(url, json=_chat(), headers=_aig(twin))
        return answer if answer.headers["cf-aig-cache-status"] == "HIT" else None

    # A repeat that misses does not restart the write in flight (ASSUMPTION), so the HIT comes.
    assert _eventually(hit).json() == first.json()



def test_a_cache_entry_is_readable_from_its_readable_time_on() -> None:
    db = Database()
    try:
        entry = cache.CachedResponse(200, "application/json", b"{}", "openai", "gpt-4o-mini", 1, 1)
        cache.cache_put(db, "k", "a", "g", entry, ttl_s=60, readable_after_s=5)
        now = time.time()
        assert cache.cache_get(db, "k", now=now) is None
        assert cache.cache_get(db, "k", now=now + 6) == entry
        # A second write while the first is in flight keeps the first's readable time.
        cache.cache_put(db, "k", "a", "g", entry, ttl_s=60, readable_after_s=50)
        assert cache.cache_get(db, "k", now=now + 6) == entry
        assert cache.cache_get(db, "k", now=now + 61) is None  # expired
    finally:
        db.close()


def _secret(twin: Any, gw: Gateways, client: httpx.Client, name: str) -> tuple[str, dict[str, Any]]:
    store = gw.store()
    created = client.post(f"{gw.api}/secrets_store/stores/{store}/secrets", headers=twin.api_headers,
                          json=[{"name": name, "value": "v-" + name, "scopes": ["ai_gateway"]}])
    assert created.status_code == 200, created.text
    return store, created.json()["result"][0]


def test_a_new_secret_is_pending_everywhere_it_is_read(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(secret_pending_s=LONG_S)
    store, secret = _secret(twin, gw, client, "new_one")
    assert secret["status"] == "pending"
    base = f"{gw.api}/secrets_store/stores/{store}/secrets"
    assert client.get(f"{base}/{secret['id']}", headers=twin.api_headers).json()["result"]["status"] == "pending"
    listed = client.get(base, headers=twin.api_headers).json()["result"]
    assert [s["status"] for s in listed] == ["pending"]
    edited = client.patch(f"{base}/{secret['id']}", json={"comment": "x"}, headers=twin.api_headers)
    assert edited.json()["result"]["status"] == "pending"


def test_a_pending_secret_turns_active(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(secret_pending_s=SHORT_S)
    store, secret = _secret(twin, gw, client, "soon_active")
    url = f"{gw.api}/secrets_store/stores/{store}/secrets/{secret['id']}"

    def active() -> str | None:
        status = str(client.get(url, headers=twin.api_headers).json()["result"]["status"])
        return status if status == "active" else None

    assert _eventually(active) == "active"


def test_the_gateway_cannot_use_a_pending_byok_secret(twin: Any, gw: Gateways, client: httpx.Client) -> None:
    twin.reset(secret_pending_s=LONG_S)
    gateway_id = gw.gateway()
    gw.byok(gateway_id, "openai", twin.seed.provider_keys["openai"])
    refused = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"][0]["code"] == 2042  # as for a missing BYOK secret
    twin.context.options.update({"secret_pending_s": 0.0})
    served = client.post(gw.base(gateway_id) + "/openai/chat/completions", json=_chat(), headers=_aig(twin))
    assert served.status_code == 200, served.text


def test_a_changed_secret_stays_active() -> None:
    old = {"status": "active", "created": "2026-01-01T00:00:00.000000Z"}
    assert with_secret_status(old, 60.0)["status"] == "active"
    fresh = {"status": "active", "created": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}
    assert with_secret_status(fresh, LONG_S)["status"] == "pending"
    assert with_secret_status(fresh, 0.0)["status"] == "active"


def test_serve_takes_the_delays_from_its_arguments() -> None:
    parser = build_parser()
    assert delay_options(parser.parse_args(["serve"])) == dict(REALISTIC_DELAYS)
    assert delay_options(parser.parse_args(["serve", "--no-delays"])) == dict(NO_DELAYS)
    chosen = delay_options(parser.parse_args(["serve", "--no-delays", "--log-delay-s", "5"]))
    assert chosen == {**NO_DELAYS, "log_delay_s": 5.0}
    with pytest.raises(TwinConfigError, match="--secret-pending-s"):
        delay_options(parser.parse_args(["serve", "--secret-pending-s", "-1"]))


def test_a_twin_process_is_started_with_the_delays_asked_for(tmp_path: Any) -> None:
    from cftwin.server import TwinProcess

    command = TwinProcess(delays=NO_DELAYS).command(tmp_path / "ready")
    for name in NO_DELAYS:
        flag = "--" + name.replace("_", "-")
        assert command[command.index(flag) + 1] == "0.0"
    assert delay_options(build_parser().parse_args(command[command.index("serve"):])) == dict(NO_DELAYS)
    assert "--log-delay-s" not in TwinProcess().command(tmp_path / "ready")  # cftwin serve's realistic defaults
