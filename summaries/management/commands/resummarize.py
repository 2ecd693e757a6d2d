"""manage.py resummarize --org SLUG [--template ID] [--since DATE] [--provider NAME] [--dry-run]

Queues a summarize job for every document of an organization (optionally only
those created or changed since DATE), with the given template (default: the
system "Executive summary"). Jobs are dispatched after commit; if the broker is
down they stay queued and the reaper sends them later. Exit 1 on any failure.
"""

import sys
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from config.errors import PrecisError
from documents.models import Document
from jobs.dispatch import dispatch_on_commit
from organizations.models import Organization
from organizations.tenancy import org_scope
from summaries import services


class Command(BaseCommand):
    help = "Queue summarize jobs for an organization's documents."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--template", default=None, help="template id (default: Executive summary)")
        parser.add_argument(
            "--since", default=None, help="only documents created/updated since (YYYY-MM-DD or ISO 8601)"
        )
        parser.add_argument("--provider", default=None, help="LLM provider (default: LLM_PROVIDER)")
        parser.add_argument("--dry-run", action="store_true", help="count the documents, queue nothing")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        since = self._since(options["since"])
        admin = org.users.filter(role="admin", is_active=True).order_by("date_joined").first()
        with org_scope(org.id):
            documents = Document.objects.order_by("created_at").only("id")
            if since:
                documents = documents.filter(updated_at__gte=since)
            total = documents.count()
            if options["dry_run"]:
                self.stdout.write(f"would queue {total} summarize job(s) in {org.slug}")
                return
            queued = failed = 0
            for document in tqdm(
                documents.iterator(chunk_size=500), total=total, disable=options["no_progress"], file=sys.stderr
            ):
                try:
                    with transaction.atomic():
                        job = services.summary_request(
                            org=org,
                            user=admin,
                            document=document,
                            template_id=options["template"],
                            provider=options["provider"],
                        )
                        dispatch_on_commit(job)
                    queued += 1
                except PrecisError as exc:
                    failed += 1
                    self.stderr.write(f"failed {document.pk}: {exc.detail}")
                    if failed == 1 and exc.get_codes() in ("not_found", "invalid_provider"):
                        break  # the same for every document
        self.stdout.write(f"queued {queued} summarize job(s) in {org.slug}; {failed} failed")
        if failed:
            raise CommandError(f"{failed} document(s) could not be queued.", returncode=1)

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
