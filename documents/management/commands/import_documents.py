"""manage.py import_documents PATH --org SLUG [--source manual] [--recursive]

Imports every supported file (.txt .md .html .htm .pdf .docx) under PATH into
an organization. Each file's path relative to PATH is its `source_ref`, so a
re-run updates changed files and skips unchanged ones (same extracted text,
by sha256). Prints a progress bar and a summary; exits 1 if any file failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import PrecisError
from documents import services
from documents.extraction import SUPPORTED_EXTENSIONS
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
                    with path.open("rb") as stream:
                        _doc, outcome = services.document_import_file(
                            org=org,
                            created_by=None,
                            stream=stream,
                            filename=path.name,
                            source=options["source"],
                            source_ref=ref,
                        )
                    counts[outcome] += 1
                except PrecisError as exc:
                    counts["failed"] += 1
                    failures.append((ref, f"{exc.get_codes()}: {exc.detail}"))
                except OSError as exc:
                    counts["failed"] += 1
                    failures.append((ref, f"unreadable: {exc.strerror or exc}"))
        for ref, reason in failures:
            self.stderr.write(f"failed  {ref}: {reason}")
        self.stdout.write(
            f"imported {counts['created']}, updated {counts['updated']}, "
            f"skipped {counts['unchanged']} unchanged, failed {counts['failed']} (of {len(files)} files)"
        )
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} file(s) failed.", returncode=1)

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
