"""ASGI middleware: refuse oversized request bodies before Django spools them.

Django's ASGI handler reads the whole request body (into a temporary file)
before any view runs, so view-level limits alone would still let a client
stream gigabytes at us. This middleware answers 413 at once when the declared
Content-Length is over MAX_REQUEST_BYTES, and for chunked bodies counts the
bytes as they arrive and stops reading as soon as the limit is passed.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings

from .middleware import SANE_REQUEST_ID


def max_request_bytes() -> int:
    # The largest legitimate body: an upload at the limit plus multipart framing, or a JSON body.
    return max(settings.MAX_UPLOAD_BYTES + 1024 * 1024, settings.MAX_JSON_BODY_BYTES)


class BodySizeLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = max_request_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False  # Django answers a malformed header itself
            if too_big:
                return await _send_413(send, limit, scope)

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}  # Django stops reading and gives up
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not response_started:
            await _send_413(send, limit, scope)


async def _send_413(send, limit: int, scope) -> None:
    incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    body = json.dumps(
        {
            "type": "client_error",
            "errors": [{"code": "body_too_large", "detail": f"The request body exceeds {limit} bytes.", "attr": None}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
