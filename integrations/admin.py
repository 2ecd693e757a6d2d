from django.contrib import admin

from organizations.tenant_admin import TenantAdminMixin

from . import services
from .models import Integration


@admin.register(Integration)
class IntegrationAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Tenant-scoped; tokens and secrets are never shown (the encrypted fields are not editable)."""

    list_display = ["name", "provider", "account_name", "status", "last_used_at", "created_at"]
    list_filter = ["provider", "status", "org"]
    search_fields = ["name", "account_name"]
    fields = [
        "org",
        "provider",
        "name",
        "account_name",
        "scopes",
        "status",
        "status_detail",
        "token_expires_at",
        "last_used_at",
        "created_by",
    ]
    readonly_fields = [
        "provider",
        "account_name",
        "scopes",
        "status_detail",
        "token_expires_at",
        "last_used_at",
        "created_by",
    ]

    def has_add_permission(self, request, *args):
        return False  # connect through the OAuth flow or the API

    def delete_model(self, request, obj):
        """The API's path (the delete button and "delete selected"): revoke at the provider, then delete."""
        services.integration_disconnect(integration=obj)
