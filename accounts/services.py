"""Account write logic: users, login, token rotation, logout, profile."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)

from config.errors import ValidationFailed

from .models import Role, User, normalize_email
from .tokens import PrecisRefreshToken, token_matches_password, token_pair_for


def user_check_password_strength(*, password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), "weak_password", "password") from None


def user_create(*, org, email: str, password: str, name: str = "", role: str = Role.MEMBER) -> User:
    """Create an active user in `org`. The email must be free (case-insensitively)."""
    email = normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise ValidationFailed("A user with this email already exists.", "email_taken", "email")
    user = User(email=email, name=name, org=org, role=role)
    user_check_password_strength(password=password, user=user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # a concurrent registration won the race
        raise ValidationFailed("A user with this email already exists.", "email_taken", "email") from None
    return user


def user_login(*, email: str, password: str, request=None) -> dict[str, str]:
    """Email + password → a fresh token pair. Wrong or inactive: 401, same message."""
    user = authenticate(request, username=normalize_email(email), password=password)
    if user is None or user.org_id is None:
        raise AuthenticationFailed("Invalid email or password.", code="invalid_credentials")
    return token_pair_for(user)


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair issued.

    The new tokens are built from the user as the database has it now, so a
    changed role or organization is reflected; reusing a rotated (blacklisted)
    token, or refreshing for a deactivated user, answers 401.
    """
    try:
        old = PrecisRefreshToken(refresh)
    except TokenError:
        raise AuthenticationFailed(
            "Refresh token is invalid, expired or already used.", code="token_not_valid"
        ) from None
    user = User.objects.select_related("org").filter(id=old.get("user_id")).first()
    if user is None or not user.is_active or user.org is None or not user.org.is_active:
        raise AuthenticationFailed("User is inactive or no longer exists.", code="user_inactive")
    if not token_matches_password(old, user):
        raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
    _outstanding, newly_blacklisted = old.blacklist()
    if not newly_blacklisted:  # a concurrent refresh with the same token won: this is a replay
        raise AuthenticationFailed("Refresh token already used.", code="token_not_valid")
    return token_pair_for(user)


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist one refresh token of `user` (their other sessions stay)."""
    try:
        token = PrecisRefreshToken(refresh)
    except TokenError:
        raise ValidationFailed(
            "Refresh token is invalid, expired or already used.",
            "token_not_valid",
            "refresh",
        ) from None
    if str(token.get("user_id")) != str(user.id):
        raise ValidationFailed("This refresh token belongs to another user.", "token_not_valid", "refresh")
    token.blacklist()


def user_revoke_all_tokens(*, user: User) -> int:
    """Blacklist every outstanding refresh token of `user`; returns how many."""
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    entries = [BlacklistedToken(token=token) for token in outstanding]
    BlacklistedToken.objects.bulk_create(entries, ignore_conflicts=True)
    return len(entries)


def user_update_profile(
    *,
    user: User,
    name: str | None = None,
    current_password: str | None = None,
    new_password: str | None = None,
) -> User:
    """Change the name and/or the password. A password change signs out every session.

    Writes only the changed columns of a freshly locked row: a concurrent admin
    change of this user's role or activation is never overwritten."""
    with transaction.atomic():
        fresh = User.objects.select_for_update().get(pk=user.pk)
        fields = _apply_profile(fresh, name, current_password, new_password)
        if fields:
            fresh.save(update_fields=fields)
    return fresh


def _apply_profile(user: User, name, current_password, new_password) -> list[str]:
    fields: list[str] = []
    if new_password is not None or current_password is not None:
        if not current_password or not user.check_password(current_password):
            raise ValidationFailed(
                "The current password is not correct.",
                "wrong_password",
                "current_password",
            )
        if not new_password:
            raise ValidationFailed("A new password is required.", "required", "new_password")
        try:
            validate_password(new_password, user=user)
        except DjangoValidationError as exc:
            raise ValidationFailed(" ".join(exc.messages), "weak_password", "new_password") from None
        # Tokens embed a hash of the password hash (CHECK_REVOKE_TOKEN): setting a
        # new password revokes every access and refresh token of this user.
        user.set_password(new_password)
        fields.append("password")
    if name is not None:
        user.name = name
        fields.append("name")
    return fields
