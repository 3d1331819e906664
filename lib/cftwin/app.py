"""``build_app(context)``: the twin's one Starlette app, every service's routes on one port.

Route lists carry their full paths (``/client/v4/...``, ``/v1/...``, ``/__providers__/...``), except
admin route lists, which are relative to ``/__twin__``. ``request.app.state.twin`` is the
``TwinContext``. One pure-ASGI middleware (``TwinMiddleware``) applies what is cross-cutting:
the request body limit (``cftwin.limits``), the admin API's gate (``cftwin.adminauth``), control-plane
fault injection, and the ``Ratelimit`` / ``Ratelimit-Policy`` headers of the API budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cftwin import admin, auth
from cftwin.adminauth import admin_refusal
from cftwin.auth import ratelimit_headers
from cftwin.context import TwinContext
from cftwin.dataplane import admin as dataplane_admin
from cftwin.dataplane import responses as dataplane_responses
from cftwin.dataplane import rest_api
from cftwin.envelope import (
    CODE_NO_ROUTE,
    CODE_RATE_LIMITED,
    CODE_SERVER,
    CloudflareAPIError,
    handle_api_error,
)
from cftwin.gateways import responses as gateway_responses
from cftwin.limits import BodyTooLarge, bounded_receive, declared_length, send_too_large
from cftwin.logpush import responses as logpush_responses
from cftwin.logs import admin as logs_admin
from cftwin.logs import responses as logs_responses
from cftwin.observability import responses as observability_responses
from cftwin.providers import responses as provider_responses
from cftwin.secrets_store import responses as secrets_responses
from cftwin.validation import is_loopback_host

__all__ = ["ADMIN_PREFIX", "API_PREFIX", "TwinMiddleware", "build_app"]

API_PREFIX = "/client/v4"
ADMIN_PREFIX = "/__twin__"

logger = logging.getLogger("cftwin")


async def _no_route(request: Request) -> Response:
    # Every /client/v4 request needs a valid token, even one to a path that does not exist.
    auth.authenticate(request)
    # ASSUMPTION: 404 with code 7003 "No route for the URI" (Cloudflare's wording; its status for an
    # unknown route is 400 in some reports, 404 in others).
    raise CloudflareAPIError.single(404, CODE_NO_ROUTE, "No route for the URI")


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("twin handler failed: %s %s", request.method, request.url.path)
    return JSONResponse(
        {"success": False, "errors": [{"code": CODE_SERVER, "message": "Internal Server Error"}],
         "messages": [], "result": None},
        status_code=500,
    )


def _is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    return is_loopback_host(str(client[0]))


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class TwinMiddleware:
    """Admin gate, control-plane faults and rate-limit headers, around the whole app."""

    def __init__(self, app: ASGIApp, context: TwinContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_admin = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        limit = self.context.options.max_request_body_bytes
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            # Refused on the header alone: the body is never read, so its size costs nothing.
            await send_too_large(send, admin=is_admin, limit=limit)
            return
        if declared is not None:
            # Only a bounded receive raises BodyTooLarge: a request that declared its length routes as it is.
            await self._route(scope, receive, send, path, is_admin)
            return
        receive = bounded_receive(receive, limit)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._route(scope, receive, send_tracked, path, is_admin)
        except BodyTooLarge:
            if started:
                raise
            await send_too_large(send, admin=is_admin, limit=limit)

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str, is_admin: bool) -> None:
        if is_admin:
            if not self.context.options.admin_enabled:
                await _send_json(send, 404, {"error": "the admin API is disabled (serve with --admin)"})
                return
            if not _is_loopback(scope):
                await _send_json(send, 403, {"error": "the admin API answers loopback clients only"})
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            refusal = admin_refusal(scope.get("method", "GET"), headers, scope.get("server"),
                                    self.context.admin_token)
            if refusal is not None:
                await _send_json(send, refusal[0], {"error": refusal[1]})
                return
            await self.app(scope, receive, send)
            return
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self._control_plane(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _control_plane(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.context.faults
        decision = faults.control_decision(scope.get("method", "GET"), scope["path"]) if faults else None
        if decision is not None and decision.kind == "error":
            await _send_json(send, decision.status, {
                "success": False, "messages": [], "result": None,
                "errors": [{"code": CODE_SERVER, "message": "Internal Server Error (injected fault)"}],
            })
            return
        if decision is not None and decision.kind == "rate_limited":
            options = self.context.options
            headers = ratelimit_headers(options.api_budget_requests, 0, int(decision.retry_after),
                                        options.api_budget_window_s)
            await _send_json(send, 429, {
                "success": False, "messages": [], "result": None,
                "errors": [{"code": CODE_RATE_LIMITED, "message": "Too many requests (injected fault)"}],
            }, {**headers, "Retry-After": str(decision.retry_after)})
            return
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        held: list[Message] = []
        hang = decision is not None and decision.kind == "hang_after_apply"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                limits: dict[str, str] | None = state.get("cftwin_ratelimit")
                if limits is not None:
                    headers = list(message.get("headers", []))
                    names = {name.lower() for name, _ in headers}
                    if b"ratelimit" not in names:
                        headers += [(k.lower().encode(), v.encode()) for k, v in limits.items()]
                    message = {**message, "headers": headers}
            if hang:
                held.append(message)
            else:
                await send(message)

        await self.app(scope, receive, send_wrapper)
        if hang and decision is not None:
            # The write is committed; the client sees only silence until it gives up, or until the twin
            # stops: then the answer goes out, so the shutdown waits for no hung task (and cancels none,
            # which printed a CancelledError traceback).
            deadline = asyncio.get_running_loop().time() + decision.hang_s
            while not self.context.stopping.is_set():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, 0.1))
            for message in held:
                await send(message)


def build_app(context: TwinContext) -> Starlette:
    """The twin's ASGI app over ``context`` (state, options, faults)."""
    # The data plane and the providers come first: they are the hot path, and Starlette tries
    # routes in order.
    routes: list[BaseRoute] = [*dataplane_responses.routes, *provider_responses.routes]
    routes += auth.routes
    routes += gateway_responses.routes
    routes += secrets_responses.routes
    routes += logs_responses.routes
    routes += observability_responses.routes
    routes += rest_api.routes
    routes += logpush_responses.routes
    if context.options.admin_enabled:
        admin_routes: list[BaseRoute] = [*admin.routes, *logs_admin.routes, *dataplane_admin.routes]
        routes.append(Mount(ADMIN_PREFIX, routes=admin_routes))
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes.append(Route(API_PREFIX + "/{rest:path}", _no_route, methods=methods))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TwinMiddleware, context=context)],
        exception_handlers={CloudflareAPIError: handle_api_error, Exception: _server_error},
    )
    app.state.twin = context
    return app
