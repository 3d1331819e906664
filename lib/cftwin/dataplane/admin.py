"""Admin routes of the data plane and the emulated providers (mounted under ``/__twin__``).

| method | path | body | answer |
|---|---|---|---|
| POST | /providers/{slug}/keys | ``{"key": "..."}`` | 201 ``{"provider", "active_keys"}`` (the key is now valid) |
| DELETE | /providers/{slug}/keys | ``{"key": "..."}`` | ``{"provider", "revoked", "active_keys"}`` (a rotation drill) |
| GET | /providers/{slug}/keys | - | ``{"provider", "active_keys"}`` (a count; keys are never returned) |
| POST | /dataplane/reset | - | empties the gateway cache and the rate-limit counters |

Errors are ``{"error": "<one line>"}`` with 400 / 404. A key is never echoed back.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cftwin import jsonbody
from cftwin.adminauth import admin_error
from cftwin.context import twin_context
from cftwin.providers.models import PROVIDER_SLUGS, add_provider_key, count_provider_keys, revoke_provider_key

__all__ = ["routes"]


def _unknown_provider(slug: str) -> JSONResponse:
    return admin_error(404, f"the twin does not emulate provider {slug!r}; it emulates {', '.join(PROVIDER_SLUGS)}")


async def _slug_and_key(request: Request) -> tuple[str, str] | JSONResponse:
    slug = request.path_params["slug"]
    if slug not in PROVIDER_SLUGS:
        return _unknown_provider(slug)
    raw = await request.body()
    try:
        body = jsonbody.loads(raw) if raw.strip() else {}
    except ValueError:
        return admin_error(400, "the body is not valid JSON")
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key.strip():
        return admin_error(400, 'the body must be {"key": "<a non-empty provider key>"}')
    return slug, key.strip()


async def add_key(request: Request) -> Response:
    found = await _slug_and_key(request)
    if isinstance(found, JSONResponse):
        return found
    slug, key = found
    db = twin_context(request).db
    add_provider_key(db, slug, key)
    return JSONResponse({"provider": slug, "active_keys": count_provider_keys(db, slug)}, status_code=201)


async def revoke_key(request: Request) -> Response:
    found = await _slug_and_key(request)
    if isinstance(found, JSONResponse):
        return found
    slug, key = found
    db = twin_context(request).db
    revoked = revoke_provider_key(db, slug, key)
    return JSONResponse({"provider": slug, "revoked": revoked, "active_keys": count_provider_keys(db, slug)})


async def list_keys(request: Request) -> Response:
    slug = request.path_params["slug"]
    if slug not in PROVIDER_SLUGS:
        return _unknown_provider(slug)
    return JSONResponse({"provider": slug, "active_keys": count_provider_keys(twin_context(request).db, slug)})


async def reset_dataplane(request: Request) -> Response:
    twin_context(request).db.execute("DELETE FROM gateway_cache")
    twin_context(request).gateway_limiter.clear()
    return JSONResponse({"status": "reset"})


routes = [
    Route("/providers/{slug}/keys", add_key, methods=["POST"]),
    Route("/providers/{slug}/keys", revoke_key, methods=["DELETE"]),
    Route("/providers/{slug}/keys", list_keys, methods=["GET"]),
    Route("/dataplane/reset", reset_dataplane, methods=["POST"]),
]
