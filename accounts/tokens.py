"""JWTs carrying the tenant: `user_id`, `org_id` and `role` claims.

The claims are a convenience for clients; the server re-reads the user, org and
role from the database on every request (accounts.authentication).
"""

from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import User


class PrecisRefreshToken(RefreshToken):
    @classmethod
    def for_user(cls, user: User) -> "PrecisRefreshToken":
        token = super().for_user(user)
        token["org_id"] = str(user.org_id) if user.org_id else None
        token["role"] = user.role
        return token


def token_pair_for(user: User) -> dict[str, str]:
    refresh = PrecisRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def token_matches_password(token, user: User) -> bool:
    """Tokens carry a hash of the password hash: a password change revokes them all."""
    return token.get(api_settings.REVOKE_TOKEN_CLAIM) == get_md5_hash_password(user.password)
