"""Account write logic: users, login, token rotation, logout, profile, verified
addresses and password resets."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)

from config.errors import ValidationFailed

from . import mail
from .models import Role, User, normalize_email
from .tokens import PrecisRefreshToken, token_matches_password, token_pair_for


def user_check_password_strength(*, password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), "weak_password", "password") from None


def user_create(
    *,
    org,
    email: str,
    password: str | None,
    name: str = "",
    role: str = Role.MEMBER,
    verified: bool = False,
    password_hash: str | None = None,
) -> User:
    """Create an active user in `org`. The email must be free (case-insensitively).

    `verified`: the caller has proof the person reads mail at `email` (an emailed
    invitation or registration link). Then an unverified account holding the address
    gives it up (`release_unverified`); otherwise any holder answers 400 `email_taken`.
    `password_hash`: an already validated and hashed password (a registration claim).
    """
    email = normalize_email(email)
    if verified:
        release_unverified(email=email)
    if User.objects.filter(email=email).exists():
        raise ValidationFailed("A user with this email already exists.", "email_taken", "email")
    user = User(email=email, name=name, org=org, role=role, email_verified_at=timezone.now() if verified else None)
    if password_hash is not None:
        user.password = password_hash
    else:
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
    from organizations import audit

    user = authenticate(request, username=normalize_email(email), password=password)
    if user is None or user.org_id is None:
        _audit_failed_login(normalize_email(email))
        raise AuthenticationFailed("Invalid email or password.", code="invalid_credentials")
    with transaction.atomic():  # the view runs outside the request transaction
        audit.record("auth.login", org=user.org_id, actor=user, target=user, target_label=user.email)
        return token_pair_for(user)


def _audit_failed_login(email: str) -> None:
    """A failed login of a known account goes in its organization's log (an unknown address
    belongs to no organization). The login view runs outside the request transaction, so
    the 401 does not roll this back."""
    from organizations import audit

    user = User.objects.filter(email=email, org__isnull=False).only("pk", "org_id", "email").first()
    if user is not None:
        audit.record("auth.login_failed", org=user.org_id, target=user, target_label=email, actor_label=email)


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted, a new pair issued.

    The new tokens are built from the user as the database has it now, so a
    changed role or organization is reflected; reusing a rotated (blacklisted)
    token, or refreshing for a deactivated user, answers 401.
    """
    try:
        old = PrecisRefreshToken(refresh)
    except TokenError:
        _audit_reuse(refresh)
        raise AuthenticationFailed(
            "Refresh token is invalid, expired or already used.", code="token_not_valid"
        ) from None
    user = User.objects.select_related("org").filter(id=old.get("user_id")).first()
    if user is None or not user.is_active or user.org is None or not user.org.is_active:
        raise AuthenticationFailed("User is inactive or no longer exists.", code="user_inactive")
    if not token_matches_password(old, user):
        raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
    with transaction.atomic():  # the view runs outside the request transaction
        _outstanding, newly_blacklisted = old.blacklist()
        if newly_blacklisted:
            return token_pair_for(user)
    # A concurrent refresh with the same token won: this is a replay.
    _audit_reuse(refresh)
    raise AuthenticationFailed("Refresh token already used.", code="token_not_valid")


def _audit_reuse(refresh: str) -> None:
    """A genuine refresh token (its signature checks out) that was already rotated: someone
    replays a session. Recorded in its user's organization."""
    from rest_framework_simplejwt.state import token_backend

    from organizations import audit

    try:
        payload = token_backend.decode(refresh, verify=True)
    except Exception:
        return  # forged, expired or malformed: nothing to attribute
    if not BlacklistedToken.objects.filter(token__jti=payload.get("jti")).exists():
        return
    user = User.objects.filter(pk=payload.get("user_id"), org__isnull=False).first()
    if user is not None:
        audit.record("auth.refresh_reused", org=user.org_id, target=user, target_label=user.email)


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
        if "password" in fields and fresh.org_id:
            from organizations import audit

            audit.record("auth.password_changed", org=fresh.org_id, target=fresh, target_label=fresh.email)
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


