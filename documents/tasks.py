"""Celery task for ingest jobs (queue `ingest`, on the `io` worker's threads).

Triggered by the scheduler; runs inside the job's org scope; does nothing for a gone or
already-started job (duplicate or late delivery). The extraction itself happens in a
sandboxed child process (documents.sandbox); the failure rules live in
jobs.services.job_run and database outages in jobs.tasks.run_job_task.
"""

from celery import shared_task

from jobs.tasks import run_job_task

from . import ingestion


@shared_task(name="documents.run_ingest_job", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_ingest_job(self, *, org_id: str, job_id: str) -> None:
    run_job_task(self, org_id, lambda: ingestion.ingest_job_run(job_id=job_id))
