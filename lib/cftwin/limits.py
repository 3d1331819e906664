"""Size limits of Cloudflare's that the twin enforces on what a client sends, and how it reads a body.

* A request body is read in a bounded way: a ``Content-Length`` over ``TwinOptions.max_request_body_bytes``
  is answered 413 before one byte of the body is read; a chunked body is counted as it arrives and
  refused once it passes the limit (``BodyTooLarge``), so the twin never buffers more than the limit.
  The default is 100 MB: Cloudflare's request body limit on the Free and Pro plans (its network's
  "maximum upload size"; Business 200 MB, Enterprise 500 MB). ASSUMPTION: AI Gateway documents no
  request size limit of its own, so the platform's applies; MB is read as 2**20 bytes.
* ASSUMPTION: the 413 is the one Cloudflare's edge sends for every hostname (its HTML page, not a JSON
  envelope), since the body is refused before the gateway or the API sees it. The admin API answers in
  its own shape.
* A stored log is at most 10 MB; "Legacy Logs does not store logs exceeding that size"
  (``ai-gateway/reference/limits.mdx``, ``observability/logging/legacy-logs.mdx``). ASSUMPTION: the size
  is that of the stored payloads (request body plus response body); the request is still served.
* A request is cacheable up to 25 MB (``reference/limits.mdx``). ASSUMPTION: a larger one is served
  uncached (no lookup, no store, no ``cf-aig-cache-status``).
"""

from __future__ import annotations

from typing import Final

from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "MAX_CACHEABLE_REQUEST_BYTES",
    "MAX_REQUEST_BODY_BYTES",
    "MAX_STORED_LOG_BYTES",
    "BodyTooLarge",
    "bounded_receive",
    "declared_length",
    "send_too_large",
]

MAX_REQUEST_BODY_BYTES: Final = 100 * 2**20
MAX_CACHEABLE_REQUEST_BYTES: Final = 25 * 2**20
MAX_STORED_LOG_BYTES: Final = 10 * 2**20

_EDGE_413: Final = (b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
                    b"<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
                    b"</body>\r\n</html>\r\n")


class BodyTooLarge(Exception):
    """A chunked request body passed the limit while it was read."""


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (None when absent or not a number)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def bounded_receive(receive: Receive, limit: int) -> Receive:
    """``receive``, raising ``BodyTooLarge`` as soon as the body read so far passes ``limit`` bytes."""
    seen = 0

    async def receive_bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"the request body passed {limit} bytes")
        return message

    return receive_bounded


async def send_too_large(send: Send, *, admin: bool, limit: int) -> None:
    if admin:
        body = (b'{"error": "the request body is larger than the twin\'s limit of %d bytes '
                b'(max_request_body_bytes)"}' % limit)
        media = b"application/json"
    else:
        body, media = _EDGE_413, b"text/html"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
