"""Open sockets keep their group membership: across a Redis that restarts empty, and past
channels-redis' group_expiry. Real consumers (WebsocketCommunicator) on channels-redis and a
redis-server of the test's own (OwnRedis), stopped and started by the test."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from config.tests.process_fixtures import OwnRedis
from conftest import make_tenant
from realtime.consumers import CLOSE_RECONNECT
from realtime.layers import PrecisRedisChannelLayer
from realtime.tests.test_consumer import assert_silent, connect, publish, receive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

CHECK_S = 0.2  # how often the layer checks Redis for lost data, kept short for the tests


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections():
    """The consumer's database work runs in asgiref's worker thread: close its connection."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def org(transactional_db):
    return make_tenant("Acme")


@pytest.fixture
def own_redis():
    server = OwnRedis().start()
    yield server
    server.stop()


@pytest.fixture
def layer_on_own_redis(own_redis, settings):
    """Point the channel layer (consumers and publishers alike) at `own_redis`."""

    def configure(**overrides) -> None:
        default = settings.CHANNEL_LAYERS["default"]
        config = default["CONFIG"]
        hosts = [{**config["hosts"][0], "address": own_redis.url}]
        config = {**config, "hosts": hosts, "epoch_check_interval": CHECK_S, **overrides}
        settings.CHANNEL_LAYERS = {"default": {**default, "CONFIG": config}}

    return configure


async def restart_empty(server: OwnRedis) -> None:
    await sync_to_async(server.stop)()
    await sync_to_async(server.start)()  # same port, nothing kept


async def test_sockets_get_every_event_after_redis_restarts_empty(org, own_redis, layer_on_own_redis):
    layer_on_own_redis()
    sockets = [(await connect(user))[0] for user in (org.admin, org.member, org.admin)]
    first = await publish(org.org, "document.created", {"id": "before"})
    for ws in sockets:
        assert await receive(ws) == first

    await sync_to_async(own_redis.stop)()
    # Published while Redis is down: stored, but their live sends fail.
    while_down = [await publish(org.org, "document.created", {"id": f"down-{n}"}) for n in range(2)]
    await sync_to_async(own_redis.start)()  # same port, empty: every group membership is gone
    after = [await publish(org.org, "document.created", {"id": f"after-{n}"}) for n in range(18)]

    for ws in sockets:
        # all of them, in order, once each: live or caught up from the store
        assert [(await receive(ws, timeout=10))["data"]["id"] for _ in range(20)] == [
            e["data"]["id"] for e in while_down + after
        ]
        await assert_silent(ws)
    # and live delivery works again, with nothing replayed twice
    last = await publish(org.org, "document.created", {"id": "last"})
    for ws in sockets:
        assert await receive(ws) == last
        await assert_silent(ws)
        await ws.disconnect()


async def test_two_restarts_in_a_row(org, own_redis, layer_on_own_redis):
    layer_on_own_redis()
    ws, _, _ = await connect(org.member)
    sent = []
    for round_ in range(2):
        await restart_empty(own_redis)
        sent += [await publish(org.org, "summary.created", {"id": f"{round_}-{n}"}) for n in range(10)]
        assert [await receive(ws, timeout=10) for _ in range(10)] == sent[-10:]
    await assert_silent(ws)
    await ws.disconnect()


async def test_membership_is_refreshed_before_group_expiry(org, layer_on_own_redis):
    """channels-redis drops a group member group_expiry seconds after it joined (and the whole
    group key expires then): a socket open longer than that would silently stop receiving."""
    layer_on_own_redis(group_expiry=2)
    ws, _, _ = await connect(org.member)
    for n in range(20):  # paced by assert_silent (0.3 s each): 6 s, three times group_expiry
        sent = await publish(org.org, "document.updated", {"id": f"d{n}"})
        assert await receive(ws) == sent
        await assert_silent(ws)
    await ws.disconnect()


async def test_a_socket_that_cannot_rejoin_is_told_to_reconnect(org, own_redis, layer_on_own_redis, monkeypatch):
    layer_on_own_redis()
    ws, _, _ = await connect(org.member)

    async def group_add_fails(self, group, channel):
        raise ConnectionError("redis is gone")

    monkeypatch.setattr(PrecisRedisChannelLayer, "group_add", group_add_fails)
    await restart_empty(own_redis)
    assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": CLOSE_RECONNECT}
    await publish(org.org, "document.created", {"id": "after"})
    assert await ws.receive_nothing(timeout=0.5)  # nothing more on a closed socket
    await ws.disconnect()


class TestLayerAnnouncements:
    """The layer tells its receiving channels (`layer.reconnected`) when Redis may have lost them."""

    @staticmethod
    def layer(own_redis: OwnRedis) -> PrecisRedisChannelLayer:
        return PrecisRedisChannelLayer(
            hosts=[{"address": own_redis.url, "socket_timeout": 15}], epoch_check_interval=CHECK_S
        )

    async def test_after_a_restart_and_not_otherwise(self, own_redis):
        layer = self.layer(own_redis)
        channels = [await layer.new_channel() for _ in range(2)]
        receives = [asyncio.ensure_future(layer.receive(c)) for c in channels]
        done, _ = await asyncio.wait(receives, timeout=5 * CHECK_S)
        assert not done  # a healthy Redis: nothing to announce
        await restart_empty(own_redis)
        results = await asyncio.wait_for(asyncio.gather(*receives), timeout=10)
        assert results == [{"type": "layer.reconnected"}] * 2

    async def test_after_the_reader_failed_while_redis_kept_its_data(self, own_redis, monkeypatch):
        """The same epoch, but the process's pop failed (the connection was lost for a while):
        live messages may have been lost meanwhile, so the channels are told too — once."""
        from channels_redis.core import RedisChannelLayer

        real_pop = RedisChannelLayer.receive_single
        failures = [ConnectionError("connection lost")]

        async def pop_failing_once(self, channel):
            if failures:
                raise failures.pop()
            return await real_pop(self, channel)

        monkeypatch.setattr(RedisChannelLayer, "receive_single", pop_failing_once)
        layer = self.layer(own_redis)
        channel = await layer.new_channel()
        assert await asyncio.wait_for(layer.receive(channel), timeout=10) == {"type": "layer.reconnected"}
        again = asyncio.ensure_future(layer.receive(channel))
        done, _ = await asyncio.wait({again}, timeout=5 * CHECK_S)
        assert not done and not failures
        again.cancel()
