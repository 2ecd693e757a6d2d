"""A channel layer for `bench.websocket --with-fixes layer` only: channels-redis with a
*blocking* Redis connection pool, to measure the change before anyone edits the app.

redis-py 8's asyncio `ConnectionPool` holds at most 100 connections by default and raises
`MaxConnectionsError("Too many connections")` when a 101st command is in flight instead of
waiting; in daphne every consumer's `group_add`/`group_discard`/`receive` shares the pool of
the process, so a burst of sockets connecting or closing crashes consumers (1011) — and a
crash in `disconnect` leaves the channel in its groups until `group_expiry` (a day).
`BlockingConnectionPool` waits for a free connection instead (bounded by `timeout`).
"""

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class BlockingPoolRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("max_connections", 100)
        host.setdefault("timeout", 10)  # seconds to wait for a free connection
        return BlockingConnectionPool.from_url(address, **host)
