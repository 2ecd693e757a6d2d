"""Sending to the channel layer from sync code that has no event loop of its own.

`async_to_sync(layer.group_send)` from a Celery worker starts a new event loop for every
call, and channels-redis keeps its Redis connections per loop: every event paid for a new
loop and a new Redis connection. A worker process instead keeps one loop in a daemon thread
(`use_background_loop()`, called when a worker starts) and hands each send to it. Inside
daphne, and in the embedded mode, `async_to_sync` already runs on the server's loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync

SEND_TIMEOUT_S = 5.0

_enabled = False
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def use_background_loop() -> None:
    """Send through one long-lived loop per process from now on (worker processes)."""
    global _enabled
    _enabled = True


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime-sender", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def run(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run `await function(*args)` from sync code and return its result (raises its errors)."""
    if not _enabled:
        return async_to_sync(function)(*args)
    future = asyncio.run_coroutine_threadsafe(function(*args), _background_loop())
    try:
        return future.result(timeout=SEND_TIMEOUT_S)
    except TimeoutError:
        future.cancel()
        raise
