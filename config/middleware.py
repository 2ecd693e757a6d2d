"""Request correlation, access log and request metrics.

Every response carries `X-Request-ID`: a client-supplied id is echoed when it
is sane (1–128 characters of [A-Za-z0-9._:-]); anything else is replaced by a
fresh one so that ids stay safe to log and to put in headers. The id, and the
org and user once authenticated, are bound to every log line of the request.
"""

import contextvars
import re
import time
import uuid

import structlog

from .metrics import HTTP_LATENCY, HTTP_REQUESTS

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: The request being served in this context (the audit log reads who, from where, which request).
current_request: contextvars.ContextVar = contextvars.ContextVar("current_request", default=None)
access_log = structlog.get_logger("precis.access")


class RequestContextMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get(self.header, "")
        request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        bound = current_request.set(request)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(bound)
        response[self.header] = request_id
        self._observe(request, response, time.perf_counter() - started)
        return response

    @staticmethod
    def _observe(request, response, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(seconds)
        org = getattr(request, "org", None)
        user = getattr(request, "user", None)
        access_log.info(
            "request",
            method=request.method,
            route=route,
            path=request.path[:200],
            status=response.status_code,
            duration_ms=round(seconds * 1000, 1),
            org_id=str(org.id) if org is not None else None,
            user_id=str(user.pk) if getattr(user, "is_authenticated", False) else None,
        )


class APIDependencyErrorMiddleware:
    """Outages that happen before a DRF view runs (e.g. opening the request's
    transaction on a down database) answer 503 in the error shape under /api/,
    like the ones the DRF exception handler catches inside views."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import InterfaceError, OperationalError

        from .errors import json_error_response

        if request.path.startswith("/api/") and isinstance(exception, (OperationalError, InterfaceError)):
            return json_error_response(
                503,
                "database_unavailable",
                "The database is unavailable. Try again shortly.",
            )
        return None
