"""/health/ready follows Redis as it goes down and comes back, probe for probe: the first
probe after Redis answers again says ok (a pooled connection that died with the old
server is not an outage). Redis here is a redis-server of the test's own."""

from __future__ import annotations

import pytest
from django.test import Client

from config.tests.process_fixtures import OwnRedis, redis_cache_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(settings):
    server = OwnRedis().start()
    settings.CACHES = redis_cache_settings(server.url)
    settings.CHANNEL_LAYERS = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {
                **settings.CHANNEL_LAYERS["default"]["CONFIG"],
                "hosts": [{"address": server.url, "socket_timeout": 15, "socket_connect_timeout": 1}],
            },
        }
    }
    settings.CELERY_BROKER_URL = server.url
    yield server
    server.stop()


def probe() -> tuple[int, dict]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()["checks"]


def test_ready_reports_recovery_at_the_first_probe(own_redis):
    assert probe() == (200, {"database": "ok", "cache": "ok", "broker": "ok", "channel_layer": "ok"})
    own_redis.stop()
    status, checks = probe()
    assert status == 503
    assert {name for name, value in checks.items() if value != "ok"} == {"cache", "broker", "channel_layer"}
    own_redis.start()  # the same port, empty
    assert probe() == (200, {"database": "ok", "cache": "ok", "broker": "ok", "channel_layer": "ok"})


def test_ready_sees_a_restart_between_two_probes(own_redis):
    """Down and up again between probes: nothing to report, the pooled connections are stale."""
    assert probe()[0] == 200
    own_redis.stop()
    own_redis.start()
    assert probe() == (200, {"database": "ok", "cache": "ok", "broker": "ok", "channel_layer": "ok"})


def test_a_served_process_reports_recovery_at_the_first_probe(own_redis):
    """The same through daphne, whose event loop keeps the channel layer's connections."""
    import requests

    from config.tests.process_fixtures import Daphne, Worker

    env = {**Worker("http://127.0.0.1:9").env(), "REDIS_URL": own_redis.url}
    server = Daphne(env, "readiness").start()
    try:

        def served_probe() -> tuple[int, dict]:
            response = requests.get(f"{server.http}/health/ready", timeout=30)
            return response.status_code, response.json()["checks"]

        ok = (200, {"database": "ok", "cache": "ok", "broker": "ok", "channel_layer": "ok"})
        for _ in range(3):  # several pooled connections
            assert served_probe() == ok
        own_redis.stop()
        assert served_probe()[0] == 503
        own_redis.start()
        # every probe from the first on: a stale pooled connection is not an outage
        assert [served_probe() for _ in range(3)] == [ok] * 3
        own_redis.process.kill()  # killed, not stopped
        own_redis.process.wait()
        own_redis.start()
        assert [served_probe() for _ in range(3)] == [ok] * 3
    finally:
        server.stop()
