"""Request bodies capped before Django reads them.

Django's ASGI handler reads a whole body before any middleware runs, spooling it to a
temporary file past FILE_UPLOAD_MAX_MEMORY_SIZE: a 2 GiB upload was written to disk before
its 413 (or a 405, or the HTTPS redirect). In front of it, a declared length over the route's
cap is refused without reading a byte, and a body without one (chunked) is read only up to
the cap. The caps are below FILE_UPLOAD_MAX_MEMORY_SIZE (settings check), so what Django is
handed stays in memory.
"""

import json

from django.conf import settings

from chatkit import routes
from conversations.api.errors import error_body
from conversations.api.parsers import PayloadTooLarge

_FRAMING = (b"content-length", b"transfer-encoding")


class BodyLimit:
    """An ASGI app around Django's: bodies over their route's cap get 413, unread."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is None and not chunked and scope.get("http_version") in ("1.0", "1.1"):
            # HTTP/1 without either header has no body (a GET): nothing more to do.
            await self.app(scope, receive, send)
            return

        path = routes.app_path(scope)
        cap = _cap(path)
        if not chunked and length is not None and length.isdigit():
            if int(length) > cap:
                await _refuse(path, send)
            else:
                # The server hands on exactly that many bytes, no more.
                await self.app(scope, receive, send)
            return

        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await _refuse(path, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Django (and DRF) read a body only as far as its Content-Length says.
        headers = [header for header in scope["headers"] if header[0] not in _FRAMING]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, _replay(body, receive), send)


def _cap(path: str) -> int:
    if routes.is_json_path(path):
        return settings.CHATKIT_MAX_BODY_BYTES
    return settings.CHATKIT_ADMIN_MAX_BODY_BYTES


def _replay(body: bytes, receive):
    """A `receive` that gives the body read so far, then what the server says next."""
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()  # Django listens for the client leaving
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(path: str, send) -> None:
    """413, in the route's error shape: JSON for the API and probes, text elsewhere."""
    if routes.is_json_path(path):
        content_type = b"application/json"
        message = str(PayloadTooLarge.default_detail)
        error = error_body(path, code=PayloadTooLarge.default_code, message=message)
        body = json.dumps(error).encode()
    else:
        content_type = b"text/plain; charset=utf-8"
        body = b"The request body is too large.\n"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        # The rest of the body stays unread, so the connection cannot carry another request:
        # the server closes it once this answer is out.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
