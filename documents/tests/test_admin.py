"""Document admin: tenant-scoped list, search and detail; text read-only."""

import pytest
from django.core.files.base import ContentFile

from conftest import admin_client
from documents.models import Document
from jobs.models import Batch, Job
from summaries.models import Summary
from templates_app.models import Template

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/documents/document/"


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
    inline = {f"{name}-{count}_FORMS": "0" for name in ("jobs", "summaries") for count in ("TOTAL", "INITIAL")}
    client.post(url, {"title": "Renamed", "metadata": "{}", "content": "hacked", **inline})
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


def summarize(client, documents, **form):
    data = {"action": "summarize", "_selected_action": [str(d.pk) for d in documents]}
    if form:
        data |= {"apply": "1", **form}
    return client.post(CHANGELIST, data)


@pytest.fixture
def templates(tenant, other_tenant):
    return {
        t.org.slug: Template.unscoped_objects.create(
            org=t.org, name=f"{t.org.name} brief", body="{{ document.content }}"
        )
        for t in (tenant, other_tenant)
    }


def test_summarize_asks_for_the_options_on_a_page_of_its_own(tenant, docs, templates):
    page = summarize(admin_client(tenant.admin), [docs["acme"]])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Summarize documents" in html and "Acme plan" in html
    assert "Acme brief" in html and "Executive summary" in html  # own and system templates
    assert "Globex" not in html
    assert not Job.unscoped_objects.exists()


def test_summarize_one_document_starts_its_job(tenant, docs, templates):
    client = admin_client(tenant.admin)
    response = summarize(client, [docs["acme"]], template=str(templates["acme"].pk), provider="local", max_words="80")
    assert response.status_code == 302
    (job,) = Job.unscoped_objects.all()
    assert (job.org_id, job.document_id, job.kind, job.created_by_id) == (
        tenant.org.id,
        docs["acme"].id,
        "summarize",
        tenant.admin.id,
    )
    assert job.payload["template_id"] == str(templates["acme"].pk) and job.payload["options"] == {"max_words": 80}
    assert response["Location"] == f"/admin/documents/document/{docs['acme'].pk}/change/"  # where it is followed
    page = client.get(response["Location"]).content.decode()
    assert f"/admin/jobs/job/{job.pk}/change/" in page and "Summarizing “Acme plan”" in page
    assert f'<span data-job-id="{job.pk}" data-field="status">queued</span>' in page
    assert "precis_admin/live_jobs.js" in page


def test_summarize_several_documents_starts_a_batch(tenant, docs, templates):
    second = Document.unscoped_objects.create(org=tenant.org, title="Acme memo", content="Costs fell.", sha256="1" * 64)
    client = admin_client(tenant.admin)
    response = summarize(client, [docs["acme"], second], template=str(templates["acme"].pk), provider="local")
    assert response.status_code == 302
    (batch,) = Batch.unscoped_objects.all()
    assert batch.org_id == tenant.org.id and batch.total == 2
    assert set(Job.unscoped_objects.values_list("document_id", flat=True)) == {docs["acme"].id, second.id}
    page = client.get(response["Location"]).content.decode()
    assert f"?batch__id__exact={batch.pk}" in page
    jobs = client.get("/admin/jobs/job/", {"batch__id__exact": str(batch.pk)}).content.decode()
    assert jobs.count("Acme memo") == 1 and jobs.count("Acme plan") == 1


@pytest.mark.parametrize(
    "form, field",
    [
        ({"provider": "local", "max_words": "5"}, "max_words"),
        ({"provider": "local", "max_words": "99999999999999999999"}, "max_words"),
        ({"provider": "local", "max_words": "ten"}, "max_words"),
        ({"provider": "no-such-llm"}, "provider"),
        ({"provider": "local", "max_words": "1\x00"}, "max_words"),
    ],
)
def test_bad_options_are_said_on_the_page_and_start_nothing(tenant, docs, templates, form, field):
    form = {"template": str(templates["acme"].pk), **form}
    page = summarize(admin_client(tenant.admin), [docs["acme"]], **form)
    assert page.status_code == 200
    assert 'class="form-row errors field-' in page.content.decode()
    assert not Job.unscoped_objects.exists()


