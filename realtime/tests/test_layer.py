"""The stack's channel layer (realtime/layers.py) on the real Redis."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from realtime.layers import PrecisRedisChannelLayer


def layer_from_settings(**host_overrides) -> PrecisRedisChannelLayer:
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    hosts = [{**config["hosts"][0], **host_overrides}]
    return PrecisRedisChannelLayer(**{**config, "hosts": hosts, "prefix": "precis-ws-test"})


@pytest.mark.asyncio
async def test_settings_use_this_layer():
    layer = get_channel_layer()
    assert isinstance(layer, PrecisRedisChannelLayer)
    # The socket timeout must outlast channels-redis' blocking pop, or every quiet
    # consumer dies with a redis TimeoutError (close 1011) after 5 s.
    assert layer.hosts[0]["socket_timeout"] > layer.brpop_timeout


def reader_of(layer: PrecisRedisChannelLayer, channel: str) -> asyncio.Task:
    return layer._readers[(id(asyncio.get_running_loop()), layer.non_local_name(channel))]


@pytest.mark.asyncio
async def test_the_reader_cancelled_at_any_moment_finishes():
    """redis-py swallows a cancellation that lands at one moment of the blocking pop
    (redis/redis-py#2028); the library's receive then loops for ever. Cancel the process's
    reader at every step of its start-up and require each to finish promptly."""
    layer = layer_from_settings()
    await layer.new_channel()
    outcomes = []
    for steps in range(40):
        channel = await layer.new_channel()
        receive = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)  # the receive starts the reader
        reader = reader_of(layer, channel)
        for _ in range(steps):
            await asyncio.sleep(0)  # let the reader advance one step
        reader.cancel()
        receive.cancel()
        done, _ = await asyncio.wait({reader, receive}, timeout=3)
        outcomes.append("finished" if len(done) == 2 else "still running")
    assert outcomes == ["finished"] * 40
    assert layer.receive_buffer == {}  # cancelled receives leave no buffers behind


@pytest.mark.asyncio
async def test_a_closing_socket_does_not_disturb_the_others():
    layer = layer_from_settings()
    closing, staying = await layer.new_channel(), await layer.new_channel()
    waits = [asyncio.ensure_future(layer.receive(c)) for c in (closing, staying)]

    async def both_waiting() -> None:
        while not all(c in layer.receive_buffer for c in (closing, staying)):  # each is at its buffer
            await asyncio.sleep(0)  # one loop step at a time, bounded by the deadline below

    await asyncio.wait_for(both_waiting(), timeout=5)
    waits[0].cancel()
    await layer.send(staying, {"type": "still here"})
    assert await asyncio.wait_for(waits[1], timeout=5) == {"type": "still here"}
    assert not reader_of(layer, staying).done()


@pytest.mark.asyncio
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


@pytest.mark.asyncio
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


@pytest.mark.asyncio
async def test_a_pop_that_completes_as_the_reader_is_cancelled_still_reaches_its_channel(monkeypatch):
    """If the process's reader is cancelled just as its pop returned (e.g. at shutdown of a
    loop), the popped message is still put in its channel's buffer."""
    from channels_redis.core import RedisChannelLayer

    layer = layer_from_settings()
    channel = await layer.new_channel()
    popping, popped = asyncio.Event(), asyncio.Event()
    queued = [([channel], {"type": "hello"})]  # one message on the process's queue

    async def pop_that_returns_when_told(self, real_channel):
        popping.set()
        await popped.wait()
        if not queued:
            await asyncio.Event().wait()  # nothing more arrives
        return queued.pop()

    monkeypatch.setattr(RedisChannelLayer, "receive_single", pop_that_returns_when_told)
    receive = asyncio.ensure_future(layer.receive(channel))
    await asyncio.wait_for(popping.wait(), timeout=5)
    reader = reader_of(layer, channel)
    popped.set()
    await asyncio.sleep(0)  # the pop completes...
    reader.cancel()  # ...and the cancel lands before the reader resumes with its message
    done, _ = await asyncio.wait({reader}, timeout=5)
    assert done and reader.cancelled()
    assert await asyncio.wait_for(receive, timeout=5) == {"type": "hello"}


@pytest.mark.asyncio
async def test_one_reader_per_event_loop_and_none_left_by_closed_loops():
    """A receive on a short-lived loop (async_to_sync outside a server) gets a reader of its
    own, cancelled with that loop; it must not replace the server loop's reader, or the server
    loop would start a second one at its next receive (one more per health check)."""
    layer = layer_from_settings()

    async def roundtrip() -> dict:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "ping"})
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    assert await roundtrip() == {"type": "ping"}  # this loop's reader
    for _ in range(3):
        assert await asyncio.to_thread(asyncio.run, roundtrip()) == {"type": "ping"}
        assert await roundtrip() == {"type": "ping"}
    here = asyncio.get_running_loop()
    readers = [task for task in asyncio.all_tasks(here) if task.get_name() == "channel-layer-reader"]
    assert len(readers) == 1
    assert len(layer._readers) <= 2  # this loop's, and at most the last closed loop's (done)


@pytest.mark.asyncio
async def test_each_event_loop_pops_its_own_process_channel():
    """Two loops popping one Redis list would share one asyncio.Lock bound to the first loop
    that waited on it ("bound to a different event loop" in the other's reader)."""
    layer = layer_from_settings()
    here = layer.non_local_name(await layer.new_channel())
    again = layer.non_local_name(await layer.new_channel())
    elsewhere = await asyncio.to_thread(asyncio.run, layer.new_channel())
    assert here == again
    assert layer.non_local_name(elsewhere) != here
