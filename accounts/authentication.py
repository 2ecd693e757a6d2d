"""Bearer-JWT authentication that resolves and re-checks the tenant.

Every request re-reads the user together with their organization (one query)
and refuses the token at once when the user was deactivated, moved to another
organization, or their organization was deactivated — even though the token
itself is still cryptographically valid. On success `request.org` is set; the
tenant mixin (organizations.tenancy) scopes everything by it.
"""

import structlog
from django.core.exceptions import ValidationError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication

from .models import User
from .tokens import token_matches_password


class TenantJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user, _token = result
            request._request.org = user.org
            structlog.contextvars.bind_contextvars(org_id=str(user.org_id), user_id=str(user.pk))
        return result

    def get_user(self, validated_token) -> User:
        user_id = validated_token.get("user_id")
        try:
            user = User.objects.select_related("org").get(id=user_id)
        except (User.DoesNotExist, ValidationError, ValueError, TypeError):
            raise AuthenticationFailed("User not found.", code="user_not_found") from None
        if not user.is_active:
            raise AuthenticationFailed("User is inactive.", code="user_inactive")
        token_org = validated_token.get("org_id")
        if user.org_id is None or str(user.org_id) != token_org or not user.org.is_active:
            raise AuthenticationFailed(
                "Token is not valid for this user's organization.",
                code="organization_mismatch",
            )
        if not token_matches_password(validated_token, user):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        return user


class PublicEndpointAuthentication:
    """For public endpoints (login, refresh, register): nobody is authenticated,
    but a failure still answers 401 with a Bearer challenge, not 403."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
