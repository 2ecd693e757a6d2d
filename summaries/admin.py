from django.contrib import admin
from django.utils.html import format_html, format_html_join

from organizations.tenant_admin import ReadOnlyInlineMixin, TenantAdminMixin

from .models import Summary

CONTEXT_CHARS = 160  # of the document shown around each cited passage


class SummaryInline(ReadOnlyInlineMixin, admin.StackedInline):
    """A document's summaries on its page, newest first: the text, where it came from (provider,
    model, tokens, latency, strategy) and the passages it cites."""

    model = Summary
    fk_name = "document"
    ordering = ["-created_at"]
    fields = [
        "content",
        ("template_name", "provider", "model"),
        ("prompt_tokens", "completion_tokens", "latency_ms"),
        ("strategy", "chunk_count", "status"),
        "created_at",
        "cited",
    ]
    readonly_fields = fields[:1] + [f for row in fields[1:4] for f in row] + ["created_at", "cited"]

    @admin.display(description="Cited passages")
    def cited(self, summary: Summary):
        return cited_passages(summary)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("document")  # the cited passages read its text


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
        return cited_passages(summary)


def cited_passages(summary: Summary):
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
