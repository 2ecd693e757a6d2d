"""Integration API: providers, OAuth connect/callback, webhooks, list/detail/delete, import,
and POST /documents/import-url/."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import PublicEndpointAuthentication
from config.pagination import CursorPagination
from config.schema import ServiceUnavailableErrorResponseSerializer
from jobs.serializers import JobOutputSerializer
from jobs.views import JobStartingView, job_start_response
from organizations.idempotency import fingerprint_of
from organizations.tenancy import IsOrgAdmin, TenantViewSetMixin

from . import event_webhooks, providers, services
from .models import Integration, WebhookSubscription
from .serializers import (
    AuthorizeInputSerializer,
    AuthorizeOutputSerializer,
    ImportInputSerializer,
    IntegrationOutputSerializer,
    ProviderSerializer,
    UrlImportInputSerializer,
    WebhookCreateInputSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionInputSerializer,
    WebhookSubscriptionOutputSerializer,
)


class ProviderListView(APIView):
    @extend_schema(responses={200: ProviderSerializer(many=True)})
    def get(self, request):
        return Response(
            [
                {
                    "name": cls.name,
                    "display_name": cls.display_name,
                    "capabilities": sorted(cls.capabilities),
                    "oauth": cls.uses_oauth,
                    "configured": cls.configured(),
                }
                for cls in providers.REGISTRY.values()
            ]
        )


# Binds an OAuth state to the browser that asked for it (see AuthorizeView).
OAUTH_NONCE_COOKIE = "precis_oauth_nonce"


def callback_url(request, provider: str) -> str:
    """The redirect URI registered with the provider: the API's callback, for every flow."""
    base = settings.PUBLIC_BASE_URL.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
    return f"{base}/api/v1/integrations/{provider}/callback/"


def set_nonce_cookie(response, request, authorization: services.Authorization, redirect_uri: str) -> None:
    """Give the asking browser its state's nonce: HttpOnly, sent back only to the callback."""
    response.set_cookie(
        OAUTH_NONCE_COOKIE,
        authorization.browser_nonce,
        max_age=settings.OAUTH_STATE_TTL_S,
        path=urlsplit(redirect_uri).path,
        # Outside DEBUG the public side is HTTPS even when the proxy speaks HTTP to us.
        secure=request.is_secure() or not settings.DEBUG,
        httponly=True,
        samesite="Lax",  # sent on the provider's top-level redirect back to the callback
    )


class AuthorizeView(TenantViewSetMixin, generics.GenericAPIView):
    """POST /integrations/{provider}/authorize/ (admins) → {authorization_url}.

    The response also sets the state's browser nonce as an HttpOnly, SameSite=Lax cookie,
    sent back only to the callback path: the callback refuses the state without it, so
    the link works only in the browser that asked for it. A front end on another origin
    must call this with credentials (`fetch(..., {credentials: "include"})`)."""

    model = Integration
    permission_classes = [IsAuthenticated, IsOrgAdmin]
    serializer_class = AuthorizeInputSerializer

    @extend_schema(request=AuthorizeInputSerializer, responses={200: AuthorizeOutputSerializer})
    def post(self, request, provider: str):
        data = AuthorizeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        integration = None
        if data.validated_data.get("integration_id"):
            integration = self.get_queryset().filter(pk=data.validated_data["integration_id"]).first()
            if integration is None:
                from config.errors import ValidationFailed

                raise ValidationFailed(
                    "No integration with this id in your organization.", "not_found", "integration_id"
                )
        redirect_uri = callback_url(request, provider)
        authorization = services.oauth_authorize(
            org=request.org,
            user=request.user,
            provider_name=provider,
            redirect_uri=redirect_uri,
            integration=integration,
        )
        response = Response({"authorization_url": authorization.url})
        set_nonce_cookie(response, request, authorization, redirect_uri)
        return response


