from django.contrib import admin
from django.template.defaultfilters import truncatechars

from organizations.tenant_admin import TenantAdminMixin

from . import services
from .models import Document


@admin.register(Document)
class DocumentAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Tenant-scoped; the text is shown read-only (edit it through the API)."""

    list_display = ["title", "source", "content_type", "char_count", "excerpt", "created_by", "created_at"]
    list_filter = ["source", "content_type", "created_at", "org"]
    search_fields = ["title", "source_ref"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    fields = [
        "org",
        "title",
        "source",
        "source_ref",
        "content_type",
        "char_count",
        "sha256",
        "file",
        "metadata",
        "created_by",
        "created_at",
        "content",
    ]
    readonly_fields = [
        "source",
        "source_ref",
        "content_type",
        "char_count",
        "sha256",
        "file",
        "created_by",
        "created_at",
        "content",
    ]

    def get_queryset(self, request):
        # The changelist never loads whole documents: the excerpt is cut in SQL.
        from django.db.models.functions import Substr

        return (
            super().get_queryset(request).defer("content", "search_vector").annotate(_excerpt=Substr("content", 1, 120))
        )

    @admin.display(description="excerpt")
    def excerpt(self, document: Document) -> str:
        return truncatechars(getattr(document, "_excerpt", None) or document.content, 100)

    def has_add_permission(self, request, *args):
        return False  # documents are created through the API, uploads or the import command

    def delete_model(self, request, obj):
        """The API's delete: unfinished jobs cancelled, the stored file removed after commit
        (the "delete selected" action comes here too, row by row)."""
        services.document_delete(document=obj)
