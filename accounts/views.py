"""Auth endpoints: login, refresh, logout, me, password reset, address verification
(registration lives with organizations)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import ErrorResponseSerializer

from . import services
from .authentication import PublicEndpointAuthentication
from .serializers import (
    DetailSerializer,
    EmailInputSerializer,
    EmailVerifiedSerializer,
    LoginInputSerializer,
    MeOutputSerializer,
    MeUpdateInputSerializer,
    PasswordResetConfirmInputSerializer,
    RefreshInputSerializer,
    TokenInputSerializer,
    TokenPairSerializer,
)
from .throttles import (
    LoginBackoff,
    LoginIPThrottle,
    MailAccountThrottle,
    MailIPThrottle,
    MailUserThrottle,
    PasswordChangeThrottle,
)


class LoginView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPThrottle]

    @classmethod
    def as_view(cls, **initkwargs):
        # Outside the request transaction: a refused login's audit entry stays.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    @extend_schema(
        request=LoginInputSerializer, responses={200: TokenPairSerializer, 401: ErrorResponseSerializer}, auth=[]
    )
    def post(self, request):
        """Failed logins of an account back off per client (accounts.throttles.LoginBackoff)."""
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        backoff = LoginBackoff(request, data.validated_data["email"])
        backoff.check()
        try:
            tokens = services.user_login(**data.validated_data, request=request._request)
        except AuthenticationFailed:
            backoff.failed()
            raise
        backoff.succeeded()
        return Response(tokens)


class RefreshView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]

    @classmethod
    def as_view(cls, **initkwargs):
        # Outside the request transaction: a replayed token's audit entry stays.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    @extend_schema(
        request=RefreshInputSerializer, responses={200: TokenPairSerializer, 401: ErrorResponseSerializer}, auth=[]
    )
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.token_refresh(refresh=data.validated_data["refresh"]))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=RefreshInputSerializer, responses={204: None})
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [PasswordChangeThrottle]

    @extend_schema(responses={200: MeOutputSerializer})
    def get(self, request):
        return Response(MeOutputSerializer(request.user).data)

    @extend_schema(request=MeUpdateInputSerializer, responses={200: MeOutputSerializer})
    def patch(self, request):
        data = MeUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **data.validated_data)
        return Response(MeOutputSerializer(user).data)


class PasswordResetView(APIView):
    """POST /auth/password/reset/ — mail a reset link; the same answer for any address."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [MailIPThrottle, MailAccountThrottle]

    @extend_schema(request=EmailInputSerializer, responses={202: DetailSerializer}, auth=[])
    def post(self, request):
        data = EmailInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"])
        detail = "If an account uses this address, a link to reset its password is on its way."
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    """POST /auth/password/reset/confirm/ — set the password from a reset link; signs out everywhere."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPThrottle]

    @extend_schema(
        request=PasswordResetConfirmInputSerializer, responses={204: None, 400: ErrorResponseSerializer}, auth=[]
    )
    def post(self, request):
        data = PasswordResetConfirmInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_confirm(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyView(APIView):
    """POST /auth/email/verify/ — redeem a verification link (no sign-in needed)."""

    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPThrottle]

    @extend_schema(
        request=TokenInputSerializer, responses={200: EmailVerifiedSerializer, 400: ErrorResponseSerializer}, auth=[]
    )
    def post(self, request):
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.email_verify(token=data.validated_data["token"])
        return Response({"email": user.email, "email_verified": True})


class EmailVerifyResendView(APIView):
    """POST /auth/email/verify/resend/ — mail the signed-in user a new verification link."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [MailUserThrottle]

    @extend_schema(request=None, responses={202: DetailSerializer, 400: ErrorResponseSerializer})
    def post(self, request):
        services.email_verification_send(user=request.user)
        return Response({"detail": f"A verification link is on its way to {request.user.email}."}, status=202)
