"""Organization write logic: creation, registration, members, invitations.

Services take the tenant (`org`) first and never trust ids from a payload to
belong to it: objects are looked up inside the org by the caller (the tenant
mixin) or here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import mail
from accounts import services as account_services
from accounts.models import RegistrationClaim, Role, User, normalize_email
from accounts.tokens import token_pair_for
from config.errors import Conflict, Forbidden, ValidationFailed

from . import audit
from .models import Invitation, Organization


def _unique_slug(name: str) -> str:
    base = (slugify(name) or "org")[:50]
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def organization_create(
    *,
    name: str,
    admin_email: str,
    admin_password: str | None,
    admin_name: str = "",
    verified: bool = False,
    admin_password_hash: str | None = None,
) -> tuple[Organization, User]:
    """A new organization with its first admin. Atomic: both or neither."""
    name = name.strip()
    if not name:
        raise ValidationFailed("The organization name must not be blank.", "blank", "organization_name")
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=_unique_slug(name))
        user = account_services.user_create(
            org=org,
            email=admin_email,
            password=admin_password,
            name=admin_name,
            role=Role.ADMIN,
            verified=verified,
            password_hash=admin_password_hash,
        )
    return org, user


def organization_register(
    *,
    email: str,
    password: str,
    name: str = "",
    organization_name: str | None = None,
    invitation_token: str | None = None,
) -> dict:
    """Public registration: create an org (caller becomes admin) or accept an invitation."""
    if bool(organization_name) == bool(invitation_token):
        raise ValidationFailed(
            "Give exactly one of organization_name (to create an organization) or invitation_token (to join one).",
            "organization_or_invitation_required",
        )
    if invitation_token:
        user = invitation_accept(token=invitation_token, email=email, password=password, name=name)
        org = user.org
    else:
        with transaction.atomic():
            if User.objects.filter(email=normalize_email(email), email_verified_at__isnull=True).exists():
                return registration_claim_create(
                    email=email, password=password, name=name, organization_name=organization_name or ""
                )
            org, user = organization_create(
                name=organization_name or "",
                admin_email=email,
                admin_password=password,
                admin_name=name,
            )
            account_services.email_verification_send(user=user)
    return {"user": user, "organization": org, **token_pair_for(user)}


# -- registering an address an unverified account holds -----------------------------
def registration_claim_create(*, email: str, password: str, name: str, organization_name: str) -> dict:
    """An unverified account holds `email`: mail a link that finishes this registration.

    Whoever opens it proves the address, so their registration wins (the unverified
    account gives the address up). Returns `{"claim": email}`; the view answers 202.
    """
    email = normalize_email(email)
    organization_name = organization_name.strip()
    if not organization_name:
        raise ValidationFailed("The organization name must not be blank.", "blank", "organization_name")
    probe = User(email=email, name=name)
    account_services.user_check_password_strength(password=password, user=probe)
    probe.set_password(password)
    token = secrets.token_urlsafe(32)
    RegistrationClaim.objects.create(
        token_hash=invitation_token_hash(token),
        email=email,
        password=probe.password,
        name=name,
        organization_name=organization_name,
        expires_at=timezone.now() + timedelta(hours=settings.EMAIL_VERIFY_TTL_HOURS),
    )
    mail.send(
        "registration_claim",
        to=email,
        context={
            "name": name,
            "email": email,
            "organization_name": organization_name,
            "link": mail.link("confirm-registration", token),
            "ttl_hours": settings.EMAIL_VERIFY_TTL_HOURS,
        },
    )
    return {"claim": email}


@transaction.atomic
def registration_claim_confirm(*, token: str) -> dict:
    """Finish a claimed registration: the address is proven, this registration wins."""
    claim = (
        RegistrationClaim.objects.select_for_update()
        .filter(token_hash=invitation_token_hash(token), expires_at__gt=timezone.now())
        .first()
    )
    if claim is None:
        raise ValidationFailed("This registration link is invalid, expired or already used.", "invalid_token", "token")
    org, user = organization_create(
        name=claim.organization_name,
        admin_email=claim.email,
        admin_password=None,
        admin_password_hash=claim.password,
        admin_name=claim.name,
        verified=True,
    )
    RegistrationClaim.objects.filter(email=claim.email).delete()  # this one and any rival claims
    return {"user": user, "organization": org, **token_pair_for(user)}


def registration_claim_purge() -> int:
    """Drop expired claims (and the password hashes they hold)."""
    return RegistrationClaim.objects.filter(expires_at__lte=timezone.now()).delete()[0]


BUDGET_FIELDS = ("monthly_token_budget", "monthly_cost_budget")


def organization_update(*, org: Organization, name: str | None = None, **budgets) -> Organization:
    """Rename the organization and set its monthly budgets (`monthly_token_budget`,
    `monthly_cost_budget`; None removes one). Only the fields given are written."""
    fields = []
    before = {"name": org.name, **{key: getattr(org, key) for key in BUDGET_FIELDS}}
    if name is not None:
        if not name.strip():
            raise ValidationFailed("The organization name must not be blank.", "blank", "name")
        org.name = name.strip()
        fields.append("name")
    for key, value in budgets.items():
        if key not in BUDGET_FIELDS:
            raise TypeError(f"unknown field {key}")
        setattr(org, key, value)
        fields.append(key)
    if fields:
        # Only these fields: a concurrent deactivation or event_seq increment must survive.
        org.save(update_fields=[*fields, "updated_at"])
        changes = audit.diff(before, {key: getattr(org, key) for key in fields})
        if "name" in changes:
            audit.record("org.updated", org=org, target=org, changes={"name": changes["name"]})
        budget_changes = {key: value for key, value in changes.items() if key in BUDGET_FIELDS}
        if budget_changes:
            audit.record("org.budget_changed", org=org, target=org, changes=budget_changes)
    return org


# -- members -------------------------------------------------------------------
def _lock_org(org: Organization) -> None:
    """Serialize role/activation changes of one org (the last-admin guard races otherwise)."""
    Organization.objects.select_for_update().filter(pk=org.pk).first()


def _would_leave_no_admin(*, org: Organization, user: User, role: str, is_active: bool) -> bool:
    if user.role != Role.ADMIN or not user.is_active:
        return False  # user is not currently an active admin: nothing is taken away
    if role == Role.ADMIN and is_active:
        return False
    others = User.objects.filter(org=org, role=Role.ADMIN, is_active=True).exclude(pk=user.pk)
    return not others.exists()


@transaction.atomic
def member_update(
    *,
    org: Organization,
    user: User,
    role: str | None = None,
    is_active: bool | None = None,
    **budgets,
) -> User:
    """Change a member's role, activation or monthly budgets (None removes one); the last
    active admin stays (409)."""
    _lock_org(org)
    user.refresh_from_db()
    new_role = role if role is not None else user.role
    new_active = is_active if is_active is not None else user.is_active
    if _would_leave_no_admin(org=org, user=user, role=new_role, is_active=new_active):
        raise Conflict("An organization must keep at least one active admin.", "last_admin")
    was_active = user.is_active
    before = {"role": user.role, "is_active": user.is_active, **{key: getattr(user, key) for key in budgets}}
    user.role, user.is_active = new_role, new_active
    for key, value in budgets.items():
        if key not in BUDGET_FIELDS:
            raise TypeError(f"unknown field {key}")
        setattr(user, key, value)
    user.save(update_fields=["role", "is_active", *budgets])
    changes = audit.diff(before, {"role": user.role, "is_active": user.is_active, **budgets})
    if changes:
        action = "member.deactivated" if was_active and not new_active else "member.updated"
        audit.record(action, org=org, target=user, target_label=user.email, changes=changes)
    if was_active and not new_active:
        account_services.user_revoke_all_tokens(user=user)
    return user


def member_deactivate(*, org: Organization, user: User) -> User:
    """Deactivate (never delete): the member's documents and jobs stay in the org."""
    return member_update(org=org, user=user, is_active=False)


