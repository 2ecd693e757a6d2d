"""manage.py rotate_encryption_keys [--dry-run]

Re-encrypts every stored token and secret with the newest key of
FIELD_ENCRYPTION_KEYS. Idempotent (values already under the newest key are
left alone); progress bar; exit 1 if a value could not be decrypted by any
key. Rotation: put the new key first, keep the old ones, run this, then
remove the old keys.
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from integrations import crypto
from integrations.models import Integration, OAuthState


class Command(BaseCommand):
    help = "Re-encrypt all integration secrets with the newest FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        counts = {"rotated": 0, "current": 0, "failed": 0}
        targets = [(Integration, Integration.ENCRYPTED_FIELDS), (OAuthState, ("code_verifier_encrypted",))]
        for model, fields in targets:
            rows = model.unscoped_objects.order_by("pk")
            for row in tqdm(
                rows.iterator(),
                total=rows.count(),
                disable=options["no_progress"],
                file=sys.stderr,
                desc=model.__name__,
            ):
                changed = []
                for field in fields:
                    value = getattr(row, field)
                    if crypto.is_current(value):
                        continue
                    try:
                        setattr(row, field, crypto.rotate(value))
                        changed.append(field)
                    except crypto.DecryptionError:
                        counts["failed"] += 1
                        self.stderr.write(f"cannot decrypt {model.__name__} {row.pk}.{field}: no key fits")
                if changed and not options["dry_run"]:
                    with transaction.atomic():
                        model.unscoped_objects.filter(pk=row.pk).update(**{f: getattr(row, f) for f in changed})
                counts["rotated" if changed else "current"] += 1
        verb = "would rotate" if options["dry_run"] else "rotated"
        self.stdout.write(
            f"{verb} {counts['rotated']} row(s); {counts['current']} already current; {counts['failed']} failed"
        )
        if counts["failed"]:
            raise CommandError("Some values could not be decrypted with any configured key.", returncode=1)
