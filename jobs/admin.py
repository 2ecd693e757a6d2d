from django.contrib import admin, messages

from config.errors import Conflict
from organizations.tenant_admin import TenantAdminMixin

from . import services
from .models import Job


@admin.register(Job)
class JobAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Read-only: jobs change only through their state machine (cancel is an action)."""

    list_display = ["id", "kind", "status", "progress", "attempts", "document", "created_by", "created_at"]
    list_filter = ["kind", "status", "org"]
    search_fields = ["id"]
    list_select_related = ["document", "created_by"]
    actions = ["cancel_jobs"]

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
