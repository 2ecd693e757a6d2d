"""Integrations in the admin console: connect (OAuth, started here and back here), reconnect,
disconnect, webhooks from a form; status and last error on the list.

Every step takes the API's services (integrations.services) and stays in the admin's
organization. Tokens and secrets are never shown: the encrypted fields are not on any form.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from rest_framework.exceptions import APIException

from organizations.tenant_admin import TenantAdminMixin, TenantForm

from . import providers, services
from .models import Integration


class WebhookForm(TenantForm):
    """The fields of POST /integrations/ for a webhook (the service validates the address)."""

    name = forms.CharField(max_length=200, help_text="How members tell this connection apart.")
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where published summaries are POSTed as JSON: a public http(s) address (HTTPS recommended).",
    )
    secret = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Optional: signs each delivery (X-Precis-Signature, with its timestamp). Shown nowhere afterwards.",
    )


@admin.register(Integration)
class IntegrationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "provider", "account_name", "status", "last_error", "last_used_at", "created_at"]
    list_filter = ["provider", "status", "org"]
    search_fields = ["name", "account_name"]
    change_list_template = "precis_admin/change_list.html"
    add_label = "Connect an integration"
    delete_selected_label = "Disconnect selected integrations"
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
        "status",
        "status_detail",
        "token_expires_at",
        "last_used_at",
        "created_by",
    ]

    class Media:
        css = {"all": ["precis_admin/admin.css"]}

    @admin.display(description="last error")
    def last_error(self, integration: Integration) -> str:
        return integration.status_detail if integration.status != Integration.Status.ACTIVE else ""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("connect/<slug:provider>/", view(self.connect_view), name="integrations_integration_connect"),
            path("<path:object_id>/reconnect/", view(self.reconnect_view), name="integrations_integration_reconnect"),
            *super().get_urls(),
        ]

    def delete_model(self, request, obj):
        """The API's path (the disconnect button and the bulk action): revoke at the provider, then delete."""
        services.integration_disconnect(integration=obj)

    # -- the add page: connect a provider, or a webhook's form ---------------------------
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = WebhookForm(request.POST if posted else None, superuser=request.user.is_superuser)
        if posted and form.is_valid():
            try:
                integration = services.webhook_create(
                    org=form.org_for(request),
                    user=request.user,
                    name=form.cleaned_data["name"],
                    config={"url": form.cleaned_data["url"], "secret": form.cleaned_data["secret"]},
                )
            except APIException as error:  # the service's refusal (the address, mostly), on its field
                form.add_error(
                    "secret" if getattr(error, "attr", None) == "config.secret" else "url", str(error.detail)
                )
            else:
                self.log_addition(request, integration, [{"added": {}}])
                self.message_user(request, f"Webhook “{integration.name}” created.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))
        oauth = [cls for cls in providers.REGISTRY.values() if cls.uses_oauth]
        return self.console_page(
            request,
            "admin/integrations/integration/connect.html",
            "Connect an integration",
            form=form,
            oauth_providers=[
                {"name": cls.name, "display_name": cls.display_name, "configured": cls.configured()} for cls in oauth
            ],
            can_connect=request.user.org_id is not None,
        )

    # -- OAuth: started here, the callback brings the browser back ------------------------
    def connect_view(self, request, provider: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._authorize(request, provider, None)

    def reconnect_view(self, request, object_id: str):
        integration = self.get_object(request, unquote(object_id))
        if integration is None or not self.has_change_permission(request, integration):
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return self._authorize(request, integration.provider, integration)

    def _authorize(self, request, provider: str, integration: Integration | None):
        from .views import callback_url, set_nonce_cookie

        if request.method != "POST":  # a state is created: never on a GET (CSRF-checked POST only)
            return HttpResponseNotAllowed(["POST"])
        back = (
            reverse("admin:integrations_integration_change", args=[integration.pk])
            if integration is not None
            else reverse("admin:integrations_integration_add")
        )
        if request.user.org_id is None:
            self.message_user(
                request, "Connect as an admin of the organization: OAuth binds it to you.", messages.ERROR
            )
            return HttpResponseRedirect(back)
        redirect_uri = callback_url(request, provider)
        try:
            authorization = services.oauth_authorize(
                org=request.user.org,
                user=request.user,
                provider_name=provider,
                redirect_uri=redirect_uri,
                integration=integration,
                return_to="admin",
            )
        except APIException as error:  # not configured, no such provider
            self.message_user(request, f"Not connected: {error.detail}", messages.ERROR)
            return HttpResponseRedirect(back)
        response = HttpResponseRedirect(authorization.url)
        set_nonce_cookie(response, request, authorization, redirect_uri)
        return response
