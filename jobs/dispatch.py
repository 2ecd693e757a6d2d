"""Handing jobs to workers: Celery in the stack, a thread pool in the embedded mode.

Jobs reach their task by name (`TASKS`), so this module imports no feature
app. Dispatch happens after the job row is committed; if the broker cannot
take the message, the job is marked failed (`broker_unavailable`) and the API
answers 503, so no job is left queued with nobody to run it. A publish lost
between commit and enqueue (a crash in between) is picked up by the reaper.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from config.celery import app as celery_app
from config.errors import ServiceUnavailable

from .models import Job

logger = logging.getLogger(__name__)

# kind → (task name, queue). Feature apps own the task bodies.
TASKS: dict[str, tuple[str, str]] = {
    Job.Kind.SUMMARIZE: ("summaries.run_summarize_job", "summaries"),
    Job.Kind.IMPORT: ("integrations.run_import_job", "integrations"),
    Job.Kind.PUBLISH: ("summaries.run_publish_job", "integrations"),
}

_embedded_pool: ThreadPoolExecutor | None = None


def queue_for(kind: str) -> str:
    return TASKS[kind][1]


def job_dispatch(job: Job, *, countdown: float | None = None) -> None:
    """Send the job's task now (call after the job row is committed)."""
    task_name, queue = TASKS[job.kind]
    kwargs: dict[str, Any] = {"org_id": str(job.org_id), "job_id": str(job.pk)}
    # dispatched_at is when the task is due: the reaper never re-sends a delayed retry early.
    due = timezone.now() + timedelta(seconds=countdown or 0)
    if settings.EMBEDDED:
        _run_in_process(task_name, kwargs, countdown)
        Job.unscoped_objects.filter(pk=job.pk).update(dispatched_at=due)
        return
    try:
        result = celery_app.send_task(
            task_name,
            kwargs=kwargs,
            queue=queue,
            countdown=countdown,
            retry=True,
            retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
        )
    except (KombuOperationalError, OSError, ConnectionError) as exc:
        raise BrokerUnavailable() from exc
    Job.unscoped_objects.filter(pk=job.pk).update(dispatched_at=due, celery_task_id=result.id)


class BrokerUnavailable(ServiceUnavailable):
    default_code = "broker_unavailable"
    default_detail = "The job queue (Redis broker) is unavailable; the job was not started. Try again shortly."


def job_dispatch_or_fail(job: Job) -> None:
    """Dispatch a freshly committed job; on a broker outage mark it failed and raise 503."""
    from .services import job_fail

    try:
        job_dispatch(job)
    except BrokerUnavailable:
        logger.error("broker unavailable: job %s marked failed", job.pk)
        job_fail(job_id=job.pk, code="broker_unavailable", detail=str(BrokerUnavailable.default_detail))
        raise


def dispatch_on_commit(job: Job) -> None:
    """For callers inside a transaction that cannot answer 503 (commands, tasks):
    dispatch after commit; a broker outage leaves the job queued for the reaper."""

    def send() -> None:
        try:
            job_dispatch(job)
        except BrokerUnavailable:
            logger.warning("broker unavailable; job %s stays queued for the reaper", job.pk)

    transaction.on_commit(send)


# -- embedded mode ---------------------------------------------------------------
def _run_in_process(task_name: str, kwargs: dict[str, Any], countdown: float | None) -> None:
    global _embedded_pool
    if _embedded_pool is None:
        celery_app.loader.import_default_modules()  # registers every app's tasks, as a worker would
        _embedded_pool = ThreadPoolExecutor(max_workers=settings.EMBEDDED_WORKERS, thread_name_prefix="precis-job")

    def run() -> None:
        close_old_connections()
        try:
            celery_app.tasks[task_name].apply(kwargs=kwargs, throw=False)
        except Exception:
            logger.exception("in-process task %s failed", task_name)
        finally:
            close_old_connections()

    if countdown:
        timer = threading.Timer(min(countdown, 60), _embedded_pool.submit, args=(run,))
        timer.daemon = True
        timer.start()
    else:
        _embedded_pool.submit(run)
