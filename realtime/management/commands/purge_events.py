"""manage.py purge_events [--older-than-hours N] [--dry-run]"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from realtime import events
from realtime.models import StoredEvent


class Command(BaseCommand):
    help = "Delete stored realtime events past their retention (REALTIME_EVENT_RETENTION_HOURS)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-hours", type=float, default=None)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, **options):
        hours = options["older_than_hours"]
        hours = settings.REALTIME_EVENT_RETENTION_HOURS if hours is None else hours
        if options["dry_run"]:
            cutoff = timezone.now() - timedelta(hours=hours)
            count = StoredEvent.unscoped_objects.filter(created_at__lt=cutoff).count()
            self.stdout.write(f"would delete {count} event(s) older than {hours:g} h")
            return
        self.stdout.write(f"deleted {events.purge_events(older_than_hours=hours)} event(s) older than {hours:g} h")
