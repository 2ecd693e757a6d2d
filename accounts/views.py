"""Auth endpoints: login, refresh, logout, me (registration lives with organizations)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import ErrorResponseSerializer

from . import services
from .authentication import PublicEndpointAuthentication
from .serializers import (
    LoginInputSerializer,
    MeOutputSerializer,
    MeUpdateInputSerializer,
    RefreshInputSerializer,
    TokenPairSerializer,
)
from .throttles import LoginAccountThrottle, LoginIPThrottle, PasswordChangeThrottle


class LoginView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPThrottle, LoginAccountThrottle]

    @extend_schema(
        request=LoginInputSerializer, responses={200: TokenPairSerializer, 401: ErrorResponseSerializer}, auth=[]
    )
    def post(self, request):
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = services.user_login(**data.validated_data, request=request._request)
        return Response(tokens)


class RefreshView(APIView):
    authentication_classes = [PublicEndpointAuthentication]
    permission_classes = [AllowAny]

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
