from django.contrib import admin, messages
from django.utils import timezone

from config.errors import PrecisError

from . import services
from .models import Invitation, Organization
from .tenancy import org_scope
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
    """Invite (mailed, through the API's service), resend, revoke (delete)."""

    list_display = ["email", "role", "state", "org", "expires_at", "accepted_at", "created_at"]
    list_filter = ["role", "org"]
    search_fields = ["email"]
    fields = ["org", "email", "role", "expires_at", "accepted_at", "created_by"]
    actions = ["resend"]
    delete_selected_label = "Revoke selected invitations"

    class Media:
        css = {"all": ["precis_admin/admin.css"]}

    def get_readonly_fields(self, request, obj=None):
        # A mailed invitation keeps its address: invite the right one and revoke this.
        return ["email", "accepted_at", "created_by"] if obj else ["accepted_at", "created_by"]

    @admin.display(description="state")
    def state(self, invitation: Invitation) -> str:
        if invitation.accepted_at:
            return "accepted"
        return "expired" if invitation.expires_at <= timezone.now() else "pending"

    def save_model(self, request, obj, form, change):
        """A new invitation goes through invitation_create: mailed to the invitee, the token's
        only copy (accepting it proves their address, so nobody else, the admin included,
        ever sees it); the service's refusals (a taken address, one pending already, an
        unverified inviter) come back as messages."""
        if change:
            return super().save_model(request, obj, form, change)
        org = obj.org if request.user.is_superuser else request.user.org
        with org_scope(org.pk):
            created, _token = services.invitation_create(
                org=org, created_by=request.user, email=obj.email, role=obj.role, expires_at=obj.expires_at
            )
        for field in Invitation._meta.concrete_fields:  # the admin goes on with the stored row
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        self.message_user(request, f"Invitation mailed to {obj.email}.", messages.SUCCESS)

    def delete_model(self, request, obj):
        """Revoke: the link stops working (the delete button and "Revoke selected")."""
        services.invitation_revoke(org=obj.org, invitation=obj)

    @admin.action(description="Resend selected invitations")
    def resend(self, request, queryset):
        """A new link for each (the old one stops working), valid INVITATION_TTL_DAYS again."""
        sent, refused = [], []
        for invitation in queryset.select_related("org"):
            try:
                services.invitation_resend(invitation=invitation, by=request.user)
            except PrecisError as error:
                refused.append(f"{invitation.email}: {error.detail}")
            else:
                sent.append(invitation.email)
        if sent:
            self.message_user(request, f"Invitation mailed again to {', '.join(sent)}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not sent: {line}", messages.ERROR)
