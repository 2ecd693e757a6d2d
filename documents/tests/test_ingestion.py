"""Uploads through the ingestion pipeline: the request stores the file and answers at once; the
ingest job (run here, in the test's transaction, with the real sandboxed child) reads it."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import assert_error_shape
from documents.models import Document
from documents.tests import files
from documents.tests.files import stored_files
from jobs.models import Job
from realtime.models import StoredEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/"


def upload(client, data: bytes, name: str, **fields):
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


class TestAccepted:
    def test_the_upload_answers_at_once_with_the_document_and_its_job(self, tenant, media):
        response = upload(tenant.client(tenant.member), files.pdf_bytes(["Quarterly numbers"]), "report.pdf")
        assert response.status_code == 202, response.content
        body = response.json()
        document, job = body["document"], body["job"]
        assert document["status"] == "processing" and document["content"] == "" and document["error"] is None
        assert (
            document["file_name"] == "report.pdf" and document["source"] == "upload" and document["title"] == "report"
        )
        assert job["kind"] == "ingest" and job["status"] == "queued" and job["document"] == document["id"]
        assert body["summarize_job"] is None
        assert Job.unscoped_objects.get(pk=job["id"]).queue == "ingest"
        (stored,) = stored_files(media)
        assert stored.name == "original.pdf" and str(tenant.org.id) in str(stored)

    @pytest.mark.parametrize(
        "name, data, content_type, expected",
        [
            ("notes.txt", "Plain text ✓".encode(), "text/plain", "Plain text ✓"),
            ("notes.md", b"# Heading\n\nBody", "text/markdown", "# Heading\n\nBody"),
            ("page.html", files.HTML_PAGE.encode(), "text/html", "Revenue grew"),
            ("report.pdf", files.pdf_bytes(["Quarterly numbers"]), "application/pdf", "Quarterly numbers"),
            ("memo.docx", files.docx_bytes(["Memo body"]), "application/vnd.openxmlformats-officedocument"
             ".wordprocessingml.document", "Memo body"),
        ],
    )  # fmt: skip
    def test_each_type_becomes_ready(self, tenant, ingest, django_capture_on_commit_callbacks, name, data,
                                     content_type, expected):  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            accepted = upload(tenant.client(tenant.member), data, name)
            document = ingest(accepted)
        assert document.status == "ready" and document.content_type == content_type, document.error
        assert expected in document.content and document.char_count == len(document.content)
        assert document.sha256 and document.metadata["file_sha256"]
        detail = tenant.client(tenant.member).get(f"{URL}{document.id}/").json()
        assert detail["status"] == "ready" and expected in detail["content"]
        types = list(StoredEvent.unscoped_objects.filter(org=tenant.org).order_by("seq").values_list("type", flat=True))
        assert types[:2] == ["document.created", "document.processing"] and "document.ready" in types
        job = Job.unscoped_objects.get(pk=accepted.json()["job"]["id"])
        assert job.status == "succeeded" and job.result["chars"] == document.char_count

    def test_title_from_the_form_or_the_file(self, tenant, ingest):
        assert ingest(upload(tenant.client(), b"text", "a.txt", title="Given")).title == "Given"
        assert ingest(upload(tenant.client(), files.HTML_PAGE.encode(), "r.html")).title == "Quarterly Report"
        assert ingest(upload(tenant.client(), b"text", "my-notes.txt")).title == "my-notes"

    def test_long_names_in_any_script_are_kept_but_not_used_for_storage(self, tenant, media, ingest):
        name = "報告書" * 40 + ".txt"  # 120 CJK characters: 363 bytes, past what a file system takes
        accepted = upload(tenant.client(), "本文".encode(), name)
        assert accepted.status_code == 202, accepted.content
        document = ingest(accepted)
        assert document.status == "ready" and len(document.original_filename.encode()) <= 255
        assert document.original_filename.startswith("報告書") and accepted.json()["document"]["file_name"]
        (stored,) = stored_files(media)
        assert stored.name == "original.txt"

    def test_summarize_on_upload_waits_for_the_text(self, tenant, ingest, django_capture_on_commit_callbacks):
        from jobs.scheduler import _gates

        accepted = upload(
            tenant.client(), b"The council approved the budget. It rained.", "b.txt",
            summarize=json.dumps({"options": {"max_words": 20}}),
        )  # fmt: skip
        assert accepted.status_code == 202, accepted.content
        waiting = accepted.json()["summarize_job"]
        assert waiting["kind"] == "summarize" and waiting["document"] == accepted.json()["document"]["id"]
        job = Job.unscoped_objects.get(pk=waiting["id"])
        from jobs.scheduler import Waiting

        candidate = Waiting(
            job.id, job.org_id, job.kind, job.queue, job.priority, job.created_at, job.payload, job.document_id
        )
        (gate,) = _gates["summaries"]
        assert gate([candidate])(candidate) is False  # held while the document is processing
        ingest(accepted)
        assert gate([candidate])(candidate) is True

    @pytest.mark.parametrize(
        "value, attr",
        [("not json", "summarize"), (json.dumps({"provider": "skynet"}), "provider"),
         (json.dumps({"options": {"max_words": 1}}), "summarize.options.max_words")],
    )  # fmt: skip
    def test_bad_summarize_field(self, tenant, value, attr):
        assert_error_shape(upload(tenant.client(), b"text", "a.txt", summarize=value), 400, attr=attr)
        assert not Document.unscoped_objects.exists()


class TestRefusedAtOnce:
    """What the first bytes already tell is refused in the request: nothing is stored."""

    @pytest.mark.parametrize(
        "name, data, code",
        [
            ("fake.pdf", b"this is not a pdf", "file_type_mismatch"),
            ("fake.docx", b"plain words", "file_type_mismatch"),
            ("archive.zip", files.zip_bytes(), "unsupported_file_type"),
            ("anim.gif", b"GIF89a" + b"\0" * 64, "unsupported_file_type"),
            ("old.doc", b"\xd0\xcf\x11\xe0" + b"\0" * 64, "unsupported_file_type"),
        ],
    )
    def test_unsupported_types_415(self, tenant, media, name, data, code):
        assert_error_shape(upload(tenant.client(), data, name), 415, code)
        assert not Document.unscoped_objects.exists() and stored_files(media) == []

    def test_over_upload_limit_413_while_reading(self, tenant, media, settings):
        settings.MAX_UPLOAD_BYTES = 1000
        assert_error_shape(upload(tenant.client(), b"x" * 5000, "big.txt"), 413, "upload_too_large")
        assert not Document.unscoped_objects.exists() and stored_files(media) == []

    def test_missing_or_empty_file(self, tenant):
        assert_error_shape(tenant.client().post(URL, {"title": "x"}, format="multipart"), 400, attr="file")
        assert_error_shape(upload(tenant.client(), b"", "empty.txt"), 400, attr="file")

    def test_unknown_form_field_refused(self, tenant):
        assert_error_shape(upload(tenant.client(), b"text", "a.txt", org="someone-else"), 400, "unknown_field", "org")

    def test_unsupported_request_media_type(self, tenant):
        response = tenant.client().generic("POST", URL, b"title=x", content_type="application/x-www-form-urlencoded")
        assert_error_shape(response, 415)

    def test_anonymous_401(self, anon):
        assert_error_shape(upload(anon, b"text", "a.txt"), 401)


class TestFailedLater:
    """What only reading the file tells: the document ends `failed` with the reason."""

    @pytest.mark.parametrize(
        "name, data, code",
        [
            ("locked.pdf", files.encrypted_pdf_bytes("secret"), "encrypted_pdf"),
            ("broken.pdf", b"%PDF-1.7\nbroken", "malformed_pdf"),
            ("blank.txt", b"   \n\n  ", "empty_document"),
            ("bomb.docx", files.docx_bomb_bytes(20 * 1024 * 1024), "archive_too_large"),
            ("noise.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "ocr_failed"),
        ],
    )
    def test_unreadable_files(self, tenant, ingest, django_capture_on_commit_callbacks, name, data, code):
        with django_capture_on_commit_callbacks(execute=True):
            document = ingest(upload(tenant.client(), data, name))
        assert document.status == "failed" and document.error["code"] == code and document.error["detail"]
        assert document.content == ""
        shown = tenant.client().get(f"{URL}{document.id}/").json()
        assert shown["status"] == "failed" and shown["error"] == document.error
        assert StoredEvent.unscoped_objects.filter(org=tenant.org, type="document.failed").exists()
        job = Job.unscoped_objects.get(document=document, kind="ingest")
        assert job.status == "failed" and job.error["code"] == code

    def test_extracted_text_over_the_limit(self, tenant, ingest, settings):
        settings.MAX_DOCUMENT_CHARS = 10
        document = ingest(upload(tenant.client(), b"x" * 50, "long.txt"))
        assert document.status == "failed" and document.error["code"] == "document_too_long"

    def test_waiting_summaries_fail_with_the_reason(self, tenant, ingest):
        accepted = upload(tenant.client(), b"%PDF-1.7\nbroken", "broken.pdf", summarize="{}")
        ingest(accepted)
        waiting = Job.unscoped_objects.get(pk=accepted.json()["summarize_job"]["id"])
        assert waiting.status == "failed" and waiting.error["code"] == "malformed_pdf"
        assert "could not be read" in waiting.error["detail"]
        again = tenant.client().post(f"{URL}{accepted.json()['document']['id']}/summarize/", {}, format="json")
        assert_error_shape(again, 409, "document_failed")


class TestMultipartAbuse:
    """Abuse of the multipart format is a 4xx in the contract's shape, never a 500."""

    def test_too_many_fields(self, tenant, settings):
        settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
        fields = {f"f{i}": "x" for i in range(30)}
        response = upload(tenant.client(), b"text", "a.txt", **fields)
        assert_error_shape(response, 400, "too_many_fields")

    def test_a_form_field_too_large(self, tenant, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = upload(tenant.client(), b"text", "a.txt", title="t" * 5000)
        assert_error_shape(response, 413, "field_too_large")

    def test_malformed_body(self, tenant):
        response = tenant.client().generic(
            "POST", URL, b"--nope\r\nnot a part\r\n", content_type="multipart/form-data; boundary=other"
        )
        body = assert_error_shape(response, 400)
        assert body["errors"][0]["code"] in {"malformed_multipart", "required"}
        assert response["X-Request-ID"]

    def test_nul_in_a_form_field(self, tenant):
        assert_error_shape(upload(tenant.client(), b"text", "a.txt", title="a\x00b"), 400, "invalid_characters")


class TestLanguage:
    GERMAN = (
        "Der Stadtrat hat gestern den neuen Haushalt für die Bibliothek beschlossen. Die Öffnungszeiten "
        "werden verlängert, und die Zahl der Besucher steigt seit Jahren."
    )
    ENGLISH = "The council approved the new library budget yesterday, and visits keep rising every year."

    def test_detected_filtered_and_given_to_templates(self, tenant, other_tenant, ingest):
        from summaries.services import render_context
        from templates_app.placeholders import render

        client = tenant.client()
        german = ingest(upload(client, self.GERMAN.encode(), "haushalt.txt"))
        english = ingest(upload(client, self.ENGLISH.encode(), "budget.txt"))
        short = ingest(upload(client, b"Hallo.", "kurz.txt"))
        assert (german.language, english.language, short.language) == ("de", "en", "")
        ingest(upload(other_tenant.client(), self.GERMAN.encode(), "theirs.txt"))

        listed = client.get(URL, {"language": "de"}).json()["results"]
        assert [d["id"] for d in listed] == [str(german.pk)] and listed[0]["language"] == "de"
        assert client.get(f"{URL}{german.pk}/").json()["language"] == "de"
        assert_error_shape(client.get(URL, {"language": "german!"}), 400, attr="language")
        context = render_context(german, tenant.org)
        assert render("In {{ document.language }}:", context) == "In German:"
        assert render("[{{ document.language }}]", render_context(short, tenant.org)) == "[]"

    def test_system_templates_ask_for_the_documents_language(self, tenant):
        templates = tenant.client().get("/api/v1/templates/").json()["results"]
        system = [t for t in templates if t["is_system"]]
        assert len(system) == 4
        for template in system:
            assert "Write in the language the document is written in." in template["body"], template["name"]
