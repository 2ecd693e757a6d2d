"""Event webhooks (issue 18): subscriptions, deliveries written with their events, signed
POSTs to a loopback receiver that fails and then succeeds, backoff for about a day, the
delivery log, redelivery, and disabling a subscription that keeps failing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conftest import assert_error_shape
from integrations import event_webhooks
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.tests.fake_providers import Failure
from realtime import events

pytestmark = pytest.mark.django_db
HOOKS = "/api/v1/webhooks/"


def subscribe(client, url, types=("job.succeeded", "summary.created")):
    return client.post(HOOKS, {"url": url, "event_types": list(types)}, format="json")


@pytest.fixture
def hook(tenant, fake_providers) -> dict:
    response = subscribe(tenant.client(), f"{fake_providers.url}/hook")
    assert response.status_code == 201, response.content
    return response.json()


def publish_job_succeeded(org, job_id="j1") -> dict:
    with transaction.atomic():
        return events.publish(org.pk, "job.succeeded", {"id": job_id, "status": "succeeded"})["envelope"]


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does: recompute the signature over "<timestamp>.<body>"."""
    signed = headers["X-Precis-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Precis-Signature"])


class TestSubscriptions:
    def test_the_secret_is_shown_once(self, tenant, hook):
        assert hook["secret"].startswith("whsec_") and hook["event_types"] == ["job.succeeded", "summary.created"]
        shown = tenant.client().get(f"{HOOKS}{hook['id']}/").json()
        assert "secret" not in shown and hook["secret"] not in json.dumps(tenant.client().get(HOOKS).json())
        stored = WebhookSubscription.unscoped_objects.get()
        assert hook["secret"] not in stored.secret_encrypted and stored.secret == hook["secret"]

    def test_admins_of_the_org_only(self, tenant, other_tenant, hook, fake_providers):
        assert_error_shape(subscribe(tenant.client(tenant.member), f"{fake_providers.url}/hook"), 403)
        assert_error_shape(tenant.client(tenant.member).get(HOOKS), 403)
        assert_error_shape(other_tenant.client().get(f"{HOOKS}{hook['id']}/"), 404)
        assert_error_shape(other_tenant.client().delete(f"{HOOKS}{hook['id']}/"), 404)
        assert_error_shape(other_tenant.client().get(f"{HOOKS}{hook['id']}/deliveries/"), 404)
        assert other_tenant.client().get(HOOKS).json()["results"] == []
        assert WebhookSubscription.unscoped_objects.filter(is_active=True).count() == 1

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"url": "http://10.0.0.5/hook", "event_types": ["job.failed"]}, None),  # a private address
            ({"url": "http://169.254.169.254/", "event_types": ["job.failed"]}, None),
            ({"url": "ftp://example.com/x", "event_types": ["job.failed"]}, None),
            ({"url": "https://hooks.example.com/x", "event_types": ["job.progress"]}, "event_types.0"),
            ({"url": "https://hooks.example.com/x", "event_types": []}, "event_types"),
            ({"url": "https://hooks.example.com/x", "event_types": "job.failed"}, "event_types"),
            ({"url": "https://hooks.example.com/\x00", "event_types": ["job.failed"]}, "url"),
            ({"url": "https://x.example.com/" + "a" * 2000, "event_types": ["job.failed"]}, "url"),
            ({"url": "https://hooks.example.com/x", "event_types": ["job.failed"], "secret": "mine"}, "secret"),
        ],
    )
    def test_bad_input(self, tenant, body, attr):
        # (The host names below are never resolved: each body is refused before its address is.)
        response = tenant.client().post(HOOKS, body, format="json")
        if attr is None:
            assert_error_shape(response, 400)
        else:
            assert_error_shape(response, 400, attr=attr)
        assert not WebhookSubscription.unscoped_objects.exists()

    def test_change_and_delete(self, tenant, hook):
        client = tenant.client()
        changed = client.patch(f"{HOOKS}{hook['id']}/", {"event_types": ["job.failed"]}, format="json").json()
        assert changed["event_types"] == ["job.failed"]
        assert client.delete(f"{HOOKS}{hook['id']}/").status_code == 204
        assert not WebhookSubscription.unscoped_objects.exists()