# -- address verification and password reset -----------------------------------------
# The links carry a signed, timestamped {user, state} (django.core.signing, SECRET_KEY).
# `state` fingerprints what the link changes, so each link works once: a reset link
# stops working when the password changes, a verification link when the address is
# verified or changes.
_VERIFY_SALT = "precis.accounts.verify-email"
_RESET_SALT = "precis.accounts.password-reset"


def _state(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode()).hexdigest()[:32]


def _reset_state(user: User) -> str:
    return _state(user.password, user.email, user.is_active)


def _verify_state(user: User) -> str:
    return _state(user.email, user.email_verified_at)


def _read_link(token: str, *, salt: str, max_age: int, state, what: str) -> User:
    invalid = ValidationFailed(f"This {what} link is invalid, expired or already used.", "invalid_token", "token")
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
        user = User.objects.select_for_update(of=("self",)).select_related("org").get(pk=payload["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, DjangoValidationError, User.DoesNotExist):
        raise invalid from None
    if not user.is_active or payload.get("s") != state(user):
        raise invalid
    return user


def release_unverified(*, email: str) -> int:
    """Someone proved they read mail at `email`: an unverified account holding it gives it up.

    That account is deactivated (its tokens revoked) and renamed to an address nobody can
    receive mail at; its organization and documents stay, for an operator to look at.
    """
    released = 0
    for holder in User.objects.select_for_update().filter(email=normalize_email(email), email_verified_at__isnull=True):
        holder.email = f"released-{holder.pk.hex}@unverified.invalid"
        holder.is_active = False
        holder.save(update_fields=["email", "is_active"])
        user_revoke_all_tokens(user=holder)
        released += 1
    return released


def _mail_link(user: User, template: str, path: str, salt: str, state, **context) -> None:
    """Mail `user` a signed link to FRONTEND_URL/<path> (after the transaction commits)."""
    token = signing.dumps({"u": str(user.pk), "s": state(user)}, salt=salt)
    mail.send(
        template,
        to=user.email,
        context={"name": user.name, "email": user.email, "link": mail.link(path, token), **context},
        org_name=user.org.name if user.org_id else None,
    )


def email_verification_send(*, user: User) -> None:
    """Mail `user` a link that verifies their address (after the transaction commits)."""
    if user.email_verified:
        raise ValidationFailed("This address is already verified.", "already_verified")
    _mail_link(
        user, "verify_email", "verify-email", _VERIFY_SALT, _verify_state, ttl_hours=settings.EMAIL_VERIFY_TTL_HOURS
    )


@transaction.atomic
def email_verify(*, token: str) -> User:
    """Redeem a verification link: the address is the user's for good."""
    user = _read_link(
        token,
        salt=_VERIFY_SALT,
        max_age=settings.EMAIL_VERIFY_TTL_HOURS * 3600,
        state=_verify_state,
        what="verification",
    )
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])
    return user


def password_reset_request(*, email: str) -> None:
    """Mail a reset link if an active account has this address; answer the same either way."""
    user = User.objects.select_related("org").filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        return
    _mail_link(
        user,
        "password_reset",
        "reset-password",
        _RESET_SALT,
        _reset_state,
        ttl_minutes=settings.PASSWORD_RESET_TIMEOUT // 60,
    )


@transaction.atomic
def password_reset_confirm(*, token: str, password: str) -> User:
    """Set a new password from a reset link: every token of the user is revoked, and the
    address counts as verified (the link reached it)."""
    user = _read_link(
        token, salt=_RESET_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT, state=_reset_state, what="password reset"
    )
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), "weak_password", "password") from None
    user.set_password(password)
    user.email_verified_at = user.email_verified_at or timezone.now()
    user.save(update_fields=["password", "email_verified_at"])
    user_revoke_all_tokens(user=user)
    if user.org_id:
        from organizations import audit

        audit.record("auth.password_reset", org=user.org_id, actor=user, target=user, target_label=user.email)
    return user
