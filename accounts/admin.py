"""User admin: superusers manage everyone; org admins manage their own org's users only.

Org admins never see superusers, cannot grant superuser or permissions, cannot
move a user to another organization, and cannot demote or deactivate their
organization's last active admin.

Users are never deleted here: "delete" (the button and the bulk action)
deactivates through organizations.services.member_deactivate, and a role or
activation change in the form goes through member_update. Both keep the
last-admin guard and revoke every refresh token of a deactivated user, so
reactivating them later does not revive old sessions.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.http import HttpResponseRedirect
from django.urls import reverse

from config.errors import Conflict
from organizations import services as member_services
from organizations.tenant_admin import TenantAdminMixin

from . import services
from .models import Role, User, normalize_email


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "role")

    def clean_email(self):
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class UserChangeForm(BaseUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        user = self.instance
        if user.pk and user.org_id:
            role = cleaned.get("role", user.role)
            is_active = cleaned.get("is_active", user.is_active)
            original = User.objects.get(pk=user.pk)
            if original.role == Role.ADMIN and original.is_active and not (role == Role.ADMIN and is_active):
                others = User.objects.filter(org_id=user.org_id, role=Role.ADMIN, is_active=True).exclude(pk=user.pk)
                if not others.exists():
                    raise forms.ValidationError("An organization must keep at least one active admin.")
        return cleaned


@admin.register(User)
class UserAdmin(TenantAdminMixin, BaseUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "name", "org", "role", "is_active", "date_joined"]
    list_filter = ["role", "is_active", "org"]
    search_fields = ["email", "name"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name", "org", "role", "is_active"]}),
        ("Monthly budget", {"fields": ["monthly_token_budget", "monthly_cost_budget"]}),
        ("Superuser only", {"fields": ["is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "name", "org", "role", "password1", "password2"],
            },
        ),
    ]
    filter_horizontal = ["groups", "user_permissions"]
    delete_selected_label = "Deactivate selected users"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(is_superuser=False)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [(name, opts) for name, opts in fieldsets if name != "Superuser only"]

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude += ["is_superuser", "groups", "user_permissions"]
        return exclude

    def save_model(self, request, obj, form, change):
        managed = {"role", "is_active", *member_services.BUDGET_FIELDS}
        if change and managed & set(form.changed_data):
            current = User.objects.select_related("org").get(pk=obj.pk)
            if current.org_id is not None:
                budgets = {name: getattr(obj, name) for name in member_services.BUDGET_FIELDS}
                member_services.member_update(
                    org=current.org, user=current, role=obj.role, is_active=obj.is_active, **budgets
                )
            elif current.is_active and not obj.is_active:
                services.user_revoke_all_tokens(user=current)
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        """Deactivate: the user's documents and jobs stay in the org, and so does the row."""
        if obj.pk == request.user.pk:
            raise Conflict("You cannot delete your own account.", "self_delete")
        if obj.org_id is not None:
            member_services.member_deactivate(org=obj.org, user=obj)
        else:  # outside every organization (only superusers see these): no admin to keep
            User.objects.filter(pk=obj.pk).update(is_active=False)
            services.user_revoke_all_tokens(user=obj)

    def get_deleted_objects(self, objs, request):
        """ "Delete" deactivates: the confirmation lists only the users, nothing of theirs goes."""
        users = list(objs)
        return [str(user) for user in users], {self.model._meta.verbose_name_plural: len(users)}, set(), []

    def log_deletions(self, request, queryset):
        """The admin's history says what happens: a change (deactivated), not a deletion."""
        from django.contrib.admin.models import CHANGE, LogEntry

        return LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=queryset, action_flag=CHANGE, change_message="Deactivated (delete)."
        )

    def response_delete(self, request, obj_display, obj_id):
        if IS_POPUP_VAR in request.POST:
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(
            request,
            f"The user “{obj_display}” was deactivated (users are never deleted; reactivate them here).",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:accounts_user_changelist", current_app=self.admin_site.name))
