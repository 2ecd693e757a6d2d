"""The publisher-side change bench/websocket.py recommends, for measuring it in-process.

`realtime.events.send_now` calls `async_to_sync(layer.group_send)(...)`. Outside an event
loop, asgiref runs each call on a *new* event loop (in a fresh one-off thread), and
channels-redis keys its connection pools by event loop, so every publish connects to Redis
(connect, HELLO, CLIENT SETINFO — with redis-py 8 also an `importlib.metadata.version("redis")`
lookup per connection), runs group_send, and closes the connection again. One long-lived loop
per process keeps the pool: `PublisherLoop.call(layer.group_send(...))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class PublisherLoop:
    """One event loop in a daemon thread; coroutines are run on it and waited for."""

    def __init__(self):
        self.calls = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="publisher-loop", daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout: float = 10):
        self.calls += 1
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()  # channels-redis closes its pool of this loop here


@contextlib.contextmanager
def persistent_group_send():
    """While active, `realtime.events.send_now` runs group_send on one long-lived loop."""
    from realtime import events

    publisher = PublisherLoop()
    original = events.async_to_sync
    events.async_to_sync = lambda fn: lambda *args, **kwargs: publisher.call(fn(*args, **kwargs))
    try:
        yield publisher
    finally:
        events.async_to_sync = original
        publisher.close()
