"""Stored-event retention (Celery beat, hourly)."""

from celery import shared_task

from . import events


@shared_task(name="realtime.purge_events", ignore_result=True)
def purge_events() -> int:
    """Delete stored events older than REALTIME_EVENT_RETENTION_HOURS."""
    return events.purge_events()
