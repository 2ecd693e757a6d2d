"""The domain error hierarchy: stable codes, human details, HTTP statuses.

Domain code raises these; config.exceptions turns them into the contract's
error shape. This module depends on nothing but DRF's exception base, so any
layer (parsers, services, tasks) may import it.
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework import exceptions, status


class PrecisError(exceptions.APIException):
    """Base of domain errors: a stable `code`, a human `detail`, an HTTP status."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "Invalid request."

    def __init__(
        self,
        detail: str | None = None,
        code: str | None = None,
        attr: str | None = None,
    ):
        self.attr = attr
        super().__init__(detail=detail, code=code)


class ValidationFailed(PrecisError):
    """400 on one field (or the whole body when attr is None)."""

    def __init__(self, detail: str, code: str = "invalid", attr: str | None = None):
        super().__init__(detail, code, attr)


class Conflict(PrecisError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class Forbidden(PrecisError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class PayloadTooLarge(PrecisError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large."


class ServiceUnavailable(PrecisError):
    """A dependency (database, broker, cache, LLM) is down: 503 naming it."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A service Precis depends on is unavailable. Try again shortly."


_TYPES = {4: "client_error", 5: "server_error"}


def json_error_response(status_code: int, code: str, detail: str, headers: dict | None = None) -> JsonResponse:
    body = {
        "type": _TYPES[status_code // 100],
        "errors": [{"code": code, "detail": detail, "attr": None}],
    }
    return JsonResponse(body, status=status_code, headers=headers)
