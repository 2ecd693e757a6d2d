"""Document admin: tenant-scoped list, search and detail; text read-only."""

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from conftest import PASSWORD
from documents.models import Document
from jobs.models import Job

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


class TestDeleteGoesThroughTheService:
    """Issue 15: the admin's delete button and its "delete selected" action take the API's
    path (documents.services.document_delete): file removed, unfinished jobs cancelled."""

    @pytest.fixture
    def stored(self, tenant, media):
        document = Document.unscoped_objects.create(
            org=tenant.org, title="Stored", content="text", char_count=4, sha256="1" * 64, created_by=tenant.admin
        )
        document.file.save("stored.txt", ContentFile(b"text"))
        job = Job.unscoped_objects.create(org=tenant.org, kind="summarize", document=document, created_by=tenant.admin)
        return document, job, media / document.file.name

    @pytest.mark.parametrize("how", ["delete_button", "delete_selected"])
    def test_file_removed_and_jobs_cancelled(self, tenant, stored, how, django_capture_on_commit_callbacks):
        document, job, path = stored
        assert path.exists()
        client = admin_client(tenant.admin)
        with django_capture_on_commit_callbacks(execute=True):
            if how == "delete_button":
                response = client.post(f"/admin/documents/document/{document.pk}/delete/", {"post": "yes"})
            else:
                response = client.post(
                    "/admin/documents/document/",
                    {"action": "delete_selected", "_selected_action": [str(document.pk)], "post": "yes"},
                )
        assert response.status_code == 302
        assert not Document.unscoped_objects.filter(pk=document.pk).exists()
        assert not path.exists()
        job.refresh_from_db()
        assert job.status == Job.Status.CANCELLED and job.error["code"] == "document_deleted"

    def test_a_foreign_document_is_not_deleted(self, tenant, docs):
        client = admin_client(tenant.admin)
        foreign = docs["globex"]
        client.post(f"/admin/documents/document/{foreign.pk}/delete/", {"post": "yes"})
        client.post(
            "/admin/documents/document/",
            {"action": "delete_selected", "_selected_action": [str(foreign.pk)], "post": "yes"},
        )
        assert Document.unscoped_objects.filter(pk=foreign.pk).exists()
