"""The ASGI body limit: oversized bodies are refused before Django spools them."""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from config.asgi import application
from config.body_limits import max_request_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def call(headers: list[tuple[bytes, bytes]], chunks: list[bytes]):
    """Drive the real ASGI application; returns (status, body, bytes the app pulled)."""
    sent: list[dict] = []
    pulled = 0
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        nonlocal pulled
        if queue:
            message = queue.pop(0)
            pulled += len(message["body"])
            return message
        await asyncio.Event().wait()  # like a real client: no disconnect while waiting for the answer

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/documents/",
        "raw_path": b"/api/v1/documents/",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    async_to_sync(application)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    call.last_headers = dict(start.get("headers") or [])
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, pulled


def test_declared_length_over_limit_refused_without_reading(settings):
    settings.MAX_UPLOAD_BYTES = settings.MAX_JSON_BODY_BYTES = 1000
    limit = max_request_bytes()
    status, body, pulled = call(
        [(b"content-length", str(limit + 1).encode()), (b"x-request-id", b"client-id-1")], [b"x" * 10]
    )
    assert call.last_headers[b"x-request-id"] == b"client-id-1"
    assert status == 413 and b"body_too_large" in body
    assert pulled == 0


def test_chunked_body_stops_being_read_past_the_limit(settings):
    settings.MAX_UPLOAD_BYTES = settings.MAX_JSON_BODY_BYTES = 1000
    limit = max_request_bytes()
    chunk = b"x" * 65536
    chunks = [chunk] * (limit // len(chunk) + 20)
    status, body, pulled = call([], chunks)
    assert status == 413 and b'"type": "client_error"' in body
    assert pulled <= limit + len(chunk)  # stopped right after crossing the limit, not at the end
    assert pulled < len(chunk) * len(chunks)


def test_small_body_passes_through():
    status, _body, _pulled = call([(b"content-length", b"2")], [b"{}"])
    assert status == 401  # reached the API (no token), not refused by size
