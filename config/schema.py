"""OpenAPI pieces shared by every app: the error body for statuses that
drf-standardized-errors has no built-in schema for (409, 413, 503)."""

from rest_framework import serializers


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponseSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="validation_error, client_error or server_error")
    errors = ErrorItemSerializer(many=True)


class ConflictErrorResponseSerializer(ErrorResponseSerializer):
    """409: the request conflicts with the current state (e.g. the last admin)."""


class PayloadTooLargeErrorResponseSerializer(ErrorResponseSerializer):
    """413: the body or file is over a configured limit."""


class ServiceUnavailableErrorResponseSerializer(ErrorResponseSerializer):
    """503: a dependency (database, Redis, broker, LLM) is down; retry later."""
