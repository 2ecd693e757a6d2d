from django.contrib import admin
from django.utils.html import format_html, format_html_join

from organizations.tenant_admin import TenantAdminMixin

from .models import Summary

CONTEXT_CHARS = 160  # of the document shown around each cited passage


@admin.register(Summary)
class SummaryAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["template_name", "document", "provider", "model", "strategy", "latency_ms", "created_at"]
    list_filter = ["provider", "strategy", "status", "org"]
    search_fields = ["template_name", "document__title"]
    list_select_related = ["document"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "citations"] + ["cited_passages"]

    def get_exclude(self, request, obj=None):
        return ["citations"]

    def has_add_permission(self, request, *args):
        return False

    @admin.display(description="Cited passages")
    def cited_passages(self, summary: Summary):
        """Each summary sentence with the passages of the document it comes from, highlighted
        in their context (offsets into the text as summarized: stale once it changed)."""
        if not summary.citations:
            return "—"
        text = summary.document.content
        stale = summary.source_sha256 != summary.document.sha256
        rows = []
        for cite in summary.citations:
            sentence = summary.content[cite["start"] : cite["end"]]
            passages = format_html_join(
                "",
                '<p style="margin:.25em 0 .25em 1.5em">{}<mark>{}</mark>{}{}</p>',
                (
                    (
                        "…" + text[max(0, s["start"] - CONTEXT_CHARS) : s["start"]],
                        text[s["start"] : s["end"]],
                        text[s["end"] : s["end"] + CONTEXT_CHARS] + "…",
                        f" (page {s['page']})" if s.get("page") else "",
                    )
                    for s in cite["sources"]
                ),
            )
            rows.append(format_html("<div><strong>{}</strong>{}</div>", sentence, passages))
        warning = format_html("<p><em>{}</em></p>", "The document changed since: offsets may be off.") if stale else ""
        return format_html("{}{}", warning, format_html_join("", "{}", ((row,) for row in rows)))
