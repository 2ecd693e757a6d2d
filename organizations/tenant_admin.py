"""Tenant scoping for the Django admin.

Superusers see and edit everything. An org admin (role `admin`; see
accounts.User.is_staff) sees only their own organization's rows in every list,
filter, autocomplete, search and foreign-key widget; cannot move a row to
another organization (the `org` field is not on their forms and is set from
their account on create); and needs no Django permission rows.

Deletes take the app's path: the delete button (`delete_model`) and the
"delete selected" action (`delete_queryset`, row by row through `delete_model`)
both reach the service an admin overrides `delete_model` with. A domain error
the service raises (a guard) becomes an error message, nothing changed.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.models import Role
from config.errors import PrecisError

from .models import Organization


def is_org_admin(request) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.role == Role.ADMIN and user.org_id is not None)


def _tenant_field_of(model: type[models.Model]) -> str | None:
    """The FK to Organization that scopes `model`, if any."""
    if model is Organization:
        return "pk"
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignKey) and field.related_model is Organization and field.name == "org":
            return "org"
    return None


def scope_queryset_for(request, queryset):
    """Narrow any queryset of a tenant-owned model (or of Organization) to the admin's org."""
    if request.user.is_superuser:
        return queryset
    field = _tenant_field_of(queryset.model)
    if field is None:
        return queryset
    if not is_org_admin(request):
        return queryset.none()
    return queryset.filter(**{field: request.user.org_id})


class TenantForm(forms.Form):
    """A console form (not a model's) acting in the admin's organization; a superuser,
    who belongs to none, picks the organization first."""

    def __init__(self, *args, superuser: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if superuser:
            org = forms.ModelChoiceField(Organization.objects.filter(is_active=True), label="Organization")
            self.fields = {"org": org, **self.fields}

    def org_for(self, request) -> Organization:
        return self.cleaned_data.get("org") or request.user.org


class ReadOnlyInlineMixin:
    """Put first in the bases of an inline that shows a scoped parent's rows read-only (an org
    admin needs no Django permission rows; the parent's page is scoped already)."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or is_org_admin(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TenantAdminMixin:
    """Put first in the bases of every ModelAdmin of a tenant-owned model."""

    tenant_field = "org"

    #: The add button's words when adding is not a plain form (an upload, a connection);
    #: such an admin sets change_list_template = "precis_admin/change_list.html".
    add_label: str | None = None

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"add_label": self.add_label, **(extra_context or {})})

    # -- the console's own pages (an upload, an action's options, a preview) -----------
    def console_page(self, request, template: str, title: str, **context) -> TemplateResponse:
        """A page of this model's section, in the admin's frame (precis_admin/model_page.html)."""
        form = context.get("form")
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "media": self.media + (form.media if form is not None else forms.Media()),
            **context,
        }
        return TemplateResponse(request, template, context)

    # -- rows -------------------------------------------------------------------
    def get_queryset(self, request):
        return scope_queryset_for(request, super().get_queryset(request))

    # -- permissions: org admins manage their org without permission rows ------
    def _allowed(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if not is_org_admin(request):
            return False
        return obj is None or getattr(obj, f"{self.tenant_field}_id", None) == request.user.org_id

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request, *args):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    # -- forms: no org field for org admins, related choices scoped -------------
    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append(self.tenant_field)
        return exclude

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not request.user.is_superuser and self.tenant_field in fields:
            fields.remove(self.tenant_field)
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (
                name,
                {
                    **opts,
                    "fields": [f for f in opts["fields"] if f != self.tenant_field],
                },
            )
            for name, opts in fieldsets
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scope_queryset_for(request, formfield.queryset)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scope_queryset_for(request, formfield.queryset)
        return formfield

    def get_list_filter(self, request):
        """Org admins get no org filter, and FK filters list only values of their rows."""
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            return filters
        scoped = []
        for item in filters:
            if item == self.tenant_field:
                continue
            if isinstance(item, str) and self._is_relation(item):
                item = (item, admin.RelatedOnlyFieldListFilter)
            scoped.append(item)
        return scoped

    def _is_relation(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except Exception:
            return False
        return bool(field.is_relation)

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            setattr(obj, self.tenant_field, request.user.org)
        if not change and hasattr(obj, "created_by_id") and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # -- deletes: through delete_model (the app's service), guards as messages ---
    def delete_queryset(self, request, queryset):
        """The bulk action deletes row by row, through the same service as the button."""
        for obj in queryset:
            self.delete_model(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except PrecisError as error:  # its atomic block (deletion log included) is rolled back
            self.message_user(request, str(error.detail), messages.ERROR)
            opts = self.model._meta
            change = f"admin:{opts.app_label}_{opts.model_name}_change"
            return HttpResponseRedirect(reverse(change, args=[object_id], current_app=self.admin_site.name))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PrecisError as error:  # a service's guard in save_model (the form's own checks passed)
            self.message_user(request, str(error.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    #: What "delete selected" does here, when it is not a delete (deactivate, revoke, disconnect).
    delete_selected_label: str | None = None

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_all_or_nothing(func), name, self.delete_selected_label or description)
        return actions


def _all_or_nothing(action):
    """Run a bulk action in one savepoint: when a service refuses one row, no row changes
    and the admin sees the refusal (the changelist's action is not otherwise atomic)."""

    def run(modeladmin, request, queryset):
        try:
            with transaction.atomic():
                return action(modeladmin, request, queryset)
        except PrecisError as error:
            modeladmin.message_user(request, str(error.detail), messages.ERROR)
            return None

    run.__name__ = getattr(action, "__name__", "delete_selected")
    return run
