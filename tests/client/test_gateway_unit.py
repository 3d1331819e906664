"""Unit tests of aigw.gateway's classification of data-plane answers and its percentile."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aigw.gateway import ProbeResult, classify, percentile


@pytest.mark.parametrize(
    ("status", "body", "outcome", "code", "kind"),
    [
        (401, {"success": False, "error": [{"code": 2009, "message": "Unauthorized"}], "name": "AiGatewayError"},
         "gateway_error", 2009, None),
        (400, {"success": False, "result": [], "error": [{"code": 2040, "message": "no alias"}],
               "name": "AiGatewayError", "internalCode": 2040}, "gateway_error", 2040, None),
        (401, {"result": None, "success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
         "gateway_error", 10000, None),
        (404, {"error": {"message": "The model does not exist", "type": "invalid_request_error"}},
         "provider_error", None, "invalid_request_error"),
        (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
         "provider_error", None, "invalid_request_error"),
        (403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}},
         "provider_error", None, "PERMISSION_DENIED"),
        (400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                         "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                      "reason": "API_KEY_INVALID"}]}},
         "provider_error", None, "API_KEY_INVALID"),
        (200, {"choices": [{"message": {"content": "ok"}}]}, "ok", None, None),
        # A 2xx that carries no completion is not a valid answer (criterion 3 asks for one).
        (200, {"choices": []}, "error", None, None),
        (200, {"id": "x", "object": "chat.completion"}, "error", None, None),
        (502, None, "error", None, None),
    ],
)
def test_classify(status: int, body: Any, outcome: str, code: int | None, kind: str | None) -> None:
    content = b"<html>502 Bad Gateway</html>" if body is None else json.dumps(body).encode()
    assert classify(status, content)[:3] == (outcome, code, kind)


def test_ok_excerpt_is_the_generated_text() -> None:
    anthropic = {"content": [{"type": "text", "text": "hello  there\n"}]}
    google = {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}
    assert classify(200, json.dumps(anthropic).encode())[3] == "hello there"
    assert classify(200, json.dumps(google).encode())[3] == "hi"


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0], 0.95) == 10.0
    assert percentile(list(range(101)), 0.95) == pytest.approx(95.0)
    with pytest.raises(ValueError):
        percentile([], 0.5)


@pytest.mark.parametrize(
    ("status", "kind", "healthy"),
    [(400, "invalid_request_error", True), (404, "not_found_error", True), (401, "authentication_error", False),
     (403, "PERMISSION_DENIED", False), (400, "API_KEY_INVALID", False)],
)
def test_a_refused_key_is_never_healthy(status: int, kind: str, healthy: bool) -> None:
    result = ProbeResult(check="c", provider="p", model="m", url="u", status=status, outcome="provider_error",
                         latency_ms=1.0, provider_error_type=kind)
    assert result.healthy is healthy and result.key_rejected is not healthy


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (502, "INTERNAL"), (503, "server_error"),
                                              (429, "rate_limit_exceeded")])
def test_a_provider_outage_after_retries_is_never_healthy(status: int, kind: str) -> None:
    result = ProbeResult(check="c", provider="p", model="m", url="u", status=status, outcome="provider_error",
                         latency_ms=1.0, attempts=3, provider_error_type=kind)
    assert not result.healthy and result.provider_unavailable and not result.key_rejected


@pytest.mark.parametrize("outcome", ["no_answer", "error", "gateway_error"])
def test_no_answer_or_a_gateway_error_is_never_healthy(outcome: str) -> None:
    result = ProbeResult(check="c", provider="p", model="m", url="u", status=None if outcome == "no_answer" else 502,
                         outcome=outcome, latency_ms=1.0)  # type: ignore[arg-type]
    assert not result.healthy
