"""What is kept only as long as it is needed: Idempotency-Key records and OAuth states."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.models import OAuthState
from integrations.tasks import purge_oauth_states
from organizations.models import IdempotencyRecord
from organizations.tasks import purge_idempotency

pytestmark = pytest.mark.django_db

DOCS = "/api/v1/documents/"


def test_a_deleted_documents_replayable_response_goes_with_it(tenant):
    client = tenant.client()
    secret = {"title": "Merger", "content": "The confidential merger terms."}
    made = client.post(DOCS, secret, format="json", HTTP_IDEMPOTENCY_KEY="k1").json()
    kept = client.post(DOCS, {"title": "Other", "content": "Other text."}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert IdempotencyRecord.unscoped_objects.filter(key="k1").exists()
    assert client.delete(f"{DOCS}{made['id']}/").status_code == 204
    assert not IdempotencyRecord.unscoped_objects.filter(key="k1").exists()
    assert "confidential" not in str(list(IdempotencyRecord.unscoped_objects.values_list("response_body", flat=True)))
    assert IdempotencyRecord.unscoped_objects.filter(key="k2").exists() and kept.status_code == 201


def test_expired_idempotency_records_are_purged_hourly(tenant):
    client = tenant.client()
    client.post(DOCS, {"title": "Old", "content": "Old text."}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    client.post(DOCS, {"title": "New", "content": "New text."}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    too_old = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS + 1)
    IdempotencyRecord.unscoped_objects.filter(key="old").update(created_at=too_old)
    assert purge_idempotency() == 1
    assert list(IdempotencyRecord.unscoped_objects.values_list("key", flat=True)) == ["new"]
    assert settings.CELERY_BEAT_SCHEDULE["purge-idempotency"]["task"] == "organizations.purge_idempotency"


def test_used_and_expired_oauth_states_are_purged_hourly(tenant):
    now = timezone.now()

    def state(name: str, **fields) -> OAuthState:
        return OAuthState.unscoped_objects.create(
            org=tenant.org,
            user=tenant.admin,
            provider="google_drive",
            state_hash=name.ljust(64, "0"),
            code_verifier_encrypted="x",
            redirect_uri="https://precis.example/cb",
            **{"expires_at": now + timedelta(minutes=5), **fields},
        )

    state("used", used_at=now)
    state("expired", expires_at=now - timedelta(seconds=1))
    live = state("live")
    assert purge_oauth_states() == 2
    assert list(OAuthState.unscoped_objects.all()) == [live]
    assert settings.CELERY_BEAT_SCHEDULE["purge-oauth-states"]["task"] == "integrations.purge_oauth_states"
