"""What keeps jobs moving besides their own events: the tick, and workers' capacity.

- `tick()`: a scheduling round that does not wait for a busy lock, plus the batch
  progress events that throttling held back; first, the jobs of processes that stopped
  beating go back to the queue (jobs.holders). Celery beat runs it every
  SCHEDULER_TICK_S (task `jobs.tick`), each worker once when it is ready, and the
  embedded server from a thread. It is what hands out delayed retries (`not_before`).
- Each Celery worker registers its slots for the queues it consumes (jobs.capacity)
  when ready, refreshes them with its heartbeat and removes them when it stops.
- `jobs_starting` is sent, with the queues, when a worker or the embedded server is about
  to run jobs: apps warm up what their jobs need (documents: the extraction sandbox).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.dispatch import Signal

from . import capacity, scheduler

jobs_starting = Signal()  # sender: None; queues: list[str]

logger = logging.getLogger(__name__)

_ticker: threading.Thread | None = None


def tick() -> int:
    """Jobs of processes that stopped beating taken back (jobs.holders), then one round
    without waiting; returns how many jobs were handed over."""
    from .batches import batch_flush_progress
    from .services import job_take_back_from_dead_holders

    try:
        job_take_back_from_dead_holders()
    except Exception:  # e.g. a database blip: the next tick looks again, the reaper still runs
        logger.exception("tick: taking back the jobs of stopped processes failed")
    sent = 0
    try:
        sent = len(scheduler.schedule(wait=False))
    except capacity.BrokerUnavailable:
        logger.warning("tick: broker unavailable; jobs keep waiting")
    batch_flush_progress()
    return sent


def start_ticker() -> None:
    """The embedded server's tick, from a daemon thread (no beat runs there)."""
    global _ticker
    if _ticker is not None:
        return

    def loop() -> None:
        from django.db import close_old_connections

        from integrations.event_webhooks import deliver_due

        swept = time.monotonic()
        while True:
            try:
                tick()
                if time.monotonic() - swept >= settings.WEBHOOK_SWEEP_S:  # what beat does in the stack
                    swept = time.monotonic()
                    deliver_due()
            except Exception:
                logger.exception("tick failed")
            finally:
                close_old_connections()
            time.sleep(settings.SCHEDULER_TICK_S)

    _ticker = threading.Thread(target=loop, name="precis-tick", daemon=True)
    _ticker.start()


# -- Celery workers ----------------------------------------------------------------
_registration: tuple[str, dict[str, int]] | None = None


def worker_ready(consumer) -> None:
    """Register the worker's slots and ask for a round (as a task: a prefork parent must
    not open database connections its children would inherit)."""
    global _registration
    consumed = consumer.app.amqp.queues.consume_from or consumer.app.amqp.queues
    queues = [name for name in consumed if name in scheduler.JOB_QUEUES]
    if not queues:
        return
    pool = consumer.pool
    processes = int(getattr(pool, "num_processes", None) or getattr(pool, "limit", None) or 1)
    threads = "thread" in type(pool).__module__
    # A threads worker's queues each get their setting's slots, but never more than its threads
    # (`--concurrency` may say fewer): a slot counted with no thread behind it holds jobs in the
    # broker, ahead of the next organization's.
    slots = {queue: min((scheduler.io_slots(queue) if threads else None) or processes, processes) for queue in queues}
    _registration = (f"{consumer.hostname}:{os.getpid()}", slots)
    capacity.register(*_registration)
    logger.info("worker %s: slots %s", _registration[0], slots)
    jobs_starting.send(sender=None, queues=queues)
    consumer.app.send_task("jobs.tick", queue="default")


def worker_refresh() -> None:
    """With the worker's heartbeat: its registration stays fresh."""
    if _registration:
        capacity.register(*_registration)


def worker_stopped() -> None:
    if _registration:
        capacity.unregister(_registration[0], list(_registration[1]))
