"""The Django floor for `GET /api/v1/documents/`: the raw handler's work in a plain Django view.

    daphne -b 127.0.0.1 -p PORT bench._rest_django:application

Precis' own settings, middleware, ATOMIC_REQUESTS, psycopg pool and ASGI handler
(config.asgi_http.OneHopASGIHandler), but one plain function view that does what
bench/_rest_raw.py does: PyJWT decode, USER_SQL and PAGE_SQL through Django's connection
cursor (no ORM query building, no model instances), the same JSON built by the same
function, returned in an HttpResponse (no DRF). Between the raw handler and Precis, it
tells what Django's request handling costs and what DRF and the ORM add on top.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from bench import _rest_raw as raw  # noqa: E402
from config.asgi_http import OneHopASGIHandler  # noqa: E402


def documents(request) -> HttpResponse:
    claims = raw.authenticate([(b"authorization", request.headers.get("Authorization", "").encode())])
    if claims is None:
        return HttpResponse(
            b'{"detail":"Authentication credentials were not provided."}', status=401, content_type="application/json"
        )
    size = raw.page_size(parse_qs(request.META.get("QUERY_STRING", "")))
    user_id = raw.claimed_user_id(claims)
    with connection.cursor() as cursor:
        user = None
        if user_id is not None:
            cursor.execute(raw.USER_SQL, [user_id])
            user = cursor.fetchone()
        if not raw.user_is_valid(user, claims):
            return HttpResponse(b'{"detail":"Token is not valid."}', status=401, content_type="application/json")
        cursor.execute(raw.PAGE_SQL, [user[3], size + 1])
        # Django's connections hand jsonb over as text (its JSONField decodes it): so do we.
        rows = [(*r[:6], json.loads(r[6]), *r[7:]) for r in cursor.fetchall()]
    return HttpResponse(raw.list_body(rows, size, request.scope), content_type="application/json")


urlpatterns = [path("api/v1/documents/", documents)]
settings.ROOT_URLCONF = __name__  # this module's one route instead of Precis' URL map

application = OneHopASGIHandler()
