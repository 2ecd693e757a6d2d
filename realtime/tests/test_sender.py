"""realtime.sender: one long-lived loop per worker process for channel-layer sends."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

from realtime import sender


@pytest.fixture
def background_loop(monkeypatch):
    monkeypatch.setattr(sender, "_enabled", False)
    sender.use_background_loop()
    yield
    # monkeypatch restores _enabled; the daemon thread's loop stays for the process


async def where_am_i(tag: str) -> tuple[str, int, str]:
    return tag, id(asyncio.get_running_loop()), threading.current_thread().name


def test_without_the_background_loop_each_call_gets_its_own_loop(monkeypatch):
    monkeypatch.setattr(sender, "_enabled", False)
    first, second = sender.run(where_am_i, "a"), sender.run(where_am_i, "b")
    assert (first[0], second[0]) == ("a", "b")
    assert first[2] != "realtime-sender"


def test_background_loop_is_reused_across_calls_and_threads(background_loop):
    results = [sender.run(where_am_i, "main")]
    worker = threading.Thread(target=lambda: results.append(sender.run(where_am_i, "thread")))
    worker.start()
    worker.join(timeout=10)
    assert [tag for tag, _, _ in results] == ["main", "thread"]
    assert len({loop for _, loop, _ in results}) == 1
    assert {name for _, _, name in results} == {"realtime-sender"}


def test_errors_reach_the_caller(background_loop):
    async def boom():
        raise ValueError("layer refused")

    with pytest.raises(ValueError, match="layer refused"):
        sender.run(boom)


def test_a_stuck_send_times_out_and_is_cancelled(background_loop, monkeypatch):
    monkeypatch.setattr(sender, "SEND_TIMEOUT_S", 0.2)
    cancelled = threading.Event()

    async def stuck():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        sender.run(stuck)
    assert cancelled.wait(timeout=5)


def test_group_send_through_the_background_loop_reaches_redis(background_loop):
    layer = get_channel_layer()

    async def listen_then_receive(channel_holder: list, ready: threading.Event):
        channel = await layer.new_channel()
        await layer.group_add("sender-test", channel)
        channel_holder.append(channel)
        ready.set()
        return await asyncio.wait_for(layer.receive(channel), 10)

    holder: list = []
    ready = threading.Event()
    received: list = []
    listener = threading.Thread(
        target=lambda: received.append(asyncio.run(listen_then_receive(holder, ready))), daemon=True
    )
    listener.start()
    assert ready.wait(timeout=10)
    sender.run(layer.group_send, "sender-test", {"type": "event.message", "n": 1})
    listener.join(timeout=15)
    assert received == [{"type": "event.message", "n": 1}]
    sender.run(layer.group_discard, "sender-test", holder[0])
