from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.exceptions import APIException

from jobs.admin import LIVE_MEDIA, DocumentJobInline, live_context
from organizations.tenancy import org_scope
from organizations.tenant_admin import TenantAdminMixin, TenantForm
from summaries.admin import SummaryInline

from . import ingestion, services
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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or many files from one input (Django's documented pattern)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        items = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items if item] or [
            super().clean(None, initial)
        ]


#: Files one upload page takes at once (the request as a whole stays under MAX_UPLOAD_BYTES).
MAX_FILES_PER_UPLOAD = 20


class UploadForm(TenantForm):
    """The add page: files for the API's upload pipeline (documents.ingestion)."""

    files = MultipleFileField(label="Files")
    title = forms.CharField(
        max_length=500, required=False, help_text="For a single file; by default a document is named after its file."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
        self.fields["files"].help_text = (
            f"PDF, DOCX, HTML, text or scanned images, up to {MAX_FILES_PER_UPLOAD} at a time and {limit} MB in all. "
            "Their text is extracted in the background; each document's page follows it."
        )

    def clean_files(self):
        from config.errors import PrecisError

        from .extraction import sniff
        from .ingestion import original_name

        files = self.cleaned_data["files"]
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise forms.ValidationError(f"At most {MAX_FILES_PER_UPLOAD} files at a time.")
        refused = []
        for upload in files:
            name = original_name(upload.name)
            if upload.size > settings.MAX_UPLOAD_BYTES:
                refused.append(f"{name}: over the limit of {settings.MAX_UPLOAD_BYTES} bytes.")
                continue
            try:
                sniff(upload, filename=name)
            except PrecisError as error:
                refused.append(f"{name}: {error.detail}")
        if refused:  # nothing is stored: the admin fixes the selection and sends it again
            raise forms.ValidationError(refused)
        return files

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("title") and len(cleaned.get("files") or []) > 1:
            self.add_error("title", "A title is for a single file; several files are named after themselves.")
        return cleaned


@admin.register(Document)
class DocumentAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Tenant-scoped; the text is shown read-only (edit it through the API)."""

    list_display = ["title", "status", "source", "content_type", "char_count", "excerpt", "created_by", "created_at"]
    list_filter = ["status", "source", "content_type", "created_at", "org"]
    search_fields = ["title", "source_ref"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    actions = ["summarize"]
    change_list_template = "precis_admin/change_list.html"
    add_label = "Upload documents"
    inlines = [DocumentJobInline, SummaryInline]

    class Media:
        js = LIVE_MEDIA["js"]
        css = LIVE_MEDIA["css"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {**live_context(request), **(extra_context or {})})

    # Starting jobs (upload, "Summarize…") commits first, then runs a scheduling round:
    # these views leave ATOMIC_REQUESTS and open their own transactions.
    @transaction.non_atomic_requests
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, extra_context)

    @transaction.non_atomic_requests
    def add_view(self, request, form_url="", extra_context=None):
        """Upload one or many files through the API's pipeline: each becomes a `processing`
        document with an ingest job; one file lands on its page, several on the list."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = UploadForm(
            request.POST if posted else None, request.FILES if posted else None, superuser=request.user.is_superuser
        )
        if posted and form.is_valid():
            org = form.org_for(request)
            try:
                with org_scope(org.pk):
                    documents = _accept_uploads(
                        request.user, org, form.cleaned_data["files"], form.cleaned_data["title"]
                    )
            except APIException as error:  # the broker is down: nothing was kept
                form.add_error(None, f"Not stored: {error.detail}")
            else:
                return self._uploaded(request, documents)
        return self.console_page(request, "admin/documents/document/upload.html", "Upload documents", form=form)

    def _uploaded(self, request, documents: list[Document]):
        for document in documents:
            self.log_addition(request, document, [{"added": {}}])
        if len(documents) == 1:
            self.message_user(
                request, f"“{documents[0].title}” is stored; its text is being extracted.", messages.SUCCESS
            )
            return HttpResponseRedirect(reverse("admin:documents_document_change", args=[documents[0].pk]))
        self.message_user(
            request, f"{len(documents)} documents are stored; their text is being extracted.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:documents_document_changelist") + "?status__exact=processing")

    fields = [
        "org",
        "title",
        "status",
        "error_text",
        "source",
        "source_ref",
        "original_filename",
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
        "status",
        "error_text",
        "source",
        "source_ref",
        "original_filename",
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

    @admin.display(description="error")
    def error_text(self, document: Document) -> str:
        error = document.error or {}
        return f"{error.get('code', 'error')}: {error.get('detail', '')}" if error else "—"

    @admin.display(description="excerpt")
    def excerpt(self, document: Document) -> str:
        return truncatechars(getattr(document, "_excerpt", None) or document.content, 100)

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
            return self.console_page(
                request,
                "admin/documents/document/summarize.html",
                "Summarize documents",
                documents=documents,
                form=form,
                action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
            )
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


def _accept_uploads(user, org, files, title: str) -> list[Document]:
    """The API's upload, for several files at once: all are stored in one transaction, then a
    scheduling round starts their ingestion. With the broker down nothing stays and the
    error is raised (jobs.views.start_or_fail)."""
    from jobs.views import start_or_fail

    with transaction.atomic():
        documents = [
            ingestion.document_accept_file(
                org=org,
                created_by=user,
                stream=upload,
                filename=upload.name or "",
                source=Document.Source.UPLOAD,
                title=title or None,
            )[0]
            for upload in files
        ]

    def forget() -> None:
        for document in documents:
            services.document_delete_unstarted(document=document)

    start_or_fail(forget)
    return documents


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
