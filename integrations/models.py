"""Integrations: an organization's connection to an outside service, secrets encrypted."""

import json

from django.conf import settings
from django.db import models

from organizations.models import TenantModel

from . import crypto


class Integration(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"  # the provider refused the token (401)
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorization"  # refresh refused: reconnect
        REVOKED = "revoked", "Revoked"
        ERROR = "error", "Error"

    provider = models.CharField(max_length=32)
    name = models.CharField(max_length=200, blank=True, default="", help_text="How members tell this connection apart.")
    account_name = models.CharField(max_length=200, blank=True, default="")
    external_account_id = models.CharField(max_length=200, blank=True, default="")
    scopes = models.JSONField(default=list, blank=True)
    # Ciphertexts (Fernet); never plain text, never in API responses, logs or the admin.
    access_token_encrypted = models.TextField(blank=True, default="", editable=False)
    refresh_token_encrypted = models.TextField(blank=True, default="", editable=False)
    config_encrypted = models.TextField(blank=True, default="", editable=False)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_detail = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    ENCRYPTED_FIELDS = ("access_token_encrypted", "refresh_token_encrypted", "config_encrypted")

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["org", "-created_at"], name="integration_org_created")]

    def __str__(self) -> str:
        return f"{self.provider}: {self.name or self.account_name}"

    # Plain values exist only in memory, through these properties.
    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = crypto.encrypt(value or "")

    @property
    def refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted)

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = crypto.encrypt(value or "")

    @property
    def config(self) -> dict:
        return json.loads(crypto.decrypt(self.config_encrypted) or "{}")

    @config.setter
    def config(self, value: dict) -> None:
        self.config_encrypted = crypto.encrypt(json.dumps(value or {}))


class OAuthState(TenantModel):
    """One authorization attempt: single use, short-lived, bound to org + user + provider,
    and to the browser that started it (the SHA-256 of the nonce in its cookie)."""

    state_hash = models.CharField(max_length=64, unique=True)
    browser_nonce_hash = models.CharField(max_length=64)
    provider = models.CharField(max_length=32)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_verifier_encrypted = models.TextField()
    redirect_uri = models.CharField(max_length=1000)
    # Reconnecting an existing integration keeps its id.
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Where the browser lands after the callback: "" for the API's (FRONTEND_URL or JSON),
    # "admin" for a flow started from the admin console.
    return_to = models.CharField(max_length=16, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.provider} state ({'used' if self.used_at else 'open'})"


class WebhookSubscription(TenantModel):
    """An admin's URL that receives the organization's events (integrations.event_webhooks)."""

    url = models.CharField(max_length=2000, help_text="Where the events are POSTed: a public http(s) address.")
    event_types = models.JSONField(default=list, help_text="The event types sent here.")
    secret_encrypted = models.TextField(editable=False)  # signs every delivery; Fernet, never shown again
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)  # deliveries given up on in a row
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(TenantModel.Meta):
        verbose_name = "event webhook"
        indexes = [models.Index(fields=["org", "is_active"], name="webhooksub_org_active")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)


class WebhookDelivery(TenantModel):
    """One event for one subscription: its attempts, until delivered or given up on."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Given up"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()  # the event's envelope, as the socket gets it
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        indexes = [
            models.Index(fields=["subscription", "-created_at"], name="webhookdel_sub_created"),
            models.Index(fields=["status", "next_attempt_at"], name="webhookdel_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.status})"
