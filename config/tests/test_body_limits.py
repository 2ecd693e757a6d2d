"""The ASGI body limit: oversized bodies are refused before Django spools them."""

import pytest

from config.asgi import application
from config.body_limits import max_request_bytes
from config.tests.asgi_client import serve

pytestmark = pytest.mark.django_db(transaction=True)


def call(headers: list[tuple[bytes, bytes]], chunks: list[bytes]):
    """Drive the real ASGI application; returns (status, body, bytes the app pulled)."""
    status, response_headers, body, pulled = serve(
        application, "POST", "/api/v1/documents/", [(b"content-type", b"application/json"), *headers], chunks
    )
    call.last_headers = response_headers
    return status, body, pulled


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
