"""ASGI app for `bench.websocket --with-fixes ...` only: the app's `config.asgi:application`
with the changes this benchmark recommends, applied in the daphne process to measure them
before anyone edits the app. Which ones: BENCH_WS_FIXES (comma-separated), set by
bench/websocket.py.

- dispatch: channels >= 4.2 `AsyncConsumer.dispatch` (channels/consumer.py:73) awaits
  `aclose_old_connections()` — `sync_to_async(close_old_connections)`, a hop to the one shared
  sync thread — before *every* handler, so each live event costs one thread round trip per
  socket, serialized across all sockets of the process, with the two threads fighting over the
  GIL. `EventsConsumer` reaches the database only through `database_sync_to_async`, which
  already closes old connections around each call, so the hop buys nothing for `event.message`.
- gc-freeze: `gc.freeze()` once the app is loaded: everything imported at start-up (Django, the
  app, their module state) leaves the collector's generations, so collections stop re-scanning it.
- gc-threshold: `gc.set_threshold(50_000, 20, 100)`: a fan-out allocates tasks, futures and
  messages per socket; with the default 700 the young generation is collected every few sockets.
"""

import gc
import os

from config.asgi import application
from realtime.consumers import EventsConsumer

FIXES = set(os.environ.get("BENCH_WS_FIXES", "").split(","))

if "dispatch" in FIXES:
    _dispatch = EventsConsumer.dispatch

    async def dispatch(self, message):
        """Live events skip the hop; connect, receive and disconnect keep channels' behaviour."""
        if message["type"] == "event.message":
            await self.event_message(message)
        else:
            await _dispatch(self, message)

    EventsConsumer.dispatch = dispatch

if "gc-freeze" in FIXES:
    gc.collect()
    gc.freeze()

if "gc-threshold" in FIXES:
    gc.set_threshold(50_000, 20, 100)

__all__ = ["application"]
