"""manage.py import_documents PATH --org SLUG [--source manual] [--recursive]

Imports every supported file (.txt .md .html .htm .pdf .docx, images for OCR) under PATH
into an organization, through the same pipeline as uploads: each original is stored and
its text extracted by an `ingest` job in the sandbox — run here, by this command, so it
can report every file's outcome (a worker that happens to take a job first is waited
for). Each file's path relative to PATH is its `source_ref`, so a re-run updates changed
files and skips unchanged ones (same bytes, by sha256). Prints a progress bar and a
summary; exits 1 if any file failed, each failure listed with its reason.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from config.errors import PrecisError
from documents import ingestion
from documents.extraction import SUPPORTED_EXTENSIONS
from documents.models import Document
from jobs.models import Job
from organizations.models import Organization
from organizations.tenancy import org_scope


class Command(BaseCommand):
    help = "Import a folder of documents into an organization."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a folder (or a single file)")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--source", default="manual", help="source recorded on the documents (default: manual)")
        parser.add_argument("--recursive", action="store_true", help="descend into sub-folders")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")

    def handle(self, *args, **options):
        root = Path(options["path"])
        if not root.exists():
            raise CommandError(f"{root} does not exist.")
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        files = self._files(root, recursive=options["recursive"])
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        failures: list[tuple[str, str]] = []
        base = root if root.is_dir() else root.parent
        with org_scope(org.id):
            for path in tqdm(files, unit="file", disable=options["no_progress"], file=sys.stderr):
                ref = path.relative_to(base).as_posix()
                try:
                    with path.open("rb") as stream, transaction.atomic():
                        document, outcome, job = ingestion.document_accept_file(
                            org=org,
                            created_by=None,
                            stream=stream,
                            filename=path.name,
                            source=options["source"],
                            source_ref=ref,
                        )
                except PrecisError as exc:
                    counts["failed"] += 1
                    failures.append((ref, f"{exc.get_codes()}: {exc.detail}"))
                    continue
                except OSError as exc:
                    counts["failed"] += 1
                    failures.append((ref, f"unreadable: {exc.strerror or exc}"))
                    continue
                if job is not None:
                    ingestion.ingest_job_run(job_id=job.pk)
                    document = self._settled(document, job)
                    if document.status != Document.Status.READY:
                        error = document.error or {"code": "ingest_failed", "detail": "no text"}
                        counts["failed"] += 1
                        failures.append((ref, f"{error['code']}: {error['detail']}"))
                        continue
                counts[outcome] += 1
        for ref, reason in failures:
            self.stderr.write(f"failed  {ref}: {reason}")
        self.stdout.write(
            f"imported {counts['created']}, updated {counts['updated']}, "
            f"skipped {counts['unchanged']} unchanged, failed {counts['failed']} (of {len(files)} files)"
        )
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} file(s) failed.", returncode=1)

    @staticmethod
    def _settled(document: Document, job: Job) -> Document:
        """The document once its ingest job has ended (here, or on a worker that took it)."""
        deadline = time.monotonic() + settings.EXTRACTION_TIMEOUT_S + 60
        while True:
            document.refresh_from_db()
            job.refresh_from_db()
            if job.is_finished or time.monotonic() > deadline:
                return document
            time.sleep(0.2)  # another process runs it: its end is only visible in the database

    @staticmethod
    def _files(root: Path, *, recursive: bool) -> list[Path]:
        if root.is_file():
            return [root]
        candidates = root.rglob("*") if recursive else root.glob("*")
        return sorted(
            p
            for p in candidates
            if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith(".")
        )
