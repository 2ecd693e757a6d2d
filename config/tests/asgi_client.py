"""Drive an ASGI application with one HTTP request, in process (no server)."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync


def serve(
    app, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    """Send the body in `chunks`; returns (status, response headers, body, body bytes the app pulled)."""
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
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    async_to_sync(app)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start.get("headers") or []), body, pulled