def test_another_organization_s_template_or_documents_cannot_be_used(tenant, docs, templates):
    client = admin_client(tenant.admin)
    page = summarize(client, [docs["acme"]], template=str(templates["globex"].pk), provider="local")
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    response = summarize(client, [docs["globex"]], template=str(templates["acme"].pk), provider="local")
    assert response.status_code == 302  # "Items must be selected": nothing of theirs is in the selection
    assert not Job.unscoped_objects.exists()


def test_a_member_cannot_summarize_from_the_admin(tenant, docs, templates):
    from django.test import Client

    client = Client()
    client.force_login(tenant.member)
    response = summarize(client, [docs["acme"]], template=str(templates["acme"].pk), provider="local")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not Job.unscoped_objects.exists()


def test_a_failed_document_is_refused_with_the_reason(tenant, docs, templates):
    Document.unscoped_objects.filter(pk=docs["acme"].pk).update(
        status="failed", error={"code": "extraction_timeout", "detail": "The file took too long to read."}
    )
    client = admin_client(tenant.admin)
    response = summarize(client, [docs["acme"]], template=str(templates["acme"].pk), provider="local")
    page = client.get(response["Location"]).content.decode()
    assert "Not started: The document cannot be summarized: The file took too long to read." in page
    assert not Job.unscoped_objects.exists()


def test_the_document_page_shows_its_summaries_with_provenance_and_citations(tenant, docs):
    document = docs["acme"]
    Summary.unscoped_objects.create(
        org=tenant.org,
        document=document,
        content="Long text.",
        provider="openai",
        model="gpt-test-model",
        prompt_tokens=321,
        completion_tokens=45,
        latency_ms=1234,
        strategy="map_reduce",
        chunk_count=3,
        source_sha256=document.sha256,
        prompt_sha256="0" * 64,
        citations=[{"start": 0, "end": 10, "sources": [{"start": 5, "end": 14}]}],
    )
    html = admin_client(tenant.admin).get(f"/admin/documents/document/{document.pk}/change/").content.decode()
    for shown in ("Long text.", "gpt-test-model", "321", "45", "1234", "Map-reduce over chunks", "Cited passages"):
        assert shown in html, shown
    assert "<mark>text long</mark>" in html


