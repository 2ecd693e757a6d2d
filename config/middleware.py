"""Request correlation: every response carries `X-Request-ID`.

A client-supplied id is echoed when it is sane (1–128 characters of
[A-Za-z0-9._:-]); anything else is replaced by a fresh one so that ids stay
safe to log and to put in headers.
"""

import re
import uuid

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIDMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header, "")
        request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        response = self.get_response(request)
        response[self.header] = request_id
        return response


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
