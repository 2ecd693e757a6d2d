"""Celery task for summarize jobs (queue `summaries`)."""

import logging

from celery import shared_task

from organizations.tenancy import org_scope

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="summaries.run_summarize_job", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_summarize_job(*, org_id: str, job_id: str) -> None:
    """Triggered by jobs.dispatch for a queued summarize job.

    Runs inside the job's org scope. If the job row is gone, or already
    started/finished (a duplicate or late delivery), it does nothing. An
    unexpected error marks the job failed (`internal_error`) with no traceback
    in the job; the traceback goes to the worker log.
    """
    from jobs import services as job_services

    with org_scope(org_id):
        try:
            services.summarize_job_run(job_id=job_id)
        except Exception:
            logger.exception("summarize job %s crashed", job_id)
            job_services.job_fail(
                job_id=job_id, code="internal_error", detail="An unexpected error stopped this job; it was logged."
            )
