"""Event webhooks: an organization's events POSTed to the URLs its admins subscribe.

A subscription names a URL and event types (EVENT_TYPES). When such an event is published,
a `WebhookDelivery` is written *in the event's transaction* (realtime.events calls
`record`), so an event that commits is never lost for its subscribers, and one that rolls
back is never sent. After commit a task makes the first attempt; beat's sweep
(`deliver_due`, every WEBHOOK_SWEEP_S) makes the later ones and any the broker missed.

Each attempt POSTs the event's envelope (`{"id", "type", "org_id", "created_at", "data"}`, as
the WebSocket sends it) through the outbound guard (integrations.outbound: public addresses
only, each connection pinned to the address checked), with `X-Precis-Event`,
`X-Precis-Event-Id` (the event's id: the same on every retry, to de-duplicate),
`X-Precis-Delivery`, `X-Precis-Timestamp` and `X-Precis-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">` with the subscription's secret. Receivers recompute it and refuse
timestamps older than a few minutes. Delivery is at-least-once.

A 2xx delivers. Anything else (an error status, a timeout, a refused address) is retried
after BACKOFF_S — 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h: about a day — and
then given up. A subscription whose deliveries are given up DISABLE_AFTER times in a row is
disabled, and its organization's admins are mailed. Admins redeliver by hand.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from organizations import audit

from . import outbound
from .models import WebhookDelivery, WebhookSubscription
from .providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "summary.created",
    "document.ready",
    "document.failed",
    "document.deleted",
    "batch.completed",
    "batch.cancelled",
    "budget.threshold",
)
BACKOFF_S = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
DISABLE_AFTER = 5  # deliveries given up on in a row
ATTEMPT_LEASE_S = 120  # an attempt in progress holds its delivery this long
RESPONSE_BYTES = 16 * 1024


# -- subscriptions --------------------------------------------------------------------------
def subscription_create(*, org, user, url: str, event_types: list[str]) -> tuple[WebhookSubscription, str]:
    """A subscription and its signing secret, shown once. The URL is checked now (400 for a
    private, loopback or metadata address), and again at every delivery."""
    outbound.check_url(url)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    subscription = WebhookSubscription(org=org, url=url.strip(), event_types=sorted(set(event_types)), created_by=user)
    subscription.secret = secret
    subscription.save()
    audit.record("webhook.created", org=org, target=subscription, changes={"event_types": subscription.event_types})
    return subscription, secret


def subscription_update(*, subscription: WebhookSubscription, **fields) -> WebhookSubscription:
    """Change the URL, the event types or `is_active` (re-enabling clears the failure count)."""
    if "url" in fields:
        outbound.check_url(fields["url"])
        subscription.url = fields["url"].strip()
    if "event_types" in fields:
        subscription.event_types = sorted(set(fields["event_types"]))
    if "is_active" in fields:
        subscription.is_active = fields["is_active"]
        if subscription.is_active:
            subscription.consecutive_failures, subscription.disabled_reason = 0, ""
    subscription.save()
    audit.record("webhook.updated", org=subscription.org_id, target=subscription, changes=dict(fields))
    return subscription


def subscription_delete(*, subscription: WebhookSubscription) -> None:
    audit.record("webhook.deleted", org=subscription.org_id, target=subscription)
    subscription.delete()


# -- events in, deliveries out ---------------------------------------------------------------
def record(org_id, envelopes: list[dict]) -> None:
    """Deliveries for the subscribers of these events (in the caller's transaction)."""
    wanted = [envelope for envelope in envelopes if envelope["type"] in EVENT_TYPES]
    if not wanted:
        return
    subscriptions = list(WebhookSubscription.unscoped_objects.filter(org_id=org_id, is_active=True))
    deliveries = [
        WebhookDelivery(
            org_id=org_id,
            subscription=subscription,
            event_id=envelope["id"],
            event_type=envelope["type"],
            payload=envelope,
            next_attempt_at=timezone.now(),
        )
        for envelope in wanted
        for subscription in subscriptions
        if envelope["type"] in subscription.event_types
    ]
    if deliveries:
        WebhookDelivery.unscoped_objects.bulk_create(deliveries)
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _hand_over(ids))


def _hand_over(ids) -> None:
    from .tasks import deliver_webhook

    if settings.EMBEDDED:  # no worker: a thread of this process makes the attempts (and the tick the retries)
        threading.Thread(target=_deliver_here, args=(list(ids),), name="precis-webhooks", daemon=True).start()
        return
    for delivery_id in ids:
        try:
            deliver_webhook.apply_async(args=[str(delivery_id)], queue="default", retry=False)
        except Exception:  # the broker is down: beat's sweep makes the attempt
            logger.warning("broker unreachable; webhook delivery %s waits for the sweep", delivery_id)
            return