class CallbackView(APIView):
    """GET /integrations/{provider}/callback/?code=&state= — the browser comes back here.

    Public: the single-use `state` is the credential (it names org, user and
    provider), together with the nonce cookie AuthorizeView gave the browser that
    asked for it. Redirects to FRONTEND_URL, or answers 201 JSON for API clients
    (no FRONTEND_URL, or `Accept: application/json`).

    Not wrapped in the request transaction: the state's claim commits at once, so a
    state is spent by its first callback even when that one is refused (another
    browser, a refused code), and no transaction stays open during the token call."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    atomic_request = False

    @classmethod
    def as_view(cls, **initkwargs):
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    @extend_schema(
        parameters=[OpenApiParameter("code", str), OpenApiParameter("state", str), OpenApiParameter("error", str)],
        responses={201: IntegrationOutputSerializer, 302: None, 503: ServiceUnavailableErrorResponseSerializer},
        auth=[],
    )
    def get(self, request, provider: str):
        params = request.query_params
        to_admin = services.oauth_return_to(provider, params.get("state", "")) == "admin"
        wants_json = not to_admin and (
            "application/json" in request.headers.get("Accept", "") or not settings.FRONTEND_URL
        )
        try:
            integration = services.oauth_callback(
                provider_name=provider,
                state=params.get("state", ""),
                browser_nonce=request.COOKIES.get(OAUTH_NONCE_COOKIE, ""),
                code=params.get("code"),
                error=params.get("error"),
            )
        except Exception as exc:
            if wants_json or not hasattr(exc, "get_codes"):
                raise
            if to_admin:
                return _back_to_admin(request, None, f"Not connected: {exc.detail}")
            return HttpResponseRedirect(f"{settings.FRONTEND_URL.rstrip('/')}/integrations?error={exc.get_codes()}")
        if to_admin:
            return _back_to_admin(request, integration, f"Connected “{integration}”.")
        if wants_json:
            return Response(IntegrationOutputSerializer(integration).data, status=status.HTTP_201_CREATED)
        return HttpResponseRedirect(f"{settings.FRONTEND_URL.rstrip('/')}/integrations?connected={integration.pk}")

    def finalize_response(self, request, response, *args, **kwargs):
        # The nonce is spent with its state: cleared whatever the outcome, errors included.
        path = urlsplit(callback_url(request, kwargs.get("provider", ""))).path
        response.delete_cookie(OAUTH_NONCE_COOKIE, path=path, samesite="Lax")
        return super().finalize_response(request, response, *args, **kwargs)


def _back_to_admin(request, integration: Integration | None, message: str) -> HttpResponseRedirect:
    """The admin console's flow ends on the integration's page (or the list), saying how it went."""
    from django.contrib import messages
    from django.urls import reverse

    level = messages.SUCCESS if integration is not None else messages.ERROR
    messages.add_message(request._request, level, message)
    if integration is None:
        return HttpResponseRedirect(reverse("admin:integrations_integration_changelist"))
    return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))


class IntegrationViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    model = Integration
    serializer_class = IntegrationOutputSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_permissions(self):
        if self.action in ("create", "destroy"):
            return [IsAuthenticated(), IsOrgAdmin()]
        return [IsAuthenticated()]

    @extend_schema(request=WebhookCreateInputSerializer, responses={201: IntegrationOutputSerializer})
    def create(self, request, *args, **kwargs):
        data = WebhookCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        integration = services.webhook_create(
            org=request.org, user=request.user, name=data.validated_data["name"], config=data.validated_data["config"]
        )
        return Response(IntegrationOutputSerializer(integration).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Integration) -> None:
        services.integration_disconnect(integration=instance)


class ImportView(JobStartingView, TenantViewSetMixin, generics.GenericAPIView):
    """POST /integrations/{id}/import/ {items | query} → 202 {job}."""

    model = Integration
    serializer_class = ImportInputSerializer

    @extend_schema(request=ImportInputSerializer, responses={202: JobOutputSerializer})
    def post(self, request, *args, **kwargs):
        integration = self.get_object()
        data = ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        return job_start_response(
            request,
            lambda: services.import_request(
                org=request.org,
                user=request.user,
                integration=integration,
                items=fields.get("items"),
                query=fields.get("query"),
            ),
            scope=f"integrations.import:{integration.pk}",
            fingerprint=fingerprint_of(fields),
        )


class UrlImportView(JobStartingView, APIView):
    """POST /documents/import-url/ {url, title?} → 202 {job}."""

    @extend_schema(request=UrlImportInputSerializer, responses={202: JobOutputSerializer})
    def post(self, request):
        data = UrlImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        from django_scopes import scope

        with scope(org=request.org.id):
            return job_start_response(
                request,
                lambda: services.url_import_request(
                    org=request.org, user=request.user, url=fields["url"], title=fields.get("title")
                ),
                scope="documents.import_url",
                fingerprint=fingerprint_of(fields),
            )


class WebhookPagination(CursorPagination):
    ordering = "-created_at"


class WebhookSubscriptionViewSet(TenantViewSetMixin, viewsets.ModelViewSet):
    """/api/v1/webhooks/ — the organization's event webhooks (admins): subscribe a URL to event
    types (the signing secret is in the create response only), change, delete; each one's
    delivery log, and redelivery by hand."""

    model = WebhookSubscription
    serializer_class = WebhookSubscriptionOutputSerializer
    permission_classes = [IsAuthenticated, IsOrgAdmin]
    pagination_class = WebhookPagination
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=WebhookSubscriptionInputSerializer, responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = WebhookSubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        subscription, secret = event_webhooks.subscription_create(
            org=request.org, user=request.user, url=fields["url"], event_types=fields["event_types"]
        )
        body = WebhookSubscriptionCreatedSerializer(subscription).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookSubscriptionInputSerializer, responses={200: WebhookSubscriptionOutputSerializer})
    def partial_update(self, request, *args, **kwargs):
        subscription = self.get_object()
        data = WebhookSubscriptionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subscription = event_webhooks.subscription_update(subscription=subscription, **data.validated_data)
        return Response(WebhookSubscriptionOutputSerializer(subscription).data)

    def perform_destroy(self, instance):
        event_webhooks.subscription_delete(subscription=instance)

    @extend_schema(responses={200: WebhookDeliveryOutputSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, *args, **kwargs):
        """The subscription's deliveries, newest first: status, attempts, last response."""
        subscription = self.get_object()
        page = self.paginate_queryset(subscription.deliveries.order_by("-created_at"))
        return self.get_paginated_response(WebhookDeliveryOutputSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliveryOutputSerializer})
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9a-fA-F-]{36})/redeliver")
    def redeliver(self, request, delivery_id=None, *args, **kwargs):
        """Send a delivery again now (a new day of attempts if it fails)."""
        from rest_framework.exceptions import NotFound

        delivery = self.get_object().deliveries.filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No delivery with this id for this webhook.")
        delivery = event_webhooks.redeliver(delivery=delivery)
        return Response(WebhookDeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
