"""Celery tasks for summarize (queue `summaries`) and publish (queue `integrations`) jobs.

Both are triggered by jobs.dispatch, run inside the job's org scope, and do
nothing for a gone or already-started job (duplicate or late delivery). The
failure rules live in jobs.services.job_run.
"""

from celery import shared_task

from organizations.tenancy import org_scope

from . import services


@shared_task(name="summaries.run_summarize_job", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_summarize_job(*, org_id: str, job_id: str) -> None:
    with org_scope(org_id):
        services.summarize_job_run(job_id=job_id)


@shared_task(name="summaries.run_publish_job", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_publish_job(*, org_id: str, job_id: str) -> None:
    with org_scope(org_id):
        services.publish_job_run(job_id=job_id)
