"""manage.py reap_stale_jobs — run the job reconciler once (beat runs it every 30 s)."""

from django.core.management.base import BaseCommand

from jobs.services import job_reap_stale


class Command(BaseCommand):
    help = "Requeue or fail jobs whose worker died; re-dispatch jobs whose publish was lost."

    def handle(self, *args, **options):
        counts = job_reap_stale()
        self.stdout.write(
            f"requeued {counts['requeued']}, failed {counts['failed']}, redispatched {counts['redispatched']}"
        )
