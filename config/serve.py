"""`python -m config.serve [daphne options] config.asgi:application` — daphne, with a body limit.

Daphne (through Twisted) receives a request's whole body before the ASGI
application sees it, and then queues all of it in memory for the app: an
ASGI middleware alone cannot stop a client from making the web process hold
a huge body. This entry point runs the same daphne with one addition at the
protocol level: a declared Content-Length over MAX_REQUEST_BYTES is answered
413 as soon as the headers arrive, and a chunked body is cut off with 413 the
moment it passes the limit. Nothing else about daphne changes. In the embedded mode
this process also runs the jobs (jobs.embedded), resuming those a previous run left.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

_RESPONSE_TEMPLATE = (
    "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
    "X-Request-ID: {request_id}\r\nConnection: close\r\n\r\n"
)


def _too_large_bytes(limit: int) -> bytes:
    body = json.dumps(
        {
            "type": "client_error",
            "errors": [{"code": "body_too_large", "detail": f"The request body exceeds {limit} bytes.", "attr": None}],
        }
    ).encode()
    head = _RESPONSE_TEMPLATE.format(length=len(body), request_id=uuid.uuid4().hex).encode()
    return head + body


def install_body_limit(limit: int) -> None:
    """Patch daphne's request class to refuse bodies over `limit` bytes while they arrive."""
    from daphne.http_protocol import WebRequest

    original_got_length = WebRequest.gotLength
    original_chunk = WebRequest.handleContentChunk

    def refuse(request) -> None:
        if getattr(request, "_precis_refused", False):
            return
        request._precis_refused = True
        transport = request.channel.transport
        transport.write(_too_large_bytes(limit))
        transport.loseConnection()

    def got_length(self, length):
        self._precis_received = 0
        original_got_length(self, length)
        if length is not None and length > limit:
            refuse(self)

    def handle_content_chunk(self, data):
        if getattr(self, "_precis_refused", False):
            return  # the connection is closing: drop the rest
        self._precis_received = getattr(self, "_precis_received", 0) + len(data)
        if self._precis_received > limit:
            refuse(self)
            return
        original_chunk(self, data)

    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_content_chunk


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    from daphne.cli import CommandLineInterface
    from django.conf import settings

    from config.body_limits import max_request_bytes

    install_body_limit(max_request_bytes())
    if settings.EMBEDDED:  # this process runs the jobs too (jobs.embedded)
        from jobs import embedded

        embedded.start()
    CommandLineInterface().run(sys.argv[1:])


if __name__ == "__main__":
    main()
