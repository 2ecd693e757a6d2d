"""The stack's channel layer (realtime/layers.py) on the real Redis."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from realtime.layers import PrecisRedisChannelLayer

pytestmark = pytest.mark.asyncio


def layer_from_settings(**host_overrides) -> PrecisRedisChannelLayer:
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    hosts = [{**config["hosts"][0], **host_overrides}]
    return PrecisRedisChannelLayer(**{**config, "hosts": hosts, "prefix": "precis-ws-test"})


async def test_settings_use_this_layer():
    layer = get_channel_layer()
    assert isinstance(layer, PrecisRedisChannelLayer)
    # The socket timeout must outlast channels-redis' blocking pop, or every quiet
    # consumer dies with a redis TimeoutError (close 1011) after 5 s.
    assert layer.hosts[0]["socket_timeout"] > layer.brpop_timeout


async def test_a_receive_cancelled_at_any_moment_finishes():
    """redis-py swallows a cancellation that lands at one moment of the blocking pop
    (redis/redis-py#2028); the library's receive then loops for ever. Cancel at every
    step of the receive's start-up and require each to finish promptly."""
    layer = layer_from_settings()
    await layer.new_channel()  # warm the connection pool
    outcomes = []
    for steps in range(40):
        channel = await layer.new_channel()
        receive = asyncio.ensure_future(layer.receive(channel))
        for _ in range(steps):
            await asyncio.sleep(0)  # let the receive advance one step
        receive.cancel()
        done, _ = await asyncio.wait({receive}, timeout=3)
        outcomes.append("finished" if done else "still running")
        if not done:
            receive.cancel()
    assert outcomes == ["finished"] * 40
    assert all(task.cancelled() for task in [receive])
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        await asyncio.wait({task}, timeout=1)
    assert [task for task in leftovers if not task.done()] == []


async def test_quiet_receive_outlives_the_blocking_pop():
    layer = layer_from_settings()
    channel = await layer.new_channel()
    receive = asyncio.ensure_future(layer.receive(channel))
    # Quiet for longer than one blocking pop (5 s): with redis-py's default 5 s socket
    # timeout the receive would fail here instead of waiting on.
    done, _ = await asyncio.wait({receive}, timeout=layer.brpop_timeout + 0.5)
    assert not done
    await layer.send(channel, {"type": "hello"})
    assert await asyncio.wait_for(receive, timeout=5) == {"type": "hello"}


async def test_a_burst_beyond_the_pool_waits_instead_of_failing():
    layer = layer_from_settings(max_connections=3)
    channels = [await layer.new_channel() for _ in range(60)]
    # 60 concurrent commands on 3 connections: redis-py's default pool raises
    # "Too many connections"; the blocking pool queues them.
    await asyncio.gather(*(layer.group_add("burst", channel) for channel in channels))
    await layer.group_send("burst", {"type": "ping"})
    received = await asyncio.gather(*(asyncio.wait_for(layer.receive(c), 10) for c in channels))
    assert received == [{"type": "ping"}] * 60
    await asyncio.gather(*(layer.group_discard("burst", channel) for channel in channels))
    await layer.flush()


async def test_a_pop_that_completes_as_its_receiver_is_cancelled_still_reaches_the_others(monkeypatch):
    """Whichever local receiver holds the receive lock pops for the whole process. If it is
    cancelled (its socket closed) just as its pop returned, the message must still reach the
    process's other channels."""
    from channels_redis.core import RedisChannelLayer

    layer = layer_from_settings()
    closing, staying = await layer.new_channel(), await layer.new_channel()
    popped = asyncio.Event()

    queued = [([staying], {"type": "hello"})]  # one message on the process's queue

    popping = asyncio.Event()

    async def pop_that_returns_when_told(self, channel):
        popping.set()
        await popped.wait()
        if not queued:
            await asyncio.Event().wait()  # nothing more arrives
        return queued.pop()

    monkeypatch.setattr(RedisChannelLayer, "receive_single", pop_that_returns_when_told)
    holder = asyncio.ensure_future(layer.receive(closing))  # first in: takes the lock and pops
    await asyncio.wait_for(popping.wait(), timeout=5)
    other = asyncio.ensure_future(layer.receive(staying))
    for _ in range(5):
        await asyncio.sleep(0)  # the other receiver waits on the lock and its buffer
    popped.set()
    await asyncio.sleep(0)  # the pop completes...
    holder.cancel()  # ...and the cancel lands before the holder resumes with its message
    done, _ = await asyncio.wait({holder}, timeout=5)
    assert done and holder.cancelled()
    assert await asyncio.wait_for(other, timeout=5) == {"type": "hello"}
