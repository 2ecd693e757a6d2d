"""Celery tasks for integrations (queue `integrations`)."""

from celery import shared_task

from jobs.tasks import run_job_task

from . import services


@shared_task(
    name="integrations.run_import_job", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def run_import_job(self, *, org_id: str, job_id: str) -> None:
    """Import an integration's items, or a URL, into documents (jobs.dispatch triggers it).

    A gone or already-started job is a no-op (duplicate delivery); the failure
    rules live in jobs.services.job_run.
    """
    run_job_task(self, org_id, lambda: services.import_job_run(job_id=job_id))


@shared_task(name="integrations.purge_oauth_states", ignore_result=True)
def purge_oauth_states() -> int:
    """Beat: delete OAuth states that were used or have expired (their PKCE verifiers too)."""
    return services.oauth_state_purge()


@shared_task(name="integrations.refresh_tokens", ignore_result=True)
def refresh_tokens() -> dict[str, int]:
    """Beat: refresh OAuth tokens past half their lifetime."""
    return services.refresh_expiring_tokens()


@shared_task(name="integrations.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> str | None:
    """An event webhook's first attempt (or an admin's redelivery), right after commit."""
    from .event_webhooks import deliver

    return deliver(delivery_id)


@shared_task(name="integrations.purge_webhook_deliveries", ignore_result=True)
def purge_webhook_deliveries() -> int:
    """Beat, daily: finished event webhook deliveries past WEBHOOK_DELIVERY_RETENTION_DAYS."""
    from .event_webhooks import purge

    return purge()


@shared_task(name="integrations.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks() -> int:
    """Beat: the event webhook attempts that are due (retries; first attempts the broker missed)."""
    from .event_webhooks import deliver_due

    return deliver_due()
