"""manage.py export_org --org SLUG [--output FILE]

Streams an organization's templates, documents (with their text) and summaries
as JSON Lines — one object per line, `{"type": "document", ...}` — to stdout
or FILE. Memory stays constant whatever the organization's size: rows are read
in server-side batches and written as they come.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from tqdm import tqdm

from documents.models import Document
from organizations import audit
from organizations.models import Organization
from organizations.tenancy import org_scope
from summaries.models import Summary
from templates_app.models import Template

BATCH = 200
DOCUMENT_FIELDS = [
    "id",
    "title",
    "content",
    "content_type",
    "source",
    "source_ref",
    "metadata",
    "char_count",
    "sha256",
    "created_by_id",
    "created_at",
    "updated_at",
]
SUMMARY_FIELDS = [
    "id",
    "document_id",
    "template_id",
    "template_name",
    "content",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "status",
    "strategy",
    "chunk_count",
    "truncated",
    "source_sha256",
    "prompt_sha256",
    "parameters",
    "created_by_id",
    "created_at",
]
TEMPLATE_FIELDS = ["id", "name", "description", "body", "created_by_id", "created_at", "updated_at"]


class Command(BaseCommand):
    help = "Export an organization's templates, documents and summaries as JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--output", default="-", help="file to write (default: stdout)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        out = sys.stdout if options["output"] == "-" else open(options["output"], "w", encoding="utf-8")  # noqa: SIM115
        counts = {}
        try:
            with org_scope(org.id):
                sources = [
                    ("template", Template.objects.filter(org=org), TEMPLATE_FIELDS),
                    ("document", Document.objects.all(), DOCUMENT_FIELDS),
                    ("summary", Summary.objects.all(), SUMMARY_FIELDS),
                ]
                for kind, queryset, fields in sources:
                    rows = queryset.order_by("created_at", "pk").values(*fields)
                    total = queryset.count()
                    counts[kind] = 0
                    for row in tqdm(
                        rows.iterator(chunk_size=BATCH),
                        total=total,
                        desc=kind,
                        disable=options["no_progress"],
                        file=sys.stderr,
                    ):
                        out.write(json.dumps({"type": kind, **row}, cls=DjangoJSONEncoder, ensure_ascii=False))
                        out.write("\n")
                        counts[kind] += 1
        finally:
            if out is not sys.stdout:
                out.close()
        summary = ", ".join(f"{n} {kind}(s)" for kind, n in counts.items())
        audit.record("org.exported", org=org, target=org, actor_label="manage.py export_org", changes=counts)
        self.stderr.write(f"exported {summary} of {org.slug}")
