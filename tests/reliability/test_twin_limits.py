"""Cloudflare's size limits in the twin (issue 14, item 5): the request body limit (read bounded), the
10 MB stored-log limit and the 25 MB cacheable-request limit."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from cftwin.limits import MAX_CACHEABLE_REQUEST_BYTES, MAX_REQUEST_BODY_BYTES, MAX_STORED_LOG_BYTES
from cftwin.logs.models import count_logs
from reliability_support import make_gateway

if TYPE_CHECKING:
    from tests.conftest import TwinHandle

MB = 2**20


@pytest.fixture
def gateway(twin: TwinHandle) -> Iterator[TwinHandle]:
    make_gateway(twin)
    yield twin
    twin.reset()


def _chat_body(size: int) -> bytes:
    """An OpenAI chat body of about ``size`` bytes."""
    return json.dumps({"model": "gpt-4o-mini", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "x" * size}]}).encode()


def _chat(twin: TwinHandle, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{twin.server.gateway_base_url}/{twin.account_id}/gw/openai/chat/completions", content=body,
                      headers={**twin.aig_headers, "authorization": f"Bearer {twin.seed.provider_keys['openai']}",
                               "content-type": "application/json", **headers}, timeout=60)


def _head_only(twin: TwinHandle, path: str, length: int) -> bytes:
    """Send a request's head declaring ``length`` body bytes, none of the body; the answer's bytes."""
    with socket.create_connection((twin.server.host, twin.server.port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{twin.server.port}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith((b"</html>", b"}")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_the_default_limits_are_cloudflares() -> None:
    assert (MAX_REQUEST_BODY_BYTES, MAX_CACHEABLE_REQUEST_BYTES, MAX_STORED_LOG_BYTES) == (100 * MB, 25 * MB, 10 * MB)


@pytest.mark.parametrize("where", ["data plane", "v4 API", "admin"])
def test_a_declared_body_over_the_limit_is_413_before_it_is_read(gateway: TwinHandle, where: str) -> None:
    path = {"data plane": f"/v1/{gateway.account_id}/gw/openai/chat/completions",
            "v4 API": f"/client/v4/accounts/{gateway.account_id}/ai-gateway/gateways",
            "admin": "/__twin__/tokens"}[where]
    # 50 MB over the default limit, and not one byte of it sent: a twin that read the body would hang.
    answer = _head_only(gateway, path, MAX_REQUEST_BODY_BYTES + 50 * MB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert (b"413 Request Entity Too Large" in answer) if where != "admin" else (b"max_request_body_bytes" in answer)
    assert count_logs(gateway.context.db, gateway.account_id, "gw") == 0


def test_a_chunked_body_over_the_limit_is_413(gateway: TwinHandle) -> None:
    gateway.context.options.update({"max_request_body_bytes": 2 * MB})

    def chunks() -> Iterator[bytes]:
        body = _chat_body(3 * MB)
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    answer = _chat(gateway, chunks())  # type: ignore[arg-type]
    assert answer.status_code == 413 and "413 Request Entity Too Large" in answer.text
    assert count_logs(gateway.context.db, gateway.account_id, "gw") == 0


def test_a_log_over_10_mb_is_not_stored_and_the_request_is_served(gateway: TwinHandle) -> None:
    small = _chat(gateway, _chat_body(1000))
    assert small.status_code == 200 and "cf-aig-log-id" in small.headers
    big = _chat(gateway, _chat_body(MAX_STORED_LOG_BYTES + 1))
    assert big.status_code == 200, big.text[:300]
    assert "cf-aig-log-id" not in big.headers
    assert count_logs(gateway.context.db, gateway.account_id, "gw") == 1
    # Without payloads the log is small: it is stored.
    unpayloaded = _chat(gateway, _chat_body(MAX_STORED_LOG_BYTES + 1), **{"cf-aig-collect-log-payload": "false"})
    assert unpayloaded.status_code == 200 and "cf-aig-log-id" in unpayloaded.headers
    assert count_logs(gateway.context.db, gateway.account_id, "gw") == 2


def test_a_request_over_25_mb_is_not_cached(gateway: TwinHandle) -> None:
    ttl = {"cf-aig-cache-ttl": "3600", "cf-aig-collect-log": "false"}
    small = _chat_body(1000)
    assert [_chat(gateway, small, **ttl).headers.get("cf-aig-cache-status") for _ in range(2)] == ["MISS", "HIT"]
    big = _chat_body(MAX_CACHEABLE_REQUEST_BYTES + 1)
    answers = [_chat(gateway, big, **ttl) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers.get("cf-aig-cache-status") for a in answers] == [None, None]
