"""The Precis user: email login, one organization, one role in it."""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


def normalize_email(email: str) -> str:
    """Emails are stored and compared lower-cased: login is case-insensitive."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))

    def create_user(self, email, password=None, **extra):
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_superuser", True)
        extra.setdefault("role", Role.ADMIN)
        extra.setdefault("email_verified_at", timezone.now())  # an operator made it
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Belongs to at most one organization (superusers may have none).

    Admin-site access ("staff") is not a separate flag: it is derived from the
    role, so an org admin can always manage their own org in the Django admin
    (tenant-scoped) and a member never can.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    org = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
    )
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="Admins manage the organization (this site included); members use the API.",
    )
    is_active = models.BooleanField(default=True)
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens this user may spend a month, within the organization's; empty: no limit.",
    )
    monthly_cost_budget = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="What this user's LLM calls may cost a month."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    # Set when the user proved they read mail at `email` (a verification link, an
    # invitation, a password reset). Until then another person who proves the address
    # takes it over (accounts.services.release_unverified).
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        indexes = [models.Index(fields=["org", "email"], name="user_org_email")]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @property
    def is_staff(self) -> bool:
        return self.is_superuser or (self.role == Role.ADMIN and self.org_id is not None)

    @property
    def is_org_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class RegistrationClaim(models.Model):
    """A registration for an address an unverified account holds, waiting for proof.

    The registrant gets a link at the address; opening it (POST /auth/register/confirm/)
    releases the unverified account and creates theirs. Only a SHA-256 of the link's
    token is stored, and the password only as Django hashes it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(max_length=254)
    password = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True)
    organization_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="registration_claim_expires")]

    def __str__(self) -> str:
        return self.email
