"""The emulated providers served directly, as if from ``api.openai.com`` etc.:
``/__providers__/{slug}/{the provider's own path}``. The gateway calls the same handlers in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cftwin.context import twin_context
from cftwin.providers.engine import ProviderRequest, ProviderResult
from cftwin.providers.registry import PROVIDERS

__all__ = ["PREFIX", "render", "routes"]

PREFIX = "/__providers__"


async def _iterate(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def render(result: ProviderResult, headers: Mapping[str, str] | None = None) -> Response:
    """The HTTP response for a provider's answer (a stream as ``text/event-stream``)."""
    merged = dict(result.headers)
    if headers:
        merged.update(headers)
    if result.chunks is not None:
        merged.setdefault("cache-control", "no-cache")
        return StreamingResponse(_iterate(result.chunks), status_code=result.status,
                                 media_type=result.content_type, headers=merged)
    return Response(result.body, status_code=result.status, media_type=result.content_type, headers=merged)


async def provider_endpoint(request: Request) -> Response:
    slug = request.path_params["slug"]
    provider = PROVIDERS.get(slug)
    if provider is None:
        return JSONResponse({"error": f"the twin does not emulate provider {slug!r}; it emulates "
                                      f"{', '.join(sorted(PROVIDERS))}"}, status_code=404)
    ctx = twin_context(request)
    body = await request.body()
    call = ProviderRequest(
        method=request.method,
        path=request.path_params["path"],
        query=request.query_params,
        headers=request.headers,
        body=body,
        key=provider.request_key(request.headers, request.query_params),
    )
    return render(await provider.handle(ctx, call))


routes = [
    Route(PREFIX + "/{slug}/{path:path}", provider_endpoint, methods=["GET", "POST"]),
]
