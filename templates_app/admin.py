from django.contrib import admin

from organizations.tenant_admin import TenantAdminMixin

from .models import Template
from .placeholders import PlaceholderError, placeholders_in


class TemplateForm(admin.ModelAdmin.form):
    #: Set by TemplateAdmin.get_form for org admins (whose form has no org field).
    admin_org_id = None

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
    fields = ["org", "name", "description", "body", "format", "default_max_words", "favour", "created_by"]
    readonly_fields = ["created_by"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if not request.user.is_superuser:
            form = type(form.__name__, (form,), {"admin_org_id": request.user.org_id})
        return form
