from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Subquery

from organizations.tenant_admin import TenantAdminMixin

from .models import Template
from .placeholders import PlaceholderError, placeholders_in

#: How many of the organization's newest ready documents the preview offers.
PREVIEW_DOCUMENTS = 100


class TemplateForm(admin.ModelAdmin.form):
    #: Set by TemplateAdmin.get_form for org admins (whose form has no org field).
    admin_org_id = None

    preview_document = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Document",
        help_text=f"One of the {PREVIEW_DOCUMENTS} newest ready documents: “Preview” renders the template "
        "against it, with its token estimate, and saves nothing.",
    )
    preview_provider = forms.ChoiceField(choices=(), required=False, label="Provider")

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        from documents.models import Document
        from summaries import providers

        super().__init__(*args, **kwargs)
        org_id = self.admin_org_id or self.instance.org_id
        documents = Document.unscoped_objects.filter(status=Document.Status.READY)
        if org_id:
            documents = documents.filter(org_id=org_id)
        newest = documents.order_by("-created_at").values("pk")[:PREVIEW_DOCUMENTS]
        self.fields["preview_document"].queryset = (
            Document.unscoped_objects.filter(pk__in=Subquery(newest)).only("pk", "title").order_by("-created_at")
        )
        names = providers.available()
        self.fields["preview_provider"].choices = [(name, name) for name in names]
        self.fields["preview_provider"].initial = settings.LLM_PROVIDER if settings.LLM_PROVIDER in names else names[0]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        org_id = self.admin_org_id or getattr(self.cleaned_data.get("org"), "pk", None) or self.instance.org_id
        clash = Template.unscoped_objects.filter(org_id=org_id, name=name).exclude(pk=self.instance.pk)
        if org_id and clash.exists():
            from django.core.exceptions import ValidationError

            raise ValidationError("A template with this name already exists in this organization.")
        return name

    def clean_favour(self):
        from django.core.exceptions import ValidationError

        from summaries.formats import FAVOURS

        favour = self.cleaned_data.get("favour") or []
        if not isinstance(favour, list) or any(kind not in FAVOURS for kind in favour):
            raise ValidationError(f"A list of any of: {', '.join(FAVOURS)}.")
        return list(dict.fromkeys(favour))

    def clean_default_max_words(self):
        from django.core.exceptions import ValidationError

        value = self.cleaned_data["default_max_words"]
        if not 10 <= value <= 2000:
            raise ValidationError("Between 10 and 2000 words.")
        return value

    def clean_body(self):
        body = self.cleaned_data["body"]
        try:
            placeholders_in(body)
        except PlaceholderError as exc:
            from django.core.exceptions import ValidationError

            raise ValidationError(str(exc)) from None
        return body


@admin.register(Template)
class TemplateAdmin(TenantAdminMixin, admin.ModelAdmin):
    form = TemplateForm
    list_display = ["name", "org", "format", "default_max_words", "created_by", "updated_at"]
    list_filter = ["org", "format"]
    search_fields = ["name", "description"]
    fieldsets = [
        (
            None,
            {"fields": ["org", "name", "description", "body", "format", "default_max_words", "favour", "created_by"]},
        ),
        ("Preview", {"fields": ["preview_document", "preview_provider"], "classes": ["precis-preview"]}),
    ]
    readonly_fields = ["created_by"]

    class Media:
        css = {"all": ["precis_admin/admin.css"]}

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if not request.user.is_superuser:
            form = type(form.__name__, (form,), {"admin_org_id": request.user.org_id})
        return form

    # -- preview: the form as typed, rendered against a document; nothing saved ---------
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_preview" in request.POST:
            return self._preview_view(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview_view(self, request, object_id, form_url, extra_context):
        """Django's change form, bound to what was typed, with the preview under the fields."""
        from summaries.services import template_preview

        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        allowed = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        if not allowed:
            raise PermissionDenied
        form = self.get_form(request, obj, change=obj is not None)(request.POST, instance=obj)
        preview = None
        if form.is_valid():  # fills form.instance in memory; never saved here
            document = form.cleaned_data.get("preview_document")
            if document is None:
                form.add_error("preview_document", "Pick a document to preview the template against.")
            else:
                org = form.instance.org or (request.user.org if not request.user.is_superuser else document.org)
                preview = template_preview(
                    org=org,
                    document=document,
                    template=form.instance,
                    provider_name=form.cleaned_data.get("preview_provider") or "local",
                )
                self.message_user(request, "Preview only: nothing was saved.", messages.INFO)
        fieldsets = list(self.get_fieldsets(request, obj))
        admin_form = helpers.AdminForm(
            form, fieldsets, self.get_prepopulated_fields(request, obj), self.get_readonly_fields(request, obj), self
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change {self.opts.verbose_name}" if obj else f"Add {self.opts.verbose_name}",
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "preview": preview,
            **(extra_context or {}),
        }
        return self.render_change_form(
            request, context, add=obj is None, change=obj is not None, obj=obj, form_url=form_url
        )