class TestDeliveries:
    def test_a_delivery_is_written_with_its_event_and_not_without_it(self, tenant, hook):
        envelope = publish_job_succeeded(tenant.org)
        (delivery,) = WebhookDelivery.unscoped_objects.all()
        assert str(delivery.event_id) == envelope["id"] and delivery.payload == envelope
        with pytest.raises(RuntimeError), transaction.atomic():
            events.publish(tenant.org.pk, "job.succeeded", {"id": "rolled-back"})
            raise RuntimeError("the action fails")
        with transaction.atomic():
            events.publish(tenant.org.pk, "job.progress", {"id": "x", "progress": 50})  # not subscribable
            events.publish(tenant.org.pk, "job.failed", {"id": "x"})  # not subscribed to
        assert WebhookDelivery.unscoped_objects.count() == 1

    def test_a_signed_post_that_the_receiver_can_verify(self, tenant, hook, fake_providers):
        envelope = publish_job_succeeded(tenant.org)
        delivery = WebhookDelivery.unscoped_objects.get()
        assert event_webhooks.deliver(delivery.pk) == "delivered"
        (received,) = fake_providers.webhooks
        assert json.loads(received["body"]) == envelope
        headers = received["headers"]
        assert verify(hook["secret"], headers, received["body"])
        assert headers["X-Precis-Event"] == "job.succeeded" and headers["X-Precis-Event-Id"] == envelope["id"]
        assert abs(int(headers["X-Precis-Timestamp"]) - timezone.now().timestamp()) < 60
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
        assert delivery.last_duration_ms is not None and delivery.delivered_at is not None
        assert event_webhooks.deliver(delivery.pk) is None  # delivered: never sent again

    def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(self, tenant, hook, fake_providers):
        fake_providers.fail("/hook", Failure(500), Failure(503, headers={"Retry-After": "1"}))
        envelope = publish_job_succeeded(tenant.org)
        delivery = WebhookDelivery.unscoped_objects.get()
        assert event_webhooks.deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert delivery.last_status_code == 500 and "answered 500" in delivery.last_error
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 25 < wait <= 30  # the first backoff
        assert event_webhooks.deliver_due() == 0  # not due yet
        for expected in ("pending", "delivered"):
            WebhookDelivery.unscoped_objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
            assert event_webhooks.deliver_due() == 1
            delivery.refresh_from_db()
            assert delivery.status == expected
        assert delivery.attempts == 3
        (received,) = fake_providers.webhooks
        assert received["headers"]["X-Precis-Event-Id"] == envelope["id"]  # the same id on every try
        assert 20 * 3600 <= sum(event_webhooks.BACKOFF_S) <= 28 * 3600  # about a day of retries

    def test_a_private_address_is_refused_at_delivery_too(self, tenant, hook):
        WebhookSubscription.unscoped_objects.update(url="http://10.0.0.9/hook")  # e.g. DNS now points inside
        publish_job_succeeded(tenant.org)
        delivery = WebhookDelivery.unscoped_objects.get()
        assert event_webhooks.deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert "non-public address" in delivery.last_error and delivery.last_status_code is None

    def test_the_log_and_redelivery(self, tenant, other_tenant, hook, fake_providers):
        fake_providers.fail("/hook", Failure(500))
        publish_job_succeeded(tenant.org)
        delivery = WebhookDelivery.unscoped_objects.get()
        WebhookDelivery.unscoped_objects.filter(pk=delivery.pk).update(
            attempts=len(event_webhooks.BACKOFF_S), next_attempt_at=timezone.now()
        )
        assert event_webhooks.deliver(delivery.pk) == "failed"  # the last attempt: given up
        log = tenant.client().get(f"{HOOKS}{hook['id']}/deliveries/").json()["results"]
        assert [(row["status"], row["last_status_code"]) for row in log] == [("failed", 500)]
        url = f"{HOOKS}{hook['id']}/deliveries/{delivery.pk}/redeliver/"
        assert_error_shape(other_tenant.client().post(url), 404)
        assert_error_shape(tenant.client(tenant.member).post(url), 403)
        response = tenant.client().post(url)
        assert response.status_code == 202 and response.json()["status"] == "pending"
        assert event_webhooks.deliver(delivery.pk) == "delivered"
        assert len(fake_providers.webhooks) == 1

    def test_a_subscription_that_keeps_failing_is_disabled(self, tenant, hook, fake_providers):
        WebhookSubscription.unscoped_objects.update(consecutive_failures=event_webhooks.DISABLE_AFTER - 1)
        fake_providers.fail("/hook", Failure(500))
        publish_job_succeeded(tenant.org)
        delivery = WebhookDelivery.unscoped_objects.get()
        WebhookDelivery.unscoped_objects.filter(pk=delivery.pk).update(attempts=len(event_webhooks.BACKOFF_S))
        assert event_webhooks.deliver(delivery.pk) == "failed"
        subscription = WebhookSubscription.unscoped_objects.get()
        assert not subscription.is_active and "in a row were given up" in subscription.disabled_reason
        publish_job_succeeded(tenant.org, "j2")
        assert WebhookDelivery.unscoped_objects.count() == 1  # a disabled subscription gets nothing
        again = tenant.client().patch(f"{HOOKS}{hook['id']}/", {"is_active": True}, format="json").json()
        assert again["is_active"] and again["consecutive_failures"] == 0 and again["disabled_reason"] == ""


