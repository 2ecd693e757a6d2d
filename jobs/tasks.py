"""Periodic job maintenance (Celery beat)."""

from celery import shared_task

from . import services


@shared_task(name="jobs.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict[str, int]:
    """Every 30 s from beat: requeue/fail jobs of dead workers, redispatch lost publishes."""
    return services.job_reap_stale()
