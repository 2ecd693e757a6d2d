from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.exceptions import APIException

from jobs.admin import LIVE_MEDIA, DocumentJobInline, live_context
from organizations.tenancy import org_scope
from organizations.tenant_admin import TenantAdminMixin
from summaries.admin import SummaryInline

from . import services
from .models import Document


class SummarizeForm(forms.Form):
    """The options of the "Summarize…" action: those of POST /documents/{id}/summarize/."""

    template = forms.ModelChoiceField(queryset=None, help_text="The organization's templates and the system ones.")
    provider = forms.ChoiceField(choices=(), help_text="`local` is the built-in summarizer; the others call an LLM.")
    max_words = forms.IntegerField(
        min_value=10, max_value=2000, required=False, help_text="Leave empty for the template's default length."
    )

    def __init__(self, *args, org_id, **kwargs):
        from django.conf import settings

        from summaries import providers
        from templates_app.models import Template

        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = Template.unscoped_objects.filter(
            Q(org_id=org_id) | Q(org__isnull=True)
        ).order_by("org", "name")
        names = providers.available()
        self.fields["provider"].choices = [(name, name) for name in names]
        self.fields["provider"].initial = settings.LLM_PROVIDER if settings.LLM_PROVIDER in names else names[0]


@admin.register(Document)
class DocumentAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Tenant-scoped; the text is shown read-only (edit it through the API)."""

    list_display = ["title", "source", "content_type", "char_count", "excerpt", "created_by", "created_at"]
    list_filter = ["source", "content_type", "created_at", "org"]
    search_fields = ["title", "source_ref"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    actions = ["summarize"]
    inlines = [DocumentJobInline, SummaryInline]

    class Media:
        js = LIVE_MEDIA["js"]
        css = LIVE_MEDIA["css"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {**live_context(request), **(extra_context or {})})

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

    @admin.action(description="Summarize…")
    def summarize(self, request, queryset):
        """An intermediate page for the template, provider and length; then the API's services:
        one job for one document, a batch for several (one per organization for a superuser)."""
        documents = list(queryset.select_related(None).only("pk", "org_id", "title").order_by("created_at"))
        orgs = {document.org_id for document in documents}
        if not orgs:
            self.message_user(request, "No documents were selected.", messages.WARNING)
            return None
        if request.user.is_superuser and len(orgs) > 1:
            self.message_user(request, "Select documents of one organization at a time.", messages.ERROR)
            return None
        org_id = next(iter(orgs))
        form = SummarizeForm(request.POST if "apply" in request.POST else None, org_id=org_id)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Summarize documents",
                "documents": documents,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/documents/document/summarize.html", context)
        fields = {
            "template_id": form.cleaned_data["template"].pk,
            "provider": form.cleaned_data["provider"],
            "options": {"max_words": form.cleaned_data["max_words"]} if form.cleaned_data["max_words"] else None,
        }
        try:
            with org_scope(org_id):
                message = _start_summaries(request.user, org_id, documents, fields, self.admin_site.name)
        except APIException as error:  # the API's 400/404/409/503, said as a message
            self.message_user(request, f"Not started: {error.detail}", messages.ERROR)
            return None
        self.message_user(request, message, messages.SUCCESS)
        if len(documents) == 1:  # its page follows the job live
            return HttpResponseRedirect(reverse("admin:documents_document_change", args=[documents[0].pk]))
        return None


def _start_summaries(user, org_id, documents, fields, site: str):
    """Start the jobs as the API does (jobs.views.start_or_fail: a broker outage fails them and
    raises BrokerUnavailable); the message says what started, with links."""
    from jobs.batches import batch_fail
    from jobs.capacity import BrokerUnavailable
    from jobs.services import job_fail
    from jobs.views import start_or_fail
    from organizations.models import Organization
    from realtime import events
    from summaries import services as summaries

    org = Organization.objects.get(pk=org_id)
    down = str(BrokerUnavailable.default_detail)
    if len(documents) == 1:
        with transaction.atomic(), events.stored_in_transaction():
            job = summaries.summary_request(org=org, user=user, document=documents[0], **fields)
        start_or_fail(lambda: job_fail(job_id=job.pk, code="broker_unavailable", detail=down))
        link = reverse("admin:jobs_job_change", args=[job.pk], current_app=site)
        return format_html('Summarizing “{}”: <a href="{}">job {}</a>.', documents[0].title, link, job.pk)
    with transaction.atomic():
        batch = summaries.summary_batch_request(
            org=org, user=user, document_ids=[document.pk for document in documents], **fields
        )
    start_or_fail(lambda: batch_fail(batch=batch, code="broker_unavailable", detail=down))
    link = reverse("admin:jobs_job_changelist", current_app=site) + f"?batch__id__exact={batch.pk}"
    return format_html('Summarizing {} documents: <a href="{}">batch {}</a>.', len(documents), link, batch.pk)
