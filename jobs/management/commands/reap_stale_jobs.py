"""manage.py reap_stale_jobs [--dry-run] — run the job reconciler once (beat runs it every 30 s)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_reap_stale


class Command(BaseCommand):
    help = "Requeue or fail jobs whose worker died; re-dispatch jobs whose publish was lost."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be done, change nothing")

    def handle(self, *args, **options):
        if options["dry_run"]:
            now = timezone.now()
            expired = Job.unscoped_objects.filter(status="running", lease_expires_at__lt=now).count()
            stuck = Job.unscoped_objects.filter(
                status="queued", dispatched_at__lt=now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_S)
            ).count()
            self.stdout.write(f"would reap {expired} running job(s) with an expired lease, redispatch {stuck}")
            return
        counts = job_reap_stale()
        self.stdout.write(
            f"requeued {counts['requeued']}, failed {counts['failed']}, redispatched {counts['redispatched']}"
        )
