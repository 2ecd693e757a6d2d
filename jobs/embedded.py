"""Running jobs inside the serving process (the embedded mode: no Redis, no Celery worker).

The same scheduler hands jobs over, to in-process thread pools instead of Celery: one
of LLM_CONCURRENCY threads for the `llm` queue (calls in flight), one of
INGEST_CONCURRENCY for `ingest` (each waits on a sandboxed extraction process) and one of
EMBEDDED_WORKERS threads for the CPU-bound queues, so none holds another up.
Only the process that called `start()` (the server, `python -m config.serve`) runs
jobs; a management command in the embedded mode leaves its jobs queued for it.

Nothing is lost when the process stops: jobs live in the database. On the next start,
jobs the previous process was running are requeued (as a dead worker's would be) and
jobs it had taken but not started wait again; the tick then hands them out.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from config.celery import app as celery_app

logger = logging.getLogger(__name__)

_pools: dict[str, ThreadPoolExecutor] = {}
_started = threading.Event()
_lock = threading.Lock()


def running() -> bool:
    return _started.is_set()


def pool_size(queue: str) -> int:
    from .scheduler import io_slots

    return io_slots(queue) or settings.EMBEDDED_WORKERS


def capacity(queue: str) -> int:
    return pool_size(queue) if running() else 0


def start() -> None:
    """Recover what a previous process left, then run jobs in this one (idempotent)."""
    from . import runtime, scheduler, services

    with _lock:
        if running():
            return
        celery_app.loader.import_default_modules()  # registers every app's tasks, as a worker would
        counts = services.job_recover_abandoned()
        if any(counts.values()):
            logger.info("recovered jobs of a previous run: %s", counts)
        _started.set()
    runtime.jobs_starting.send(sender=None, queues=list(scheduler.JOB_QUEUES))
    runtime.start_ticker()


def submit(queue: str, task_name: str, kwargs: dict[str, Any]) -> None:
    with _lock:
        pool = _pools.get(queue)
        if pool is None:
            pool = _pools[queue] = ThreadPoolExecutor(max_workers=pool_size(queue), thread_name_prefix=f"job-{queue}")

    def run() -> None:
        close_old_connections()
        try:
            celery_app.tasks[task_name].apply(kwargs=kwargs, throw=False)
        except Exception:
            logger.exception("in-process task %s failed", task_name)
        finally:
            close_old_connections()

    pool.submit(run)
