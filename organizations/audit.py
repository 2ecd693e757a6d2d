"""The audit log: an append-only record, per organization, of security-relevant actions.

`record(action, org=…, target=…, changes=…)` is called by the service that performs the
action, inside its transaction: the entry commits with the action or not at all. The
actor (the signed-in user, or the API key and the user it acts as), the client's address
(REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies, as the throttles read it),
the user agent and the request id come from the request being served
(config.middleware.current_request); outside a request (commands, workers) they are empty
unless given. Failed logins and refresh-token reuse are written by views that run outside
the request transaction, so the refusal does not roll them back.

Entries are never changed or deleted, except by retention: `purge()` (beat, daily) removes
those older than AUDIT_RETENTION_DAYS.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import ApiKey, AuditEntry

ACTIONS = {
    "auth.login": "signed in",
    "auth.login_failed": "failed to sign in",
    "auth.refresh_reused": "reused a refresh token (a stolen or replayed session)",
    "auth.password_changed": "changed their password",
    "auth.password_reset": "reset their password from a mailed link",
    "member.updated": "changed a member's role, activation or budget",
    "member.deactivated": "deactivated a member",
    "invitation.created": "invited someone",
    "invitation.resent": "mailed an invitation again",
    "invitation.revoked": "revoked an invitation",
    "invitation.accepted": "accepted an invitation",
    "api_key.created": "created an API key",
    "api_key.revoked": "revoked an API key",
    "integration.connected": "connected an integration",
    "integration.disconnected": "disconnected an integration",
    "integration.published": "published a summary through an integration",
    "template.created": "created a template",
    "template.updated": "changed a template",
    "template.deleted": "deleted a template",
    "document.deleted": "deleted a document",
    "org.updated": "renamed the organization",
    "org.budget_changed": "changed a monthly budget",
    "org.exported": "exported the organization's data",
    "webhook.created": "subscribed a URL to events",
    "webhook.updated": "changed an event webhook",
    "webhook.deleted": "deleted an event webhook",
}
TEXT_LIMIT = 300


def record(
    action: str,
    *,
    org,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_label: str = "",
    changes: dict[str, Any] | None = None,
    actor=None,
    actor_label: str = "",
) -> AuditEntry:
    """Append one entry (in the caller's transaction)."""
    from config.middleware import current_request

    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    request = current_request.get()
    user, key = actor, None
    if request is not None:
        auth = getattr(request, "auth", None)
        key = auth if isinstance(auth, ApiKey) else None
        if user is None:
            who = getattr(request, "user", None)
            user = who if who is not None and who.is_authenticated else None
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
        target_label = target_label or str(target)
    label = actor_label or (getattr(user, "email", "") if user else "")
    if key is not None:
        label = f"{label} (API key pk_{key.prefix}…)"
    return AuditEntry.unscoped_objects.create(
        org_id=getattr(org, "pk", org),
        action=action,
        actor_user=user if user is not None and getattr(user, "pk", None) else None,
        actor_key=key,
        actor_label=label[:TEXT_LIMIT],
        target_type=target_type[:64],
        target_id=target_id[:64],
        target_label=target_label[:TEXT_LIMIT],
        changes=changes or {},
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:TEXT_LIMIT],
        request_id=getattr(request, "request_id", "") if request else "",
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{field: [before, after]} for the fields that changed (values as JSON-safe text)."""

    def shown(value):
        return value if value is None or isinstance(value, (bool, int, str)) else str(value)

    return {name: [shown(before.get(name)), shown(value)] for name, value in after.items() if before.get(name) != value}


def client_ip(request) -> str | None:
    """The client's address as the throttles take it; None when it is not an address."""
    import ipaddress

    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            address = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def purge() -> int:
    """Retention: delete entries older than AUDIT_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEntry.unscoped_objects.filter(created_at__lt=cutoff).delete()
    return deleted
