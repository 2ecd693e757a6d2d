"""The one API exception handler: every API error has the contract's shape.

    {"type": "validation_error"|"client_error"|"server_error",
     "errors": [{"code": "...", "detail": "...", "attr": "field"|null}]}

Domain code raises `PrecisError` subclasses with a stable `code`; the handler
(drf-standardized-errors underneath) turns them, DRF's own exceptions and
infrastructure outages into that shape, rolls back the transaction, and never
puts a traceback in the body. Non-DRF views under /api/ (404/405/500 pages)
answer the same shape through `json_error_response`.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.views.decorators.csrf import csrf_exempt
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions

from .errors import PrecisError, ServiceUnavailable, json_error_response

logger = logging.getLogger(__name__)


class PrecisExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, PrecisError) and exc.attr is not None and exc.status_code == 400:
            # Field-level domain errors render as validation errors on that field.
            return exceptions.ValidationError({exc.attr: [exceptions.ErrorDetail(str(exc.detail), exc.get_codes())]})
        if isinstance(exc, (OperationalError, InterfaceError)):
            logger.error("database unavailable: %s", exc.__class__.__name__)
            return ServiceUnavailable(
                "The database is unavailable. Try again shortly.",
                "database_unavailable",
            )
        if _is_redis_error(exc):
            logger.error("redis unavailable: %s", exc.__class__.__name__)
            return ServiceUnavailable(
                "The cache/broker (Redis) is unavailable. Try again shortly.",
                "redis_unavailable",
            )
        if isinstance(exc, DatabaseError):
            logger.exception("database error")
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc, response) -> None:
        # A dependency outage (503) is reported by the code that detected it, not as a
        # server crash (got_request_exception is for bugs).
        if response.status_code == 503:
            return
        super().report_exception(exc, response)

    def set_rollback(self) -> None:
        # Views that manage their own transactions (non-atomic requests) must not doom an
        # enclosing atomic block they did not open.
        if getattr(self.context.get("view"), "atomic_request", True) and not _non_atomic(self.context.get("request")):
            super().set_rollback()

    def convert_unhandled_exceptions(self, exc: Exception) -> exceptions.APIException:
        if not isinstance(exc, exceptions.APIException):
            logger.error(
                "unhandled error in API view",
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        return super().convert_unhandled_exceptions(exc)


def _non_atomic(request) -> bool:
    """The route's view opted out of ATOMIC_REQUESTS (transaction.non_atomic_requests)."""
    match = getattr(getattr(request, "_request", request), "resolver_match", None)
    return "default" in getattr(getattr(match, "func", None), "_non_atomic_requests", ())


def _is_redis_error(exc: Exception) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a hard dependency
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError))


@csrf_exempt  # an unknown API URL is a JSON 404 for every method, never a CSRF page
def api_not_found(request, *args, **kwargs):
    return json_error_response(404, "not_found", "Not found.")


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_error_response(500, "error", "Server Error (500)")
    from django.views.defaults import server_error

    return server_error(request)
