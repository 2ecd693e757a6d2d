"""Organizations and the tenancy kernel every tenant-owned model stands on.

Tenancy rule (DESIGN.md): every tenant-owned row carries an indexed `org` FK,
and request/task code reaches those rows only through `TenantModel.objects`,
a django-scopes manager that *raises* when no org scope is active. Code that
deliberately spans organizations (the superuser admin, migrations, operator
commands) says so by using `unscoped_objects` or `scopes_disabled()`.
"""

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_scopes import ScopedManager

from accounts.models import Role


class BaseModel(models.Model):
    """UUID primary key and timestamps: no integer ids ever reach the wire."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Organization(BaseModel):
    name = models.CharField(max_length=200, help_text="Shown to members, in the admin's header and in mails.")
    slug = models.SlugField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens (prompt + completion) the organization may spend a month; empty: no limit.",
    )
    monthly_cost_budget = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="What the organization's LLM calls may cost a month, in LLM_PRICES' currency; empty: no limit.",
    )
    # Sequence of the org's realtime events (realtime.events): gap-free, in commit order.
    event_seq = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantModel(BaseModel):
    """Abstract base of every tenant-owned model.

    `objects` is fail-closed: outside `django_scopes.scope(org=...)` any query
    raises ScopeError. The *default* manager is the plain `unscoped_objects` so
    that Django's machinery (admin, related lookups, cascades) keeps working;
    that machinery is scoped by the tenant admin mixin and by starting from an
    already-scoped object.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = ScopedManager(org="org")
    unscoped_objects = models.Manager()

    class Meta:
        abstract = True
        default_manager_name = "unscoped_objects"
        base_manager_name = "unscoped_objects"


def _invitation_expiry():
    return timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)


class Invitation(TenantModel):
    """A single-use, expiring invitation to join an organization.

    Only a SHA-256 of the token is stored; the token itself is shown once, in
    the response that creates the invitation.
    """

    email = models.EmailField(
        max_length=254, help_text="The invitation is mailed here; accepting it proves the address."
    )
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="Admins manage members, templates and integrations; members work with documents.",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(
        default=_invitation_expiry, help_text="After this the link no longer works (at most INVITATION_TTL_DAYS)."
    )
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        editable=False,
    )

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["org", "-created_at"], name="invitation_org_created")]

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"

    def clean(self) -> None:
        """An invitation lives at most INVITATION_TTL_DAYS (the admin form checks this too)."""
        from django.core.exceptions import ValidationError

        latest = (self.created_at or timezone.now()) + timedelta(days=settings.INVITATION_TTL_DAYS, minutes=1)
        if self.expires_at and self.expires_at > latest:
            raise ValidationError(
                {"expires_at": f"An invitation expires within {settings.INVITATION_TTL_DAYS} days of its creation."}
            )

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class IdempotencyRecord(TenantModel):
    """The first response to a POST carrying an `Idempotency-Key` header.

    A retry with the same key (same org, same user, same endpoint) gets this
    response back instead of creating a second object. Unique per
    (org, user, scope, key); kept IDEMPOTENCY_TTL_HOURS. See organizations.idempotency.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=200)  # e.g. "documents.create"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["org", "user", "scope", "key"], name="idempotency_unique_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class ApiKey(TenantModel):
    """An organization's key for servers and scripts (organizations.api_keys).

    Shown once when created (`pk_<prefix>_<secret>`); only its SHA-256 is stored, the
    prefix stays visible. It acts as its creator with its own role (never more than the
    creator's at the time of the request) and scopes; revoking it takes effect at once.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"

    name = models.CharField(max_length=200, help_text="What the key is for (a server, a script).")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    role = models.CharField(
        max_length=16, choices=Role.choices, default=Role.MEMBER, help_text="At most its creator's role."
    )
    scopes = models.JSONField(default=list, help_text="`read` (GET) and/or `write` (everything else).")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the key does not expire.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        verbose_name = "API key"
        indexes = [models.Index(fields=["org", "-created_at"], name="apikey_org_created")]

    def __str__(self) -> str:
        return f"{self.name} (pk_{self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class AuditEntry(TenantModel):
    """One security-relevant action in an organization (organizations.audit): append-only."""

    action = models.CharField(max_length=64)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_key = models.ForeignKey(
        "organizations.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=300, blank=True, default="")  # kept when the actor is gone
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_label = models.CharField(max_length=300, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)  # {field: [before, after]} or other facts
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    request_id = models.CharField(max_length=128, blank=True, default="")

    class Meta(TenantModel.Meta):
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["org", "-created_at"], name="audit_org_created"),
            models.Index(fields=["org", "action", "-created_at"], name="audit_org_action"),
            models.Index(fields=["created_at"], name="audit_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or 'system'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The audit log is append-only (retention purges it: organizations.audit.purge).")