def _deliver_here(ids) -> None:
    from django.db import close_old_connections

    try:
        for delivery_id in ids:
            deliver(delivery_id)
    except Exception:  # the sweep tries again
        logger.exception("webhook delivery failed")
    finally:
        close_old_connections()


def deliver(delivery_id) -> str | None:
    """One attempt, if the delivery is due and nobody else is making one; its outcome."""
    now = timezone.now()
    claimed = WebhookDelivery.unscoped_objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=ATTEMPT_LEASE_S))
    if not claimed:
        return None
    delivery = WebhookDelivery.unscoped_objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Precis-Webhook/1",
        "X-Precis-Event": delivery.event_type,
        "X-Precis-Event-Id": str(delivery.event_id),
        "X-Precis-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(subscription.secret, timestamp, body),
    }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = outbound.request(
            "POST",
            subscription.url,
            data=body,
            headers=headers,
            max_bytes=RESPONSE_BYTES,
            timeout_s=settings.WEBHOOK_TIMEOUT_S,
        )
        status_code = response.status
        if not 200 <= response.status < 300:
            error = f"The receiver answered {response.status}."
    except outbound.OutboundError as failure:
        error = failure.detail
    except Exception as failure:  # a refused address (a guard's 400), anything else: an attempt that failed
        error = str(getattr(failure, "detail", failure)) or failure.__class__.__name__
    return _settle(delivery, status_code, error, int((time.monotonic() - started) * 1000))


def _settle(delivery: WebhookDelivery, status_code: int | None, error: str, duration_ms: int) -> str:
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error, delivery.last_duration_ms = status_code, error[:500], duration_ms
    subscription = delivery.subscription
    with transaction.atomic():
        if not error:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.Status.DELIVERED,
                timezone.now(),
                None,
            )
            WebhookSubscription.unscoped_objects.filter(pk=subscription.pk).update(consecutive_failures=0)
        elif delivery.attempts <= len(BACKOFF_S):
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=BACKOFF_S[delivery.attempts - 1])
        else:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            _count_a_failure(subscription)
        delivery.save(
            update_fields=[
                "attempts",
                "status",
                "next_attempt_at",
                "delivered_at",
                "last_status_code",
                "last_error",
                "last_duration_ms",
                "updated_at",
            ]
        )
    return delivery.status


def _count_a_failure(subscription: WebhookSubscription) -> None:
    from django.db.models import F

    rows = WebhookSubscription.unscoped_objects.filter(pk=subscription.pk)
    rows.update(consecutive_failures=F("consecutive_failures") + 1)
    failures = rows.values_list("consecutive_failures", flat=True).first() or 0
    reason = f"{failures} deliveries in a row were given up after about a day of retries."
    if failures >= DISABLE_AFTER and rows.filter(is_active=True).update(is_active=False, disabled_reason=reason):
        _mail_admins(subscription, reason)


def _mail_admins(subscription: WebhookSubscription, reason: str) -> None:
    from accounts import mail
    from accounts.models import Role, User
    from organizations.models import Organization

    org = Organization.objects.get(pk=subscription.org_id)
    for admin in User.objects.filter(org_id=org.pk, role=Role.ADMIN, is_active=True):
        mail.send(
            "webhook_disabled", to=admin.email, context={"url": subscription.url, "reason": reason}, org_name=org.name
        )


def deliver_due(limit: int = 200) -> int:
    """Beat's sweep: the attempts that are due (retries, and first attempts the broker missed)."""
    due = (
        WebhookDelivery.unscoped_objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for delivery_id in list(due) if deliver(delivery_id) is not None)


def purge() -> int:
    """Retention: finished deliveries (delivered or given up) older than
    WEBHOOK_DELIVERY_RETENTION_DAYS go; pending ones stay whatever their age."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    finished = WebhookDelivery.unscoped_objects.exclude(status=WebhookDelivery.Status.PENDING)
    deleted, _ = finished.filter(created_at__lt=cutoff).delete()
    return deleted


def redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """An admin's retry: the delivery starts over (a new day of attempts), now."""
    delivery.status, delivery.attempts, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, 0, timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    ids = [delivery.pk]
    transaction.on_commit(lambda: _hand_over(ids))
    return delivery
