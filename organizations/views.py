"""Organization API: registration, the org itself, its members and invitations."""

import json

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import PublicEndpointAuthentication
from accounts.models import Role, User
from accounts.serializers import TokenInputSerializer
from accounts.throttles import RegisterIPThrottle
from config.pagination import CursorPagination
from config.schema import ConflictErrorResponseSerializer

from . import api_keys, services
from .models import ApiKey, AuditEntry, Invitation
from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
    AuditEntryOutputSerializer,
    AuditQuerySerializer,
    InvitationCreateInputSerializer,
    InvitationOutputSerializer,
    MemberOutputSerializer,
    MemberUpdateInputSerializer,
    OrganizationOutputSerializer,
    OrganizationUpdateInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    RegistrationPendingSerializer,
)
from .tenancy import IsOrgAdmin, TenantViewSetMixin


class RegisterView(APIView):
    """POST /api/v1/auth/register/ — create an organization, or join one by invitation."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [RegisterIPThrottle]

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer, 202: RegistrationPendingSerializer},
        auth=[],
    )
    def post(self, request):
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.organization_register(**data.validated_data)
        if "claim" in result:  # an unverified account holds the address: prove it by mail
            detail = "An unconfirmed account uses this address. Open the link we mailed to it to finish registering."
            return Response({"detail": detail, "email": result["claim"]}, status=status.HTTP_202_ACCEPTED)
        return Response(RegisterOutputSerializer(result).data, status=status.HTTP_201_CREATED)


class RegisterConfirmView(APIView):
    """POST /api/v1/auth/register/confirm/ — finish a registration from its mailed link."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [RegisterIPThrottle]

    @extend_schema(request=TokenInputSerializer, responses={201: RegisterOutputSerializer}, auth=[])
    def post(self, request):
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.registration_claim_confirm(token=data.validated_data["token"])
        return Response(RegisterOutputSerializer(result).data, status=status.HTTP_201_CREATED)


class OrganizationView(APIView):
    """GET/PATCH /api/v1/org/ — always the caller's own organization (request.org)."""

    def get_permissions(self):
        return [IsAuthenticated(), IsOrgAdmin()] if self.request.method == "PATCH" else [IsAuthenticated()]

    @extend_schema(responses={200: OrganizationOutputSerializer})
    def get(self, request):
        return Response(OrganizationOutputSerializer(request.org).data)

    @extend_schema(
        request=OrganizationUpdateInputSerializer,
        responses={200: OrganizationOutputSerializer},
    )
    def patch(self, request):
        data = OrganizationUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_update(org=request.org, **data.validated_data)
        return Response(OrganizationOutputSerializer(org).data)


class MemberPagination(CursorPagination):
    ordering = "-date_joined"


class MemberViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Members of the caller's organization. Everyone lists; admins change and deactivate."""

    model = User
    serializer_class = MemberOutputSerializer
    pagination_class = MemberPagination
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_permissions(self):
        if self.action in ("partial_update", "destroy"):
            return [IsAuthenticated(), IsOrgAdmin()]
        return [IsAuthenticated()]

    @extend_schema(
        request=MemberUpdateInputSerializer,
        responses={200: MemberOutputSerializer, 409: ConflictErrorResponseSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        data = MemberUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.member_update(org=request.org, user=member, **data.validated_data)
        return Response(MemberOutputSerializer(member).data)

    @extend_schema(responses={204: None, 409: ConflictErrorResponseSerializer})
    def destroy(self, request, *args, **kwargs):
        services.member_deactivate(org=request.org, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations of the caller's organization (admins only)."""

    model = Invitation
    serializer_class = InvitationOutputSerializer
    permission_classes = [IsAuthenticated, IsOrgAdmin]

    @extend_schema(
        request=InvitationCreateInputSerializer,
        responses={201: InvitationOutputSerializer},
    )
    def create(self, request, *args, **kwargs):
        """The token goes to the invitee by mail only: accepting it proves their address."""
        data = InvitationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(org=request.org, created_by=request.user, **data.validated_data)
        return Response(InvitationOutputSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: InvitationOutputSerializer, 409: ConflictErrorResponseSerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request, *args, **kwargs):
        """Mail the invitation again with a new link (the old one stops working), valid
        INVITATION_TTL_DAYS from now; 409 `invitation_accepted` once it was accepted."""
        invitation = services.invitation_resend(invitation=self.get_object(), by=request.user)
        return Response(InvitationOutputSerializer(invitation).data)

    def perform_destroy(self, instance: Invitation) -> None:
        services.invitation_revoke(org=self.request.org, invitation=instance)


class SignedInPerson(BasePermission):
    """A person's sign-in (a JWT), not an API key."""

    message = "API keys cannot manage API keys; sign in as a person."
    code = "api_key_not_allowed"

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ApiKey)


class ApiKeyViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The organization's API keys. Anyone signed in creates keys for themselves (a role no
    higher than their own); admins list and revoke every key of the org, members their own.
    Keys are managed with a person's sign-in only: a key cannot list, make or revoke keys."""

    model = ApiKey
    serializer_class = ApiKeyOutputSerializer
    permission_classes = [IsAuthenticated, SignedInPerson]

    def refine_queryset(self, queryset):
        if self.request.user.role != Role.ADMIN:
            queryset = queryset.filter(created_by=self.request.user)
        return queryset.order_by("-created_at")

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, plain = api_keys.api_key_create(org=request.org, user=request.user, **data.validated_data)
        body = ApiKeyCreatedSerializer(key).data | {"key": plain}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Revoke: the key stops working at once (REST and its open sockets); the row stays."""
        api_keys.api_key_revoke(key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditPagination(CursorPagination):
    ordering = "-created_at"


class AuditViewSet(TenantViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """GET /api/v1/org/audit/ — the organization's audit log, newest first (admins); `export/`
    gives the same entries as CSV."""

    model = AuditEntry
    serializer_class = AuditEntryOutputSerializer
    pagination_class = AuditPagination
    permission_classes = [IsAuthenticated, IsOrgAdmin]

    def refine_queryset(self, queryset):
        params = AuditQuerySerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        lookups = {
            "action": "action",
            "actor": "actor_user_id",
            "target_type": "target_type",
            "target_id": "target_id",
            "created_after": "created_at__gte",
            "created_before": "created_at__lt",
        }
        return queryset.filter(**{lookups[name]: value for name, value in filters.items()})

    @extend_schema(parameters=[AuditQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[AuditQuerySerializer], responses={(200, "text/csv"): str})
    @action(detail=False, methods=["get"])
    def export(self, request, *args, **kwargs):
        """The entries as CSV (streamed, oldest first), with the list's filters."""
        import csv

        from django.http import StreamingHttpResponse

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())
        header = [
            "created_at",
            "action",
            "actor_user_id",
            "actor_api_key_id",
            "actor",
            "target_type",
            "target_id",
            "target",
            "changes",
            "ip",
            "user_agent",
            "request_id",
        ]
        rows = self.get_queryset().order_by("created_at").iterator(chunk_size=1000)

        def lines():
            yield writer.writerow(header)
            for e in rows:
                yield writer.writerow(
                    [
                        e.created_at.isoformat(),
                        e.action,
                        e.actor_user_id or "",
                        e.actor_key_id or "",
                        e.actor_label,
                        e.target_type,
                        e.target_id,
                        e.target_label,
                        json.dumps(e.changes, ensure_ascii=False),
                        e.ip or "",
                        e.user_agent,
                        e.request_id,
                    ]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{request.org.slug}.csv"'
        return response
