from django.contrib import admin

from organizations.tenant_admin import TenantAdminMixin

from .models import Summary


@admin.register(Summary)
class SummaryAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["template_name", "document", "provider", "model", "strategy", "latency_ms", "created_at"]
    list_filter = ["provider", "strategy", "status", "org"]
    search_fields = ["template_name", "document__title"]
    list_select_related = ["document"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, *args):
        return False
