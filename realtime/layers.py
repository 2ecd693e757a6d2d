"""The channel layer the stack runs on: channels-redis with fixes for redis-py 8, a cheaper receive,
and word to the consumers when Redis may have lost their groups.

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
4. **Group membership lives only in Redis**, added once when a socket connects: a Redis that
   restarts empty (or is flushed, or fails over) forgets every group, and the sockets would
   silently stop receiving. Next to each reader, a watch reads a key of ours in Redis every
   `epoch_check_interval` seconds (its "epoch", recreated with a new value once it is gone) and
   notices the reader's failures; when the epoch changed, or Redis answers again after a failure,
   every channel receiving in this process gets `{"type": "layer.reconnected"}`, in order with
   its other messages: the consumer joins its groups again and catches up from the event store
   (realtime/consumers.py). Nothing on the path of a message changes. After a restart every
   idle pooled connection is dead: each command gets one immediate retry on a new connection
   (redis-py's own clients retry by default; with the pool channels-redis passes, none does),
   or the first commands of every process after a restart would fail (a lost live event, a
   failed rejoin).
5. **Each event loop gets its own process channel.** The library names every channel of a
   layer after one client prefix, so two loops (daphne's, and a short-lived one of
   `async_to_sync` outside a server) would pop the same Redis list under one `asyncio.Lock`
   bound to whichever loop took it first ("bound to a different event loop"), and could hand
   one loop's message to a queue of the other. `new_channel()` here names channels after a
   prefix of the running loop's own.

The socket timeout must stay above channels-redis' 5 s blocking pop (see config/settings/base.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

# How long to wait for the inner receive to finish after each repeated cancel.
CANCEL_RECHECK_S = 0.05
# After a Redis error, the process's reader waits this long before popping again.
READER_RETRY_S = 1.0
# How often each process checks that Redis still holds its data (the epoch key), by default.
EPOCH_CHECK_S = 5.0
# What a receiving channel is told when Redis may have lost its groups and messages.
RECONNECTED_TYPE = "layer.reconnected"


class PrecisRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, epoch_check_interval: float = EPOCH_CHECK_S, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_check_interval = epoch_check_interval
        # One reader per event loop (daphne has one; a short-lived loop, e.g. async_to_sync outside
        # a server, gets its own, cancelled with its loop) and per process channel.
        self._readers: dict[tuple[int, str], asyncio.Task] = {}
        # The channels receiving through each reader: told when Redis may have lost their groups.
        self._listening: dict[tuple[int, str], set[str]] = {}
        # Each event loop's client prefix (see 5.).
        self._loop_prefixes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = weakref.WeakKeyDictionary()

    async def new_channel(self, prefix="specific"):
        loop = asyncio.get_running_loop()
        if loop not in self._loop_prefixes:
            self._loop_prefixes[loop] = uuid.uuid4().hex
        return f"{prefix}.{self._loop_prefixes[loop]}!{uuid.uuid4().hex}"

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel hosts: the library's own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("max_connections", 100)
        host.setdefault("timeout", 10)  # seconds to wait for a free connection
        host.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))  # see 4.
        return BlockingConnectionPool.from_url(address, **host)

    async def receive(self, channel):
        """This process's channels: wait on the channel's buffer, which one reader task per
        process fills. The library instead has every waiting receiver race for a lock with two
        new tasks each time it waits — per socket and message, about a quarter of daphne's CPU
        in fan-out. Cancelling a receive (a socket closing) only cancels its wait."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        listening = self._ensure_reader(self.non_local_name(channel))
        listening.add(channel)
        buffer = self.receive_buffer[channel]  # kept while the socket lives: no queue per message
        try:
            return await buffer.get()
        except asyncio.CancelledError:
            listening.discard(channel)
            if buffer.empty() and self.receive_buffer.get(channel) is buffer:
                del self.receive_buffer[channel]  # the socket is closing: leave no queue behind
            raise

    def _ensure_reader(self, real_channel: str) -> set[str]:
        """Start this loop's reader if it is not running; the set of channels it serves."""
        loop = asyncio.get_running_loop()
        key = (id(loop), real_channel)
        reader = self._readers.get(key)
        if reader is None or reader.done():
            for stale in [k for k, task in self._readers.items() if task.done() and k != key]:
                del self._readers[stale]  # readers of loops that have closed
                self._listening.pop(stale, None)
            listening = self._listening.setdefault(key, set())
            self._readers[key] = loop.create_task(self._read(real_channel, listening), name="channel-layer-reader")
        return self._listening[key]

    async def _read(self, real_channel: str, listening: set[str]) -> None:
        """Pop the process's messages for ever and put each in its channels' buffers."""
        failed = asyncio.Event()
        watch = asyncio.get_running_loop().create_task(
            self._watch_epoch(listening, failed), name="channel-layer-epoch-watch"
        )
        try:
            while True:
                try:
                    message_channel, message = await self.receive_single(real_channel)
                except asyncio.CancelledError:
                    raise
                except Exception:  # Redis unreachable: the watch tells the channels once it is back
                    logger.warning("channel layer receive failed; retrying", exc_info=True)
                    failed.set()
                    await asyncio.sleep(READER_RETRY_S)
                    continue
                for target in message_channel if isinstance(message_channel, list) else [message_channel]:
                    self.receive_buffer[target].put_nowait(message)
        finally:
            watch.cancel()

    async def _watch_epoch(self, listening: set[str], reader_failed: asyncio.Event) -> None:
        """Tell the reader's channels when Redis may have lost their groups or messages: its
        epoch changed (restarted empty, flushed, failed over to an empty replica, key evicted),
        or it answers again after the reader or this watch failed (a popped message may have
        been lost with the connection). The first check only takes note of the epoch."""
        known: list[bytes] | None = None
        suspect = False
        while True:
            try:
                epochs = await _finished_if_cancelled(self._epochs())
            except asyncio.CancelledError:
                raise
            except Exception:
                if not suspect:
                    logger.warning("channel layer epoch check failed; retrying", exc_info=True)
                suspect = True  # Redis unreachable: catch up once it answers, whatever it holds
            else:
                if suspect or (known is not None and epochs != known):
                    self._announce_reconnected(listening)
                known, suspect = epochs, False
            with contextlib.suppress(TimeoutError):
                wait = READER_RETRY_S if suspect else self.epoch_check_interval
                await asyncio.wait_for(reader_failed.wait(), wait)
            if reader_failed.is_set():
                reader_failed.clear()
                suspect = True

    async def _epochs(self) -> list[bytes]:
        """Each host's epoch: a random value kept under a key of ours, created when missing.
        Redis loses it with everything else (groups included); the value then changes."""
        key = f"{self.prefix}:epoch"
        epochs = []
        for index in range(self.ring_size):
            connection = self.connection(index)
            epoch = await connection.get(key)
            if epoch is None:
                await connection.set(key, uuid.uuid4().hex, nx=True)  # the first process to notice
                epoch = await connection.get(key)
            epochs.append(epoch)
        return epochs

    def _announce_reconnected(self, listening: set[str]) -> None:
        logger.warning("channel layer: Redis may have lost groups; %d channels rejoin and catch up", len(listening))
        for channel in list(listening):
            self.receive_buffer[channel].put_nowait({"type": RECONNECTED_TYPE})

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


async def _finished_if_cancelled(awaitable):
    """Await `awaitable` in an inner task that, if we are cancelled, is cancelled until it has
    really finished (a redis-py command can swallow a cancellation, redis/redis-py#2028)."""
    inner = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        await _cancel_until_done(inner)
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
