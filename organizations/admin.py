from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from config.errors import PrecisError

from . import api_keys, services
from .models import ApiKey, AuditEntry, Invitation, Organization
from .tenancy import org_scope
from .tenant_admin import TenantAdminMixin, TenantForm, is_org_admin, scope_queryset_for


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

    def save_model(self, request, obj, form, change):
        """The name and budgets go through organization_update (its audit entries)."""
        managed = {"name", *services.BUDGET_FIELDS}
        changed = managed & set(form.changed_data)
        if not change or not changed:
            return super().save_model(request, obj, form, change)
        others = set(form.changed_data) - managed
        if others:  # a superuser's other fields (slug, is_active)
            obj.save(update_fields=[*others, "updated_at"])
        current = Organization.objects.get(pk=obj.pk)
        services.organization_update(org=current, **{name: getattr(obj, name) for name in changed})


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


class ApiKeyForm(TenantForm):
    name = forms.CharField(max_length=200, help_text="What the key is for (a server, a script).")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, help_text="At most your own role.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        initial=[ApiKey.Scope.READ, ApiKey.Scope.WRITE],
        widget=forms.CheckboxSelectMultiple,
        help_text="`read`: GET requests only; `write`: everything else too.",
    )
    expires_at = forms.DateTimeField(required=False, help_text="Empty: the key does not expire.")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Keys are made here (shown once, on the page that makes them) and revoked; never edited."""

    list_display = ["name", "prefix_shown", "role", "scopes", "created_by", "last_used_at", "key_status", "created_at"]
    list_filter = ["role", "org"]
    search_fields = ["name", "prefix"]
    fields = ["org", "name", "prefix_shown", "role", "scopes", "expires_at", "created_by", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]
    delete_selected_label = None

    class Media:
        css = {"all": ["precis_admin/admin.css"]}

    @admin.display(description="key")
    def prefix_shown(self, key: ApiKey) -> str:
        return f"pk_{key.prefix}_…"

    @admin.display(description="status")
    def key_status(self, key: ApiKey) -> str:
        return "revoked" if key.revoked_at else ("active" if key.is_usable else "expired")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the row says who had it and when it was used

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            api_keys.api_key_revoke(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked; they stop working at once.", messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = ApiKeyForm(request.POST if posted else None, superuser=False)
        if request.user.org_id is None:
            self.message_user(
                request, "A key acts as its creator: create it as an admin of the organization.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:organizations_apikey_changelist"))
        if posted and form.is_valid():
            try:
                with org_scope(request.user.org_id):
                    key, plain = api_keys.api_key_create(
                        org=request.user.org,
                        user=request.user,
                        name=form.cleaned_data["name"],
                        role=form.cleaned_data["role"],
                        scopes=form.cleaned_data["scopes"],
                        expires_at=form.cleaned_data["expires_at"],
                    )
            except PrecisError as error:
                form.add_error(None, str(error.detail))
            else:
                self.log_addition(request, key, [{"added": {}}])
                # On this page only: never in a message, a log or the session.
                return self.console_page(
                    request, "admin/organizations/apikey/created.html", "API key created", key=key, plain=plain
                )
        return self.console_page(request, "admin/organizations/apikey/add.html", "Create an API key", form=form)


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "action", "actor_label", "target_type", "target_label", "ip"]
    list_filter = ["action", "target_type", "org"]
    search_fields = ["actor_label", "target_label", "target_id", "request_id"]
    date_hierarchy = "created_at"
    fields = [
        "org",
        "created_at",
        "action",
        "actor_user",
        "actor_key",
        "actor_label",
        "target_type",
        "target_id",
        "target_label",
        "changes",
        "ip",
        "user_agent",
        "request_id",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
