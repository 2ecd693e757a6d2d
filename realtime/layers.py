"""The channel layer the stack runs on: channels-redis with two fixes for redis-py 8.

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

The socket timeout must stay above channels-redis' 5 s blocking pop (see config/settings/base.py).
"""

from __future__ import annotations

import asyncio

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

# How long to wait for the inner receive to finish after each repeated cancel.
CANCEL_RECHECK_S = 0.05


class PrecisRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel hosts: the library's own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("max_connections", 100)
        host.setdefault("timeout", 10)  # seconds to wait for a free connection
        return BlockingConnectionPool.from_url(address, **host)

    async def receive_single(self, channel):
        """The one blocking pop (done by whichever receiver holds the receive lock), in an
        inner task: if this is cancelled, the inner task is cancelled until it has really
        finished. Wrapping only here — not every receive() — adds nothing per socket and
        message."""
        inner = asyncio.ensure_future(super().receive_single(channel))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            await _cancel_until_done(inner)
            if channel.endswith("!") and not inner.cancelled() and inner.exception() is None:
                # The pop completed as we were cancelled: hand its message over as
                # receive() would have, so no socket of this process misses it.
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
