"""manage.py resummarize --org SLUG [--template ID] [--since DATE] [--provider NAME] [--dry-run]

Summarizes every document of an organization again (optionally only those created or
changed since DATE) with the given template (default: the system "Executive summary"),
as batches of at most MAX_BATCH_DOCUMENTS documents: they share the workers fairly with
everyone else's work, and `GET /api/v1/batches/{id}/` follows them. Jobs wait in the
database; if the broker is down they are handed out once it is back. Exit 1 on failure.
"""

from datetime import datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import PrecisError
from documents.models import Document
from jobs.scheduler import schedule_on_commit
from organizations.models import Organization
from organizations.tenancy import org_scope
from summaries import services


class Command(BaseCommand):
    help = "Summarize an organization's documents again, as batches."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--template", default=None, help="template id (default: Executive summary)")
        parser.add_argument(
            "--since", default=None, help="only documents created/updated since (YYYY-MM-DD or ISO 8601)"
        )
        parser.add_argument("--provider", default=None, help="LLM provider (default: LLM_PROVIDER)")
        parser.add_argument("--dry-run", action="store_true", help="count the documents, queue nothing")
        parser.add_argument("--no-progress", action="store_true", help="(kept for scripts; batches print no bar)")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        since = self._since(options["since"])
        admin = org.users.filter(role="admin", is_active=True).order_by("date_joined").first()
        with org_scope(org.id):
            documents = Document.objects.order_by("created_at", "id")
            if since:
                documents = documents.filter(updated_at__gte=since)
            ids = list(documents.values_list("id", flat=True))
            if options["dry_run"]:
                self.stdout.write(f"would queue {len(ids)} summarize job(s) in {org.slug}")
                return
            size = settings.MAX_BATCH_DOCUMENTS
            batches = []
            for start in range(0, len(ids), size):
                try:
                    with transaction.atomic():
                        batch = services.summary_batch_request(
                            org=org,
                            user=admin,
                            document_ids=ids[start : start + size],
                            template_id=options["template"],
                            provider=options["provider"],
                        )
                        schedule_on_commit()
                except PrecisError as exc:
                    raise CommandError(f"could not queue the documents: {exc.detail}", returncode=1) from exc
                batches.append(batch)
                self.stdout.write(f"batch {batch.pk}: {batch.total} document(s)")
        self.stdout.write(f"queued {len(ids)} summarize job(s) in {org.slug} in {len(batches)} batch(es)")

    @staticmethod
    def _since(value):
        if not value:
            return None
        moment = parse_datetime(value)
        if moment is None and parse_date(value):
            moment = datetime.combine(parse_date(value), time.min)
        if moment is None:
            raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or ISO 8601 datetime.")
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
