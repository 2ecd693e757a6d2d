"""Retention of what organizations leave behind (Celery beat, hourly)."""

from celery import shared_task

from .idempotency import idempotency_purge
from .services import registration_claim_purge


@shared_task(name="organizations.purge_idempotency", ignore_result=True)
def purge_idempotency() -> int:
    """Delete Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS (their stored responses too)."""
    return idempotency_purge()


@shared_task(name="organizations.purge_registration_claims", ignore_result=True)
def purge_registration_claims() -> int:
    """Delete registration claims whose link expired (with the password hashes they hold)."""
    return registration_claim_purge()


@shared_task(name="organizations.purge_audit", ignore_result=True)
def purge_audit() -> int:
    """Delete audit entries older than AUDIT_RETENTION_DAYS (daily)."""
    from .audit import purge

    return purge()
