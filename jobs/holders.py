"""Whether the process holding a running job's lease is still alive: a beat per process.

A lease (jobs.lease) lasts JOB_LEASE_S, long enough that a database blip or a slow renewal
does not cost a running job its attempt; waiting it out is far too slow when the process
holding it is simply gone (SIGKILL, the OOM killer, a lost machine). So every process that
runs jobs also beats every HOLDER_BEAT_S, under a name of its own (`current()`) that the job
row keeps as `lease_holder` when the process claims the job. The beat is a key in the
broker's Redis that expires HOLDER_DEAD_AFTER_S after the last beat, by Redis's clock, so the
clocks of the machines never matter.

- `gone(name)`: for a delivery of a job that is already running (a prefork parent hands a
  dead child's task back at once; or a duplicate). It watches the beat for one
  HOLDER_DEAD_AFTER_S: a live process beats within HOLDER_BEAT_S (the delivery stands down),
  a dead one does not (the delivery takes the job over, jobs.services.job_take_over).
- `dead(names)`: for the tick, which must not wait. A holder is dead when its beat is missing
  at two ticks at least HOLDER_DEAD_AFTER_S apart: beats lost with a Redis restart or outage
  come back within one HOLDER_BEAT_S, so live processes are not mistaken for dead ones.

If Redis cannot be reached nobody is declared dead: the lease and the reaper decide, as they
always did. A process that cannot beat for HOLDER_DEAD_AFTER_S (frozen whole) is taken for
dead; its attempt then finds its lease gone at its next renewal and stops.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable

import redis
from django.conf import settings

from . import capacity

logger = logging.getLogger(__name__)

HOLDER_BEAT_S = 1.0
HOLDER_DEAD_AFTER_S = 5.0
_WATCH_S = 0.2  # how often `gone()` looks at a beat
_BEAT = "precis-holder:"  # beside the broker's keys and the capacity registry
_SUSPECT = "precis-holder-missing:"  # a tick found the beat missing; its age is the key's
_SUSPECT_TTL_MS = int(4 * HOLDER_DEAD_AFTER_S * 1000)


class _Pulse:
    """This process's name as a lease holder, and the daemon thread that beats for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._name = ""

    def current(self) -> str:
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or a forked child)
                self._pid = os.getpid()
                self._name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
                threading.Thread(target=self._run, args=(self._name,), name="lease-holder-beat", daemon=True).start()
            return self._name

    @staticmethod
    def _run(name: str) -> None:
        failing = False
        for beat in itertools.count():
            try:
                capacity.broker_redis().set(_BEAT + name, beat, px=int(HOLDER_DEAD_AFTER_S * 1000))
                failing = False
            except redis.RedisError:
                if not failing:  # once per outage
                    logger.warning("lease holder %s: beat failed; retrying every %s s", name, HOLDER_BEAT_S)
                failing = True
            time.sleep(HOLDER_BEAT_S)


_pulse = _Pulse()


def current() -> str:
    """The name this process claims jobs under, beating from now on; "" in the embedded
    mode (one process: the next start requeues what it ran, jobs.services.job_recover_abandoned)."""
    if settings.EMBEDDED:
        return ""
    return _pulse.current()


def gone(name: str) -> bool:
    """Has the process `name` stopped beating? Watches its beat for HOLDER_DEAD_AFTER_S and
    answers False as soon as it beats. False when Redis cannot tell."""
    if not name or settings.EMBEDDED:
        return False
    client = capacity.broker_redis()
    deadline = time.monotonic() + HOLDER_DEAD_AFTER_S
    try:
        first = client.get(_BEAT + name)
        while time.monotonic() < deadline:
            time.sleep(_WATCH_S)
            beat = client.get(_BEAT + name)
            if beat is not None and beat != first:
                return False
    except redis.RedisError:
        logger.warning("cannot tell whether lease holder %s is alive (Redis unavailable)", name)
        return False
    return True


def dead(names: Iterable[str]) -> set[str]:
    """Of these holders, those whose beat was already missing at a tick HOLDER_DEAD_AFTER_S
    ago or more and still is. Empty when Redis cannot tell."""
    if settings.EMBEDDED:
        return set()
    names = sorted({name for name in names if name})
    if not names:
        return set()
    client = capacity.broker_redis()
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.exists(_BEAT + name)
        beating = pipe.execute()
        missing = [name for name, beats in zip(names, beating, strict=True) if not beats]
        pipe = client.pipeline(transaction=False)
        for name in missing:
            pipe.set(_SUSPECT + name, 1, nx=True, px=_SUSPECT_TTL_MS)
            pipe.pttl(_SUSPECT + name)
        for name, beats in zip(names, beating, strict=True):
            if beats:
                pipe.delete(_SUSPECT + name)
        answers = pipe.execute()
    except redis.RedisError:
        logger.warning("cannot tell whether lease holders are alive (Redis unavailable)")
        return set()
    remaining = answers[1 : 2 * len(missing) : 2]  # each PTTL: how long the suspicion has left
    return {
        name
        for name, ttl in zip(missing, remaining, strict=True)
        if ttl >= 0 and _SUSPECT_TTL_MS - ttl >= HOLDER_DEAD_AFTER_S * 1000
    }
