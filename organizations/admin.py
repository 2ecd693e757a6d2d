from django.contrib import admin, messages

from . import services
from .models import Invitation, Organization
from .tenant_admin import TenantAdminMixin, is_org_admin, scope_queryset_for


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Superusers manage every organization; an org admin sees and renames only theirs."""

    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        return scope_queryset_for(request, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "slug", "is_active"]

    def get_list_filter(self, request):
        return ["is_active"] if request.user.is_superuser else []

    def has_module_permission(self, request):
        return request.user.is_superuser or is_org_admin(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or (is_org_admin(request) and (obj is None or obj.pk == request.user.org_id))

    has_change_permission = has_view_permission

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Invitation)
class InvitationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["email", "role", "org", "expires_at", "accepted_at", "created_at"]
    list_filter = ["role", "org"]
    search_fields = ["email"]
    fields = ["org", "email", "role", "expires_at", "accepted_at", "created_by"]
    readonly_fields = ["accepted_at", "created_by"]

    def save_model(self, request, obj, form, change):
        """A new invitation is mailed to the invitee: the token's only copy (accepting it
        proves their address, so nobody else, the admin included, ever sees it)."""
        token = None
        if not change:
            token = obj.new_token()
            obj.token_hash = services.invitation_token_hash(token)
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if token:
            services.invitation_send(invitation=obj, token=token, inviter=request.user)
            self.message_user(request, f"Invitation mailed to {obj.email}.", messages.SUCCESS)
