"""manage.py usage_report --org SLUG [--month YYYY-MM] [--group-by day|user|model|provider] [--csv]

An organization's LLM usage for a month (default: this one), as GET /api/v1/org/usage/
gives it: calls, failed calls, prompt, completion and total tokens, and cost per row,
then the totals. A table by default; CSV (with a header row) with --csv.
"""

import csv
from calendar import monthrange
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from organizations.models import Organization
from summaries import usage

COLUMNS = ["calls", "failed_calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost"]


class Command(BaseCommand):
    help = "Print an organization's LLM usage for a month (a table, or CSV)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--month", default=None, help="YYYY-MM (default: this month)")
        parser.add_argument(
            "--group-by", default="day", choices=sorted(usage.GROUPS), help="one row per (default: day)"
        )
        parser.add_argument("--csv", action="store_true", help="CSV instead of a table")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        start, end = self._month(options["month"])
        body = usage.report(org_id=org.pk, start=start, end=end, group_by=options["group_by"])
        keys = [key.replace("user__email", "user_email") for key in usage.GROUPS[options["group_by"]]]
        rows = [[row.get(key) or "" for key in keys] + [row[c] for c in COLUMNS] for row in body["results"]]
        total = ["total", *[""] * (len(keys) - 1), *(body["totals"][c] for c in COLUMNS)]
        if options["csv"]:
            writer = csv.writer(self.stdout)
            writer.writerow(keys + COLUMNS)
            writer.writerows([*rows, total])
            return
        self.stdout.write(f"{org.name}: LLM usage {start:%Y-%m} ({start} to {end})")
        self._table(keys + COLUMNS, [*rows, total])

    def _month(self, text: str | None) -> tuple[date, date]:
        today = timezone.localdate()
        if text is None:
            return today.replace(day=1), today
        try:
            year, month = (int(part) for part in text.split("-"))
            start = date(year, month, 1)
        except ValueError:
            raise CommandError(f"--month must be YYYY-MM, not {text!r}.") from None
        return start, start.replace(day=monthrange(year, month)[1])

    def _table(self, header: list[str], rows: list[list]) -> None:
        cells = [[str(value) for value in row] for row in [header, *rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        figures = len(header) - len(COLUMNS)  # numbers align right, names left
        for number, row in enumerate(cells):
            line = [
                v.rjust(w) if i >= figures else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(line).rstrip())
            if number == 0:
                self.stdout.write("  ".join("-" * width for width in widths))
