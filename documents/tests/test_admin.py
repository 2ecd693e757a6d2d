"""Document admin: tenant-scoped list, search and detail; text read-only."""

import pytest
from django.test import Client

from conftest import PASSWORD
from documents.models import Document

pytestmark = pytest.mark.django_db


def admin_client(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


@pytest.fixture
def docs(tenant, other_tenant):
    return {
        t.org.slug: Document.unscoped_objects.create(
            org=t.org, title=f"{t.org.name} plan", content="long text " * 100, char_count=1000, sha256="0" * 64
        )
        for t in (tenant, other_tenant)
    }


def test_list_and_search_scoped(tenant, docs):
    client = admin_client(tenant.admin)
    page = client.get("/admin/documents/document/").content
    assert b"Acme plan" in page and b"Globex plan" not in page
    assert b"Globex plan" not in client.get("/admin/documents/document/", {"q": "plan"}).content
    assert b"long text long text" in page  # excerpt column, truncated
    assert page.count(b"long text") < 40


def test_foreign_document_not_reachable(tenant, docs):
    response = admin_client(tenant.admin).get(f"/admin/documents/document/{docs['globex'].id}/change/")
    assert response.status_code == 302
    assert b"Globex" not in response.content


def test_content_is_read_only(tenant, docs):
    client = admin_client(tenant.admin)
    url = f"/admin/documents/document/{docs['acme'].id}/change/"
    page = client.get(url).content
    assert b'name="content"' not in page and b"long text" in page
    client.post(url, {"title": "Renamed", "metadata": "{}", "content": "hacked"})
    docs["acme"].refresh_from_db()
    assert docs["acme"].title == "Renamed" and docs["acme"].content.startswith("long text")
