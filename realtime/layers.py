"""The channel layer the stack runs on: channels-redis with fixes for redis-py 8 and a cheaper receive.

1. **A cancellation that lands at the wrong moment is swallowed** inside redis-py's blocking
   pop (redis/redis-py#2028): the consumer's `receive()` task then keeps issuing BZPOPMIN for
   ever after its socket closed. Each closed socket would leak a task and a Redis connection
   in the daphne process. `receive_single()` here runs the library's blocking pop in an inner
   task and, when it is cancelled, cancels that task until it has really finished.
2. **A burst of sockets exhausts the connection pool**: redis-py's asyncio `ConnectionPool`
   raises `MaxConnectionsError("Too many connections")` past `max_connections` commands in
   flight instead of waiting, which crashes consumers (close 1011) and, in `disconnect`, leaves
   the channel in its groups for a day. `BlockingConnectionPool` waits for a free connection
   instead, bounded by `timeout`.
3. **Every waiting socket races for a lock with two new tasks per message** in the library's
   `receive()`. Here one reader task per process pops the process's messages and fills each
   channel's buffer; a socket's receive just waits on its buffer.

The socket timeout must stay above channels-redis' 5 s blocking pop (see config/settings/base.py).
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)

# How long to wait for the inner receive to finish after each repeated cancel.
CANCEL_RECHECK_S = 0.05
# After a Redis error, the process's reader waits this long before popping again.
READER_RETRY_S = 1.0


class PrecisRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One reader per event loop (daphne has one; a short-lived loop, e.g. async_to_sync outside
        # a server, gets its own, cancelled with its loop) and per process channel.
        self._readers: dict[tuple[int, str], asyncio.Task] = {}

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel hosts: the library's own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("max_connections", 100)
        host.setdefault("timeout", 10)  # seconds to wait for a free connection
        return BlockingConnectionPool.from_url(address, **host)

    async def receive(self, channel):
        """This process's channels: wait on the channel's buffer, which one reader task per
        process fills. The library instead has every waiting receiver race for a lock with two
        new tasks each time it waits — per socket and message, about a quarter of daphne's CPU
        in fan-out. Cancelling a receive (a socket closing) only cancels its wait."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        self._ensure_reader(self.non_local_name(channel))
        buffer = self.receive_buffer[channel]  # kept while the socket lives: no queue per message
        try:
            return await buffer.get()
        except asyncio.CancelledError:
            if buffer.empty() and self.receive_buffer.get(channel) is buffer:
                del self.receive_buffer[channel]  # the socket is closing: leave no queue behind
            raise

    def _ensure_reader(self, real_channel: str) -> None:
        loop = asyncio.get_running_loop()
        key = (id(loop), real_channel)
        reader = self._readers.get(key)
        if reader is None or reader.done():
            for stale in [k for k, task in self._readers.items() if task.done()]:
                del self._readers[stale]  # readers of loops that have closed
            self._readers[key] = loop.create_task(self._read(real_channel), name="channel-layer-reader")

    async def _read(self, real_channel: str) -> None:
        """Pop the process's messages for ever and put each in its channels' buffers."""
        while True:
            try:
                message_channel, message = await self.receive_single(real_channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis unreachable: sockets stay open and catch up by sequence later
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(READER_RETRY_S)
                continue
            for target in message_channel if isinstance(message_channel, list) else [message_channel]:
                self.receive_buffer[target].put_nowait(message)

    async def receive_single(self, channel):
        """The one blocking pop (by the process's reader), in an inner task: if this is
        cancelled, the inner task is cancelled until it has really finished."""
        inner = asyncio.ensure_future(super().receive_single(channel))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            await _cancel_until_done(inner)
            if channel.endswith("!") and not inner.cancelled() and inner.exception() is None:
                # The pop completed as we were cancelled: hand its message over as the
                # reader would have, so no socket of this process misses it.
                message_channel, message = inner.result()
                for target in message_channel if isinstance(message_channel, list) else [message_channel]:
                    self.receive_buffer[target].put_nowait(message)
            raise


async def _cancel_until_done(task: asyncio.Future) -> None:
    """Cancel `task` until it has finished, even if we are cancelled again meanwhile."""
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait({task}, timeout=CANCEL_RECHECK_S)
        except asyncio.CancelledError:
            continue  # we are being cancelled anyway: keep going until the task is gone
    if not task.cancelled():
        task.exception()  # retrieve it so that asyncio does not log "never retrieved"
