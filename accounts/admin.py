"""User admin: superusers manage everyone; org admins manage their own org's users only.

Org admins never see superusers, cannot grant superuser or permissions, cannot
move a user to another organization, and cannot demote or deactivate their
organization's last active admin.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm

from organizations.tenant_admin import TenantAdminMixin

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