@pytest.mark.django_db(transaction=True)
def test_a_summary_s_events_reach_the_receiver_through_the_worker(celery_worker, fake_providers, tenant, mailbox):
    """End to end: a summarize job succeeds in a real worker; its job.succeeded and
    summary.created are delivered by the worker's task, signed."""
    from config.tests.process_fixtures import wait_until

    hook = subscribe(tenant.client(), f"{fake_providers.url}/hook").json()
    client = tenant.client()
    document = client.post("/api/v1/documents/", {"title": "T", "content": "The council met. It voted."}).json()
    job = client.post(f"/api/v1/documents/{document['id']}/summarize/", {"provider": "local"}, format="json").json()
    wait_until(lambda: len(fake_providers.webhooks) >= 2, timeout=30)
    kinds = sorted(json.loads(w["body"])["type"] for w in fake_providers.webhooks)
    assert kinds == ["job.succeeded", "summary.created"]
    assert all(verify(hook["secret"], w["headers"], w["body"]) for w in fake_providers.webhooks)
    succeeded = next(json.loads(w["body"]) for w in fake_providers.webhooks if b"job.succeeded" in w["body"])
    assert succeeded["data"]["id"] == job["id"]
    assert set(WebhookDelivery.unscoped_objects.values_list("status", flat=True)) == {"delivered"}


def test_the_disabling_mail_goes_to_the_admins(tenant, hook, fake_providers, django_capture_on_commit_callbacks):
    from accounts import mail

    sent = []
    original = mail.render

    def capture(template, **kwargs):
        message = original(template, **kwargs)
        sent.append((template, kwargs["to"], message["subject"]))
        return message

    WebhookSubscription.unscoped_objects.update(consecutive_failures=event_webhooks.DISABLE_AFTER - 1)
    fake_providers.fail("/hook", Failure(500))
    publish_job_succeeded(tenant.org)
    delivery = WebhookDelivery.unscoped_objects.get()
    WebhookDelivery.unscoped_objects.filter(pk=delivery.pk).update(
        attempts=len(event_webhooks.BACKOFF_S), next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    mail.render = capture
    try:
        event_webhooks.deliver(delivery.pk)
    finally:
        mail.render = original
    assert sent == [("webhook_disabled", tenant.admin.email, "An event webhook of Acme was disabled")]


@pytest.mark.django_db(transaction=True)
def test_the_embedded_mode_delivers_from_a_thread_of_the_server(tenant, fake_providers, settings):
    """`make run` has no worker and no beat: the first attempt runs in a thread of the server."""
    from config.tests.process_fixtures import wait_until

    settings.EMBEDDED = True
    subscribe(tenant.client(), f"{fake_providers.url}/hook")
    publish_job_succeeded(tenant.org)
    wait_until(lambda: fake_providers.webhooks, timeout=10)
    delivery = wait_until(lambda: WebhookDelivery.unscoped_objects.filter(status="delivered").first(), timeout=10)
    assert delivery.attempts == 1


def test_finished_deliveries_are_purged_after_their_retention(tenant, hook, settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    for job_id in ("old-delivered", "old-pending", "new-delivered"):
        publish_job_succeeded(tenant.org, job_id)
    rows = {d.payload["data"]["id"]: d for d in WebhookDelivery.unscoped_objects.all()}
    old = timezone.now() - timedelta(days=31)
    WebhookDelivery.unscoped_objects.filter(pk=rows["old-delivered"].pk).update(status="delivered", created_at=old)
    WebhookDelivery.unscoped_objects.filter(pk=rows["old-pending"].pk).update(created_at=old)
    WebhookDelivery.unscoped_objects.filter(pk=rows["new-delivered"].pk).update(status="delivered")
    assert event_webhooks.purge() == 1
    assert {d.payload["data"]["id"] for d in WebhookDelivery.unscoped_objects.all()} == {"old-pending", "new-delivered"}