# -- invitations ---------------------------------------------------------------
def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_create(
    *, org: Organization, created_by: User, email: str, role: str, expires_at=None
) -> tuple[Invitation, str]:
    """Invite `email` with `role` and mail them the one-time token, its only copy
    (valid until `expires_at`, by default INVITATION_TTL_DAYS from now).

    The token reaches nobody but the invitee, so accepting it proves the address. An
    unverified inviter cannot invite (Precis mails nobody for an unproven account); an
    address an unverified account holds can be invited: accepting wins it.
    """
    email = normalize_email(email)
    _require_verified(created_by)
    if User.objects.filter(email=email, email_verified_at__isnull=False).exists():
        raise ValidationFailed("A user with this email already exists.", "email_taken", "email")
    pending = Invitation.objects.filter(org=org, email=email, accepted_at__isnull=True, expires_at__gt=timezone.now())
    if pending.exists():
        raise ValidationFailed(
            "This email already has a pending invitation; revoke it first to send a new one.",
            "already_invited",
            "email",
        )
    token = Invitation.new_token()
    invitation = Invitation.objects.create(
        org=org,
        email=email,
        role=role,
        token_hash=invitation_token_hash(token),
        created_by=created_by,
        **({"expires_at": expires_at} if expires_at else {}),
    )
    invitation_send(invitation=invitation, token=token, inviter=created_by)
    audit.record("invitation.created", org=org, target=invitation, changes={"role": [None, role]})
    return invitation, token


