"""Integration admin: tenant-scoped and without secrets."""

import pytest
from django.test import Client

from conftest import PASSWORD
from integrations.models import Integration

pytestmark = pytest.mark.django_db


def test_admin_scoped_and_secret_free(tenant, other_tenant):
    mine = Integration(org=tenant.org, provider="webhook", name="Our hook")
    mine.config = {"url": "https://hooks.example/x", "secret": "hook-secret-value"}
    mine.access_token = "token-value-123"
    mine.save()
    theirs = Integration(org=other_tenant.org, provider="slack", name="Their Slack")
    theirs.save()
    client = Client()
    assert client.login(email=tenant.admin.email, password=PASSWORD)
    listing = client.get("/admin/integrations/integration/").content
    assert b"Our hook" in listing and b"Their Slack" not in listing
    page = client.get(f"/admin/integrations/integration/{mine.pk}/change/").content
    for secret in (b"hook-secret-value", b"token-value-123", mine.access_token_encrypted.encode()):
        assert secret not in page
    assert client.get(f"/admin/integrations/integration/{theirs.pk}/change/").status_code == 302
