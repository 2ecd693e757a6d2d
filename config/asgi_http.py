"""Django's ASGI handler, with the middleware stack and the view run in one thread hop.

Precis' views are synchronous (DRF), and so is most of its middleware. Django's
`ASGIHandler` builds an *async* middleware chain and adapts every sync piece to it:
the outer sync middleware runs in a thread, hops back to the event loop for the
async-capable ones, and each `MiddlewareMixin` there runs `process_request` /
`process_response` through `sync_to_async` again; `process_view` and the view hop
once more, and so do the request_started signal and the response's close: about ten
thread round trips per request (config/tests/test_asgi_http.py counts them; see
docs/benchmarks.md, REST list).

This handler loads the chain in sync mode, as WSGI does, and runs the whole of it
(middleware, view, exception handling) in a single `sync_to_async` call; three round
trips remain (request_started, the stack, the response's close). Request
parsing, the body, the response and disconnect handling stay Django's async code.
The call is thread-sensitive like Django's own view calls, so it runs in the
request's own thread (ASGIHandler's ThreadSensitiveContext), next to the
request_started/request_finished signals that open and close its database
connection.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
