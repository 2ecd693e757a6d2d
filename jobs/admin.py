from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from config.errors import Conflict
from organizations.tenant_admin import ReadOnlyInlineMixin, TenantAdminMixin

from . import services
from .models import Job

LIVE_MEDIA = {"js": ["precis_admin/live_jobs.js"], "css": {"all": ["precis_admin/admin.css"]}}


def live_context(request) -> dict:
    """For a page with live job cells: where its socket starts (the org's newest event)."""
    from realtime.events import last_event_id

    org_id = getattr(request.user, "org_id", None)
    return {"events_since": last_event_id(org_id) if org_id else None}


class LiveJobFields:
    """A job's status, progress and error as cells that follow it live (precis_admin/live_jobs.js)."""

    @admin.display(description="status", ordering="status")
    def live_status(self, job: Job):
        return format_html('<span data-job-id="{}" data-field="status">{}</span>', job.pk, job.status)

    @admin.display(description="progress", ordering="progress")
    def live_progress(self, job: Job):
        return format_html('<span data-job-id="{}" data-field="progress">{}%</span>', job.pk, job.progress)

    @admin.display(description="error")
    def live_error(self, job: Job):
        error = job.error or {}
        text = f"{error.get('code', 'error')}: {error.get('detail', '')}" if error else ""
        return format_html('<span data-job-id="{}" data-field="error">{}</span>', job.pk, text)


class _DocumentJobFormSet(BaseInlineFormSet):
    @classmethod
    def get_default_prefix(cls):
        return "jobs"  # Job.document has no reverse name (related_name="+")


class DocumentJobInline(ReadOnlyInlineMixin, LiveJobFields, admin.TabularInline):
    """A document's jobs on its page, newest first, following their progress live."""

    model = Job
    formset = _DocumentJobFormSet
    fk_name = "document"
    ordering = ["-created_at"]
    fields = readonly_fields = ["kind", "live_status", "live_progress", "live_error", "created_at"]


@admin.register(Job)
class JobAdmin(LiveJobFields, TenantAdminMixin, admin.ModelAdmin):
    """Read-only: jobs change only through their state machine (cancel is an action)."""

    list_display = ["id", "kind", "live_status", "live_progress", "attempts", "document", "created_by", "created_at"]
    list_filter = ["kind", "status", "org"]
    search_fields = ["id"]
    list_select_related = ["document", "created_by"]
    actions = ["cancel_jobs"]

    class Media:
        js = LIVE_MEDIA["js"]
        css = LIVE_MEDIA["css"]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**live_context(request), **(extra_context or {})})

    def lookup_allowed(self, lookup, value, request):
        return lookup == "batch__id__exact" or super().lookup_allowed(lookup, value, request)  # a batch's jobs

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        cancelled = 0
        for job in queryset:
            try:
                services.job_cancel(job=job)
                cancelled += 1
            except Conflict:
                pass
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
