from django.contrib import admin

from organizations.tenant_admin import TenantAdminMixin

from .models import Template
from .placeholders import PlaceholderError, placeholders_in


class TemplateForm(admin.ModelAdmin.form):
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
    list_display = ["name", "org", "created_by", "updated_at"]
    list_filter = ["org"]
    search_fields = ["name", "description"]
    fields = ["org", "name", "description", "body", "created_by"]
    readonly_fields = ["created_by"]
