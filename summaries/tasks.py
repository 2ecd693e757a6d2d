"""Celery tasks for summarize (queue `summaries`) and publish (queue `integrations`) jobs.

Both are triggered by jobs.dispatch, run inside the job's org scope, and do
nothing for a gone or already-started job (duplicate or late delivery). The
failure rules live in jobs.services.job_run; database outages in jobs.tasks.run_job_task.
"""

from celery import shared_task

from jobs.tasks import run_job_task

from . import services


@shared_task(
    name="summaries.run_summarize_job", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def run_summarize_job(self, *, org_id: str, job_id: str) -> None:
    run_job_task(self, org_id, lambda: services.summarize_job_run(job_id=job_id))


@shared_task(
    name="summaries.run_publish_job", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def run_publish_job(self, *, org_id: str, job_id: str) -> None:
    run_job_task(self, org_id, lambda: services.publish_job_run(job_id=job_id))
