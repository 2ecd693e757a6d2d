"""The admin's dashboard: how one organization uses Precis, in figures and small SVG charts.

`figures(org_id)` reads what the dashboard shows (None: every organization, for a
superuser); `charts(figures)` draws it. The charts are SVG written here, on the server, with
every label escaped: no script and nothing loaded from elsewhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

JOB_DAYS = 7
ATTENTION = ("expired", "needs_reauth", "error")  # integrations an admin has to look at


@dataclass
class Figures:
    documents_by_source: dict[str, int]
    days: list[date]  # the last JOB_DAYS days, oldest first
    jobs_by_day: dict[str, list[int]]  # status → a count per day
    failures: list[tuple[str, int]]  # (error code, jobs) over the same days, most first
    month: list[date]  # the days of this month so far
    tokens_by_day: dict[str, list[int]]  # provider → tokens per day
    calls_by_day: dict[str, list[int]]  # provider → LLM calls per day
    integrations: list[dict] = field(default_factory=list)  # needing attention
    budgets: list[dict] = field(default_factory=list)  # this month's (summaries.usage.month_status)

    @property
    def budget_lines(self) -> list[dict]:
        """Each budget of the month with the share spent, for the usage panel."""
        lines = []
        for row in self.budgets:
            for kind, spent, limit in (
                ("tokens", row["tokens_spent"], row["token_budget"]),
                ("cost", row["cost_spent"], row["cost_budget"]),
            ):
                if limit is not None:
                    share = float(spent) / float(limit) if float(limit) else 1.0
                    lines.append({"kind": kind, "spent": spent, "limit": limit, "percent": round(share * 100)})
        return lines

    @property
    def total_documents(self) -> int:
        return sum(self.documents_by_source.values())

    @property
    def job_totals(self) -> dict[str, int]:
        """Jobs per status over the days shown."""
        return {status: sum(counts) for status, counts in sorted(self.jobs_by_day.items())}

    @property
    def usage_totals(self) -> list[tuple[str, tuple[int, int]]]:
        """(provider, (tokens, calls)) this month, most tokens first."""
        totals = {p: (sum(t), sum(self.calls_by_day.get(p, ()))) for p, t in self.tokens_by_day.items()}
        return sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))


def figures(org_id: uuid.UUID | None) -> Figures:
    from documents.models import Document
    from integrations.models import Integration
    from jobs.models import Job
    from summaries import usage
    from summaries.models import UsageDay

    def scoped(model):
        rows = model.unscoped_objects.all()
        return rows if org_id is None else rows.filter(org_id=org_id)

    today = timezone.localdate()
    days = [today - timedelta(days=JOB_DAYS - 1 - i) for i in range(JOB_DAYS)]
    month = [today.replace(day=d) for d in range(1, today.day + 1)]

    by_source = dict(
        scoped(Document).order_by().values_list("source").annotate(n=Count("id")).values_list("source", "n")
    )
    recent = scoped(Job).filter(created_at__gte=_start_of(days[0]))  # a range the org/created index serves
    jobs_by_day: dict[str, list[int]] = {}
    for status, day, n in (
        recent.order_by()
        .annotate(day=TruncDate("created_at"))
        .values_list("status", "day")
        .annotate(n=Count("id"))
        .values_list("status", "day", "n")
    ):
        jobs_by_day.setdefault(status, [0] * JOB_DAYS)[days.index(day)] = n
    failures = list(
        recent.filter(status=Job.Status.FAILED)
        .order_by()
        .annotate(code=KeyTextTransform("code", "error"))
        .values_list("code")
        .annotate(n=Count("id"))
        .order_by("-n", "code")
        .values_list("code", "n")
    )
    tokens_by_day: dict[str, list[int]] = {}
    calls_by_day: dict[str, list[int]] = {}
    for provider, day, tokens, calls in (
        scoped(UsageDay)
        .filter(day__gte=month[0])
        .order_by()
        .values_list("provider", "day")
        .annotate(tokens=Sum("prompt_tokens") + Sum("completion_tokens"), calls=Sum("calls"))
        .values_list("provider", "day", "tokens", "calls")
    ):
        index = month.index(day)
        tokens_by_day.setdefault(provider, [0] * len(month))[index] = tokens or 0
        calls_by_day.setdefault(provider, [0] * len(month))[index] = calls or 0
    integrations = [
        {
            "id": row.pk,
            "name": row.name or row.provider,
            "provider": row.provider,
            "status": row.status,
            "status_label": row.get_status_display(),
            "detail": row.status_detail,
        }
        for row in scoped(Integration).filter(status__in=ATTENTION).order_by("name")
    ]
    return Figures(
        documents_by_source=by_source,
        days=days,
        jobs_by_day=jobs_by_day,
        failures=[(code or "unknown", n) for code, n in failures],
        month=month,
        tokens_by_day=tokens_by_day,
        calls_by_day=calls_by_day,
        integrations=integrations,
        budgets=usage.month_status(org_id=org_id) if org_id is not None else [],
    )


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# -- charts -----------------------------------------------------------------------------------------
# Colour per series: the admin's own palette where it has one; chosen to stay apart in print.
PALETTE = ("#417690", "#79aec8", "#ba2121", "#e6a23c", "#5b8c5a", "#8e6c8a", "#666666")
STATUS_COLOURS = {
    "succeeded": "#5b8c5a",
    "failed": "#ba2121",
    "cancelled": "#999999",
    "running": "#417690",
    "queued": "#79aec8",
}
WIDTH, HEIGHT, PAD = 560, 180, 28


def bars(labels: list[str], values: list[int], *, title: str) -> SafeString:
    """Horizontal bars, one per label, with its value."""
    top = max(values, default=0) or 1
    row = 22
    height = row * max(1, len(labels)) + 8
    items = format_html_join(
        "",
        '<g><text x="0" y="{}" class="label">{}</text>'
        '<rect x="140" y="{}" width="{}" height="14" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" class="value">{}</text></g>',
        (
            (
                i * row + 15,
                label,
                i * row + 4,
                round((WIDTH - 200) * value / top, 1),
                PALETTE[i % len(PALETTE)],
                label,
                value,
                146 + round((WIDTH - 200) * value / top, 1),
                i * row + 15,
                value,
            )
            for i, (label, value) in enumerate(zip(labels, values, strict=True))
        ),
    )
    return format_html(
        '<svg class="precis-chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}"><title>{}</title>{}</svg>',
        WIDTH,
        height,
        WIDTH,
        height,
        title,
        items,
    )


def stacked_columns(
    days: list[date], series: dict[str, list[int]], *, title: str, colours: dict[str, str] | None = None
) -> SafeString:
    """One column per day, stacked by series, with a legend."""
    colours = colours or {}
    names = sorted(series)
    totals = [sum(series[name][i] for name in names) for i in range(len(days))]
    top = max(totals, default=0) or 1
    plot = HEIGHT - 2 * PAD
    step = (WIDTH - PAD) / max(1, len(days))
    width = min(28.0, max(2.0, step * 0.7))
    rects = []
    for i, day in enumerate(days):
        base = HEIGHT - PAD
        for k, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            h = plot * value / top
            base -= h
            colour = colours.get(name, PALETTE[k % len(PALETTE)])
            rects.append(
                (round(PAD + i * step, 1), round(base, 1), round(width, 1), round(h, 1), colour, name, day, value)
            )
    columns = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {}: {}</title></rect>',
        rects,
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" class="tick">{}</text>',
        (
            (round(PAD + i * step, 1), HEIGHT - PAD + 14, day.strftime("%d"))
            for i, day in enumerate(days)
            if len(days) <= 10 or i % 5 == 0 or i == len(days) - 1
        ),
    )
    legend = format_html_join(
        "",
        '<g><rect x="{}" y="4" width="10" height="10" fill="{}"></rect>'
        '<text x="{}" y="13" class="legend">{}</text></g>',
        (
            (PAD + k * 110, colours.get(name, PALETTE[k % len(PALETTE)]), PAD + 14 + k * 110, name)
            for k, name in enumerate(names)
        ),
    )
    return format_html(
        '<svg class="precis-chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}"><title>{}</title>'
        '<text x="0" y="{}" class="tick">{}</text>{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        title,
        PAD + 4,
        top,
        legend,
        columns,
        ticks,
    )


def charts(data: Figures) -> dict[str, SafeString]:
    sources = sorted(data.documents_by_source.items(), key=lambda item: (-item[1], item[0]))
    return {
        "documents": bars([s for s, _ in sources], [n for _, n in sources], title="Documents by source"),
        "jobs": stacked_columns(data.days, data.jobs_by_day, title="Jobs by status", colours=STATUS_COLOURS),
        "failures": bars([c for c, _ in data.failures], [n for _, n in data.failures], title="Failures by code"),
        "tokens": stacked_columns(data.month, data.tokens_by_day, title="Tokens per day by provider"),
        "calls": stacked_columns(data.month, data.calls_by_day, title="LLM calls per day by provider"),
    }
