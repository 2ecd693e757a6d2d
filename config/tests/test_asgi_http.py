"""The ASGI handler runs the sync middleware stack and the view in one thread hop."""

import json

import pytest
from asgiref import sync
from asgiref.sync import markcoroutinefunction
from django.core.handlers.asgi import ASGIHandler

from config.asgi import django_asgi_app
from config.asgi_http import OneHopASGIHandler
from config.tests.asgi_client import serve

pytestmark = pytest.mark.django_db(transaction=True)


def get(app, path: str, headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict[bytes, bytes], bytes]:
    status, response_headers, body, _ = serve(app, "GET", path, list(headers), [b""])
    return status, response_headers, body


@pytest.fixture
def hops(monkeypatch):
    """Counts the sync_to_async calls made while serving (each one is a thread round trip)."""
    calls: list[str] = []
    original = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    return calls


def test_the_project_serves_http_with_the_one_hop_handler():
    assert isinstance(django_asgi_app, OneHopASGIHandler)


def test_middleware_and_view_take_one_hop_where_django_takes_several(hops):
    status, headers, body = get(OneHopASGIHandler(), "/api/v1/jobs/", [(b"x-request-id", b"req-1")])
    ours = list(hops)
    hops.clear()
    django_status, _, django_body = get(ASGIHandler(), "/api/v1/jobs/", [(b"x-request-id", b"req-1")])

    # The same answer: the 401 in the error shape, with the middleware's headers.
    assert (status, body) == (django_status, django_body) == (status, body)
    assert status == 401
    assert json.loads(body)["errors"][0]["code"] == "not_authenticated"
    assert headers[b"X-Request-ID"] == b"req-1"
    assert b"Content-Security-Policy" in headers
    # request_started, the whole stack, response.close (+ Django's log line for a 4xx).
    assert ours.count("BaseHandler.get_response") == 1
    assert len(ours) <= 4, ours
    assert len(hops) >= len(ours) + 3, hops


def test_an_unknown_route_still_answers_the_json_404():
    status, _, body = get(OneHopASGIHandler(), "/api/nowhere/")
    assert status == 404
    assert json.loads(body)["type"] == "client_error"


class AsyncOnlyMiddleware:
    """A third-party style middleware that has no sync mode."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Async-Only"] = "ran"
        return response


def test_an_async_only_middleware_still_runs(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "config.tests.test_asgi_http.AsyncOnlyMiddleware"]
    status, headers, body = get(OneHopASGIHandler(), "/api/v1/jobs/")
    assert status == 401
    assert headers[b"X-Async-Only"] == b"ran"
    assert json.loads(body)["errors"][0]["code"] == "not_authenticated"


@pytest.fixture
def finished(settings):
    """request_finished signals, in order with what the fault URLconf's views record."""
    from django.core.signals import request_finished

    from config.tests import urls_faults

    settings.ROOT_URLCONF = "config.tests.urls_faults"
    urls_faults.EVENTS.clear()

    def record(**kwargs):
        urls_faults.EVENTS.append("request_finished")

    request_finished.connect(record)
    yield urls_faults.EVENTS
    request_finished.disconnect(record)


def test_an_ordinary_response_finishes_the_request_once(finished):
    status, _, _ = get(OneHopASGIHandler(), "/api/v1/jobs/")
    assert status == 401
    assert finished == ["request_finished"]


def test_a_streaming_response_is_closed_after_its_body_is_sent(finished):
    status, _, body = get(OneHopASGIHandler(), "/api/v1/_test/streaming/")
    assert status == 200 and body == b"part one, part two"
    assert finished == ["body read", "request_finished"]


def test_crashes_and_outages_keep_the_error_shape(finished, settings):
    settings.DEBUG = False
    status, _, body = get(OneHopASGIHandler(), "/api/v1/_test/crash/")
    assert status == 500 and b"secret internal detail" not in body
    assert json.loads(body)["type"] == "server_error"
    status, _, body = get(OneHopASGIHandler(), "/api/v1/_test/db-down/")
    assert status == 503
    assert json.loads(body)["errors"][0]["code"] == "database_unavailable"
    assert finished == ["request_finished", "request_finished"]
