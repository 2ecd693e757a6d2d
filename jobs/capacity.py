"""How many jobs each queue's live workers can run at once: what the scheduler fills.

Every Celery worker registers its concurrency for each queue it consumes when it is
ready, refreshes it every REFRESH_S and removes it when it stops. The registry is a
hash per queue in the broker's Redis, beside the queues it describes: an unreachable
broker shows up here, before any job is handed over (BrokerUnavailable, 503). An entry
not refreshed for REGISTRATION_TTL_S (a worker killed without a goodbye) stops counting;
until then the scheduler still counts the dead worker's slots, and the jobs it hands over
for them wait in the broker ahead of every job sent later (a light organization's single
job too), so that window is kept to seconds. Entries
are stamped and aged by Redis's clock: the machines' clocks never matter.
In the embedded mode the capacity is that of the in-process pools (jobs.embedded).
"""

from __future__ import annotations

import redis
from django.conf import settings

from config.celery import app as celery_app
from config.errors import ServiceUnavailable

REFRESH_S = 2.0
REGISTRATION_TTL_S = 3 * REFRESH_S + 1.0  # three refreshes missed
_PREFIX = "precis-capacity:"  # beside the broker's own keys, not the cache's (precis:)

_clients: dict[str, redis.Redis] = {}


class BrokerUnavailable(ServiceUnavailable):
    default_code = "broker_unavailable"
    default_detail = "The job queue (Redis broker) is unavailable; the job was not started. Try again shortly."


def broker_redis() -> redis.Redis:
    """A client of the broker's Redis (one per broker URL and process)."""
    url = celery_app.conf.broker_url
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def register(worker: str, slots: dict[str, int]) -> None:
    """A worker's slots per queue (when it is ready, then with every heartbeat)."""
    client = broker_redis()
    now = _redis_now(client)
    pipe = client.pipeline(transaction=False)
    for queue, count in slots.items():
        pipe.hset(f"{_PREFIX}{queue}", worker, f"{int(count)}|{now:.3f}")
    pipe.execute()


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def unregister(worker: str, queues: list[str]) -> None:
    pipe = broker_redis().pipeline(transaction=False)
    for queue in queues:
        pipe.hdel(f"{_PREFIX}{queue}", worker)
    pipe.execute()


def capacity(queues: list[str]) -> dict[str, int]:
    """Slots per queue of the workers alive now; raises BrokerUnavailable if Redis is down."""
    if settings.EMBEDDED:
        from . import embedded

        return {queue: embedded.capacity(queue) for queue in queues}
    try:
        pipe = broker_redis().pipeline(transaction=False)
        pipe.time()
        for queue in queues:
            pipe.hgetall(f"{_PREFIX}{queue}")
        (seconds, micros), *registrations = pipe.execute()
    except redis.RedisError as exc:
        raise BrokerUnavailable() from exc
    now = seconds + micros / 1e6
    result: dict[str, int] = {}
    for queue, entries in zip(queues, registrations, strict=True):
        total = 0
        for value in entries.values():
            slots, _, seen = value.decode().partition("|")
            if now - float(seen or 0) <= REGISTRATION_TTL_S:
                total += int(slots)
        result[queue] = total
    return result