class TestUpload:
    """Issue 17: the add page uploads one or many files through the API's ingestion pipeline."""

    ADD = "/admin/documents/document/add/"

    @staticmethod
    def files(*items):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return [SimpleUploadedFile(name, body) for name, body in items]

    def test_one_file_becomes_a_processing_document_with_its_ingest_job(self, tenant, other_tenant, media):
        client = admin_client(tenant.admin)
        page = client.get(self.ADD).content.decode()
        assert 'type="file"' in page and "multiple" in page and "Upload documents" in page
        assert 'name="org"' not in page  # an org admin uploads into their organization
        response = client.post(
            self.ADD,
            {"files": self.files(("minutes.txt", b"The board met on Monday.")), "org": str(other_tenant.org.pk)},
        )
        assert response.status_code == 302
        (document,) = Document.unscoped_objects.all()
        assert (document.org_id, document.created_by_id, document.status, document.source) == (
            tenant.org.id,
            tenant.admin.id,
            "processing",
            "upload",
        )
        assert document.title == "minutes" and document.original_filename == "minutes.txt"
        assert (media / document.file.name).read_bytes() == b"The board met on Monday."
        (job,) = Job.unscoped_objects.all()
        assert (job.kind, job.document_id, job.org_id) == ("ingest", document.id, tenant.org.id)
        assert response["Location"] == f"/admin/documents/document/{document.pk}/change/"
        page = client.get(response["Location"]).content.decode()
        assert "its text is being extracted" in page
        assert f'<span data-job-id="{job.pk}" data-field="status">' in page  # followed live

    def test_several_files_land_on_the_list(self, tenant, media):
        client = admin_client(tenant.admin)
        files = self.files(("a.txt", b"First text."), ("b.html", b"<p>Second text.</p>"), ("c.md", b"# Third"))
        response = client.post(self.ADD, {"files": files})
        assert response.status_code == 302 and response["Location"].endswith("?status__exact=processing")
        assert sorted(Document.unscoped_objects.values_list("title", flat=True)) == ["a", "b", "c"]
        assert Job.unscoped_objects.filter(kind="ingest").count() == 3
        listing = client.get(response["Location"]).content.decode()
        assert "3 documents are stored" in listing and listing.count("processing") >= 3

    def test_a_title_names_a_single_file(self, tenant, media):
        client = admin_client(tenant.admin)
        client.post(self.ADD, {"files": self.files(("x.txt", b"Text.")), "title": "Board minutes"})
        assert Document.unscoped_objects.get().title == "Board minutes"

    @pytest.mark.parametrize(
        "files, title, said",
        [
            ([("a.txt", b"A."), ("b.txt", b"B.")], "One title", "A title is for a single file"),
            ([("good.txt", b"Fine."), ("tool.exe", b"MZ\x90\x00\x03" + bytes(200))], "", "tool.exe:"),
            ([("report.pdf", b"plain text, not a PDF")], "", "report.pdf: The file is named .pdf"),
            ([], "", "This field is required"),
            ([("x.txt", b"Text.")], "bad\x00title", "Null characters are not allowed"),
            ([("x.txt", b"Text.")], "t" * 501, "at most 500 characters"),
        ],
    )
    def test_bad_input_is_said_on_the_page_and_stores_nothing(self, tenant, media, files, title, said):
        response = admin_client(tenant.admin).post(self.ADD, {"files": self.files(*files), "title": title})
        assert response.status_code == 200
        assert said in response.content.decode()
        assert not Document.unscoped_objects.exists() and not Job.unscoped_objects.exists()
        assert not any(media.rglob("*.*"))

    def test_a_file_over_the_limit_is_refused(self, tenant, media, settings):
        settings.MAX_UPLOAD_BYTES = 1000
        response = admin_client(tenant.admin).post(self.ADD, {"files": self.files(("big.txt", b"x" * 1001))})
        assert "big.txt: over the limit of 1000 bytes." in response.content.decode()
        assert not Document.unscoped_objects.exists()

    def test_too_many_files_at_once_are_refused(self, tenant, media):
        from documents.admin import MAX_FILES_PER_UPLOAD

        files = self.files(*[(f"{n}.txt", b"Text.") for n in range(MAX_FILES_PER_UPLOAD + 1)])
        response = admin_client(tenant.admin).post(self.ADD, {"files": files})
        assert f"At most {MAX_FILES_PER_UPLOAD} files at a time." in response.content.decode()
        assert not Document.unscoped_objects.exists()

    def test_with_the_broker_down_nothing_is_kept_and_the_page_says_so(
        self, tenant, media, broker_down, django_capture_on_commit_callbacks
    ):
        with broker_down(), django_capture_on_commit_callbacks(execute=True):
            response = admin_client(tenant.admin).post(self.ADD, {"files": self.files(("x.txt", b"Text."))})
        assert response.status_code == 200
        assert "Not stored: " in response.content.decode() and "unavailable" in response.content.decode()
        assert not Document.unscoped_objects.exists()
        assert not any(media.rglob("*.*"))

    def test_a_member_cannot_upload(self, tenant, media):
        from django.test import Client

        client = Client()
        client.force_login(tenant.member)
        response = client.post(self.ADD, {"files": self.files(("x.txt", b"Text."))})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert not Document.unscoped_objects.exists()

    def test_a_superuser_picks_the_organization(self, tenant, other_tenant, media):
        from conftest import make_user

        root = make_user(None, is_superuser=True)
        client = admin_client(root)
        assert 'name="org"' in client.get(self.ADD).content.decode()
        client.post(self.ADD, {"org": str(other_tenant.org.pk), "files": self.files(("x.txt", b"Text."))})
        assert Document.unscoped_objects.get().org_id == other_tenant.org.id

    def test_the_upload_and_summarize_views_commit_before_they_schedule(self):
        """They leave ATOMIC_REQUESTS: a scheduling round must see committed jobs."""
        from django.urls import resolve

        for path in (self.ADD, CHANGELIST):
            assert "default" in getattr(resolve(path).func, "_non_atomic_requests", ())
