"""A URLconf for fault tests: the real API plus views that fail on purpose."""

from django.db import OperationalError
from django.http import StreamingHttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns


class Crash(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internal detail")


class DatabaseDown(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise OperationalError("connection refused")


EVENTS: list[str] = []  # what the streaming view and request_finished did, in order


def streaming(request):
    async def body():  # async: Django's ASGI handler warns about sync iterators
        EVENTS.append("body read")
        yield b"part one, "
        yield b"part two"

    return StreamingHttpResponse(body(), content_type="text/plain")


urlpatterns = [
    path("api/v1/_test/streaming/", streaming),
    path("api/v1/_test/crash/", Crash.as_view()),
    path("api/v1/_test/db-down/", DatabaseDown.as_view()),
    *real_urlpatterns,
]
