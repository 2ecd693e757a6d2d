"""Integration API: providers, OAuth connect/callback, webhooks, list/detail/delete, import,
and POST /documents/import-url/."""

from django.conf import settings
from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import PublicEndpointAuthentication
from config.schema import ServiceUnavailableErrorResponseSerializer
from jobs.serializers import JobOutputSerializer
from jobs.views import JobStartingView, job_start_response
from organizations.idempotency import fingerprint_of
from organizations.tenancy import IsOrgAdmin, TenantViewSetMixin

from . import providers, services
from .models import Integration
from .serializers import (
    AuthorizeInputSerializer,
    AuthorizeOutputSerializer,
    ImportInputSerializer,
    IntegrationOutputSerializer,
    ProviderSerializer,
    UrlImportInputSerializer,
    WebhookCreateInputSerializer,
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


class AuthorizeView(TenantViewSetMixin, generics.GenericAPIView):
    """POST /integrations/{provider}/authorize/ (admins) → {authorization_url}."""

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
        base = settings.PUBLIC_BASE_URL.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
        redirect_uri = f"{base}/api/v1/integrations/{provider}/callback/"
        url = services.oauth_authorize(
            org=request.org,
            user=request.user,
            provider_name=provider,
            redirect_uri=redirect_uri,
            integration=integration,
        )
        return Response({"authorization_url": url})


class CallbackView(APIView):
    """GET /integrations/{provider}/callback/?code=&state= — the browser comes back here.

    Public: the single-use `state` is the credential (it names org, user and
    provider). Redirects to FRONTEND_URL, or answers 201 JSON for API clients
    (no FRONTEND_URL, or `Accept: application/json`)."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("code", str), OpenApiParameter("state", str), OpenApiParameter("error", str)],
        responses={201: IntegrationOutputSerializer, 302: None, 503: ServiceUnavailableErrorResponseSerializer},
        auth=[],
    )
    def get(self, request, provider: str):
        params = request.query_params
        wants_json = "application/json" in request.headers.get("Accept", "") or not settings.FRONTEND_URL
        try:
            integration = services.oauth_callback(
                provider_name=provider,
                state=params.get("state", ""),
                code=params.get("code"),
                error=params.get("error"),
            )
        except Exception as exc:
            if wants_json or not hasattr(exc, "get_codes"):
                raise
            return HttpResponseRedirect(f"{settings.FRONTEND_URL.rstrip('/')}/integrations?error={exc.get_codes()}")
        if wants_json:
            return Response(IntegrationOutputSerializer(integration).data, status=status.HTTP_201_CREATED)
        return HttpResponseRedirect(f"{settings.FRONTEND_URL.rstrip('/')}/integrations?connected={integration.pk}")


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
