"""A URLconf for fault tests: the real API plus views that fail on purpose."""

from django.db import OperationalError
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


urlpatterns = [
    path("api/v1/_test/crash/", Crash.as_view()),
    path("api/v1/_test/db-down/", DatabaseDown.as_view()),
    *real_urlpatterns,
]