def _require_verified(inviter: User) -> None:
    if not inviter.email_verified:
        raise Forbidden(
            "Verify your email address before inviting others (POST /api/v1/auth/email/verify/resend/).",
            "email_unverified",
        )


def invitation_resend(*, invitation: Invitation, by: User) -> Invitation:
    """Mail a pending (or expired) invitation again, with a new token: the old link stops
    working and the new one lives INVITATION_TTL_DAYS. An accepted one is refused (409)."""
    _require_verified(by)
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was accepted already.", "invitation_accepted")
    token = Invitation.new_token()
    invitation.token_hash = invitation_token_hash(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.save(update_fields=["token_hash", "expires_at", "updated_at"])
    invitation_send(invitation=invitation, token=token, inviter=by)
    audit.record("invitation.resent", org=invitation.org_id, target=invitation)
    return invitation


def invitation_send(*, invitation: Invitation, token: str, inviter: User | None) -> None:
    """Mail the invitee their invitation, in the organization's name (after commit)."""
    mail.send(
        "invitation",
        to=invitation.email,
        context={
            "email": invitation.email,
            "inviter": (inviter.name or inviter.email) if inviter else invitation.org.name,
            "role": invitation.get_role_display().lower(),
            "link": mail.link("accept-invitation", token),
            "expires_at": invitation.expires_at,
        },
        org_name=invitation.org.name,
    )


def invitation_revoke(*, org: Organization, invitation: Invitation) -> None:
    audit.record("invitation.revoked", org=org, target=invitation)
    invitation.delete()


@transaction.atomic
def invitation_accept(*, token: str, email: str, password: str, name: str = "") -> User:
    """Redeem an invitation: single use, before expiry, for the invited email only."""
    invitation = (
        Invitation.unscoped_objects.select_for_update()
        .select_related("org")
        .filter(token_hash=invitation_token_hash(token))
        .first()
    )
    if invitation is None or invitation.accepted_at is not None or not invitation.org.is_active:
        raise ValidationFailed(
            "This invitation is invalid or has already been used.",
            "invalid_invitation",
            "invitation_token",
        )
    if invitation.expires_at <= timezone.now():
        raise ValidationFailed("This invitation has expired.", "invitation_expired", "invitation_token")
    if normalize_email(email) != invitation.email:
        raise ValidationFailed(
            "This invitation was sent to a different email address.",
            "email_mismatch",
            "email",
        )
    user = account_services.user_create(
        org=invitation.org,
        email=email,
        password=password,
        name=name,
        role=invitation.role,
        verified=True,  # the token was only ever mailed to this address
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit.record("invitation.accepted", org=invitation.org, actor=user, target=invitation)
    return user
