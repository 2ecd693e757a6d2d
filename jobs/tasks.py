"""Running a job's task (`run_job_task`, used by every job task) and periodic job
maintenance (Celery beat)."""

from collections.abc import Callable

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from organizations.tenancy import org_scope

from . import services

# Redeliveries of a task whose database was unreachable (5 s, 15 s, 45 s, 135 s, 300 s...).
DATABASE_RETRIES = 8


def run_job_task(task: Task, org_id: str, body: Callable[[], None]) -> None:
    """Run a job task's body in the job's org scope.

    If the database is unreachable — typically before the job could even be claimed —
    the task is sent again with a growing delay instead of being acknowledged as failed
    (the job would otherwise wait for the reaper's redispatch, JOB_REDISPATCH_AFTER_S).
    A redelivery is harmless: only a queued job can be claimed.
    """
    try:
        with org_scope(org_id):
            body()
    except (OperationalError, InterfaceError) as exc:
        attempt = task.request.retries + 1
        raise task.retry(exc=exc, countdown=services.retry_delay(attempt), max_retries=DATABASE_RETRIES) from exc


@shared_task(name="jobs.tick", ignore_result=True)
def tick() -> int:
    """Every SCHEDULER_TICK_S from beat, and once from each worker that starts: a scheduling
    round (delayed retries, new capacity) and held-back batch progress (jobs.runtime)."""
    from .runtime import tick as run_tick

    return run_tick()


@shared_task(name="jobs.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict[str, int]:
    """Every 30 s from beat: requeue/fail jobs of dead workers, redispatch lost publishes."""
    return services.job_reap_stale()
