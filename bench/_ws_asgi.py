"""ASGI app for `bench.websocket --with-fixes gc-threshold` only: the app's
`config.asgi:application` with a change this benchmark measures, applied in the daphne process
before anyone edits the app. Which ones: BENCH_WS_FIXES (comma-separated), set by
bench/websocket.py.

The app itself now skips channels' `aclose_old_connections` hop per live event
(`EventsConsumer.dispatch`, realtime/consumers.py) and calls `gc.freeze()` at the end of
config/asgi.py, so neither is re-applied here.

- gc-threshold: `gc.set_threshold(50_000, 20, 100)`: a fan-out allocates tasks, futures and
  messages per socket; with the default 700 the young generation is collected every few sockets.
"""

import gc
import os

from config.asgi import application

FIXES = set(os.environ.get("BENCH_WS_FIXES", "").split(","))

if "gc-threshold" in FIXES:
    gc.set_threshold(50_000, 20, 100)

__all__ = ["application"]
