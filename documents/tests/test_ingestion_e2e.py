"""Ingestion end to end: uploads through the API, read by a real `io` worker (threads, the
Procfile's kind) in real sandboxed children, against the test database. Hostile files, scans,
a paginated report, a URL import, and summaries that wait for the text."""

from __future__ import annotations

import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from config.tests.process_fixtures import Worker, wait_until
from documents.models import Document
from documents.tests import hostile_files
from jobs.models import Job
from jobs.runtime import tick
from jobs.services import job_reap_stale

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/documents/"
CPU_S, WALL_S = 4, 8  # the worker's sandbox budget here (the shipped one: 60 s CPU, 90 s wall)


@pytest.fixture(autouse=True)
def media(settings):
    """The shared MEDIA_ROOT, not a temporary one: the worker process reads the files."""
    return settings.MEDIA_ROOT


@pytest.fixture
def io_worker(celery_worker, fake_llm_server, fake_providers_server):
    """The session's solo worker makes way for one like the Procfile's `io` (it takes every
    job queue here, so summaries run too)."""
    celery_worker.stop()
    worker = Worker(
        fake_llm_server.url,
        fake_providers_server.url,
        name="io",
        pool="threads",
        concurrency=4,
        queues="ingest,llm,summaries,integrations,default",
        extra_env={
            "EXTRACTION_CPU_S": str(CPU_S),
            "EXTRACTION_TIMEOUT_S": str(WALL_S),
            "EXTRACTION_MEMORY_MB": "768",
            "INGEST_CONCURRENCY": "3",
        },
    ).start()
    yield worker
    worker.stop()
    celery_worker.start()


def upload(client, data: bytes, name: str, **fields):
    started = time.monotonic()
    response = client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")
    assert response.status_code == 202, response.content
    return response.json(), time.monotonic() - started


def settled(client, document_id: str, timeout: float = 60) -> dict:
    def done():
        body = client.get(f"{URL}{document_id}/").json()
        return body if body["status"] != "processing" else None

    return wait_until(done, timeout=timeout, interval=0.1)


def test_hostile_files_fail_within_their_budget_and_the_api_keeps_answering(tenant, other_tenant, io_worker):
    attacker, bystander = tenant.client(), other_tenant.client()
    hostile = {
        "nested.pdf": hostile_files.nested_xobject_pdf(depth=4),
        "repeated.pdf": hostile_files.repeated_xobject_pdf(draws=4000),
        "bomb.docx": hostile_files.docx_bomb(),
    }
    accepted = {}
    for name, data in hostile.items():
        body, seconds = upload(attacker, data, name)
        assert body["document"]["status"] == "processing" and seconds < 1.0, (name, seconds)
        accepted[name] = (body["document"]["id"], time.monotonic())
    # Meanwhile another organization uploads a real file and lists its documents.
    mine, _ = upload(bystander, b"Bystander notes about the harbour project.", "notes.txt")
    assert bystander.get(URL).status_code == 200
    assert settled(bystander, mine["document"]["id"])["status"] == "ready"
    for name, (document_id, started) in accepted.items():
        document = settled(attacker, document_id, timeout=3 * (WALL_S + 5))
        assert document["status"] == "failed", name
        assert document["error"]["code"] in {"extraction_timeout", "extraction_memory", "archive_too_large"}, document
        assert document["content"] == "" and document["error"]["detail"]
        job = Job.unscoped_objects.get(document_id=document_id, kind=Job.Kind.INGEST)
        assert job.status == "failed" and job.error["code"] == document["error"]["code"]
        # each one stopped by its budget, not by running until done (three share the worker)
        assert job.finished_at and (job.finished_at - job.started_at).total_seconds() < WALL_S + 3, name


def test_scanned_files_are_read_by_ocr(tenant, io_worker):
    client = tenant.client()
    lines = ["The harbour authority approved the new ferry terminal.", "Construction starts in the spring."]
    uploads = {
        "scan.png": hostile_files.scanned_png(lines),
        "scan.jpg": hostile_files.scanned_jpeg(lines),
        "scan.tiff": hostile_files.scanned_tiff(lines),
        "scan.pdf": hostile_files.scanned_pdf(lines, pages=2),
    }
    ids = {name: upload(client, data, name)[0]["document"]["id"] for name, data in uploads.items()}
    for name, document_id in ids.items():
        document = settled(client, document_id)
        assert document["status"] == "ready", (name, document["error"])
        words = set(re.findall(r"\w+", document["content"].lower()))
        assert {"harbour", "authority", "ferry", "terminal", "construction", "spring"} <= words, name
        assert document["language"] == "en"
    pdf = Document.unscoped_objects.get(pk=ids["scan.pdf"])
    assert pdf.metadata["ocr"] is True and pdf.metadata["ocr_pages"] == [1, 2]


def test_a_paginated_report_reads_as_prose(tenant, io_worker):
    client = tenant.client()
    body, _ = upload(client, hostile_files.report_pdf(pages=5), "annual-report.pdf")
    document = settled(client, body["document"]["id"])
    assert document["status"] == "ready", document["error"]
    text = document["content"]
    assert text.count(hostile_files.REPORT_HEADER) <= 1
    assert not re.search(r"Page \d of 5", text)
    paragraphs = text.split("\n\n")
    for paragraph in hostile_files.REPORT_PARAGRAPHS:  # wrapped lines and hyphenated words joined again
        assert paragraph in paragraphs, paragraph[:60]
    for heading in hostile_files.REPORT_HEADINGS:
        assert heading in paragraphs
    assert "year-on-year" in text and "manu-" not in text
    offsets = Document.unscoped_objects.get(pk=document["id"]).metadata["page_offsets"]
    assert len(offsets) == 5 and offsets == sorted(offsets) and offsets[0] == 0
    assert text[offsets[2] :].startswith(hostile_files.REPORT_PARAGRAPHS[6][:40])
    assert document["title"] == hostile_files.REPORT_HEADER  # the PDF's own title
    assert document["language"] == "en"


def test_a_summary_asked_with_the_upload_waits_for_the_text(tenant, io_worker):
    client = tenant.client()
    text = (
        b"The council approved a new library budget. The budget funds longer library hours. "
        b"Library visits keep rising, and the budget follows them."
    )
    body, _ = upload(client, text, "budget.txt", summarize='{"provider": "local"}')
    assert body["summarize_job"]["status"] == "queued"
    job = wait_until(
        lambda: (
            (j := client.get(f"/api/v1/jobs/{body['summarize_job']['id']}/").json())["status"]
            in ("succeeded", "failed")
            and j
        ),
        timeout=60,
    )
    assert job["status"] == "succeeded", job["error"]
    document = client.get(f"{URL}{body['document']['id']}/").json()
    assert document["status"] == "ready" and document["latest_summary"]["id"] == job["summary"]


def test_a_summary_of_a_file_that_cannot_be_read_fails_with_the_reason(tenant, io_worker):
    client = tenant.client()
    body, _ = upload(client, b"   \n\t  ", "blank.txt", summarize="{}")
    job = wait_until(
        lambda: (j := client.get(f"/api/v1/jobs/{body['summarize_job']['id']}/").json())["status"] == "failed" and j,
        timeout=60,
    )
    assert job["error"]["code"] == "empty_document"
    assert client.get(f"{URL}{body['document']['id']}/").json()["error"]["code"] == "empty_document"
    refused = client.post(f"{URL}{body['document']['id']}/summarize/", {}, format="json")
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "document_failed"


def test_a_url_import_goes_through_the_same_pipeline(tenant, io_worker, fake_providers):
    client = tenant.client()
    url = f"{fake_providers.url}/pages/plan"
    job = client.post("/api/v1/documents/import-url/", {"url": url}, format="json").json()
    finished = wait_until(
        lambda: (j := client.get(f"/api/v1/jobs/{job['id']}/").json())["status"] in ("succeeded", "failed") and j,
        timeout=60,
    )
    assert finished["status"] == "succeeded", finished["error"]
    document = settled(client, finished["document"])
    assert document["status"] == "ready" and document["source"] == "url" and document["title"] == "Fetched Page"
    assert "We will ship the new reader in March." in document["content"]


def test_a_worker_killed_mid_file_leaves_the_job_to_the_reaper(tenant, io_worker):
    client = tenant.client()
    lines = ["The harbour authority approved the new ferry terminal."]
    body, _ = upload(client, hostile_files.scanned_pdf(lines, pages=2), "scan.pdf")  # seconds of OCR
    job_id = body["job"]["id"]
    wait_until(lambda: Job.unscoped_objects.get(pk=job_id).status == "running", timeout=30)
    io_worker.kill()  # SIGKILL mid-file: no chance to clean up
    wait_until(lambda: Job.unscoped_objects.get(pk=job_id).lease_expires_at < timezone.now(), timeout=30)
    assert job_reap_stale()["requeued"] == 1
    assert client.get(f"{URL}{body['document']['id']}/").json()["status"] == "processing"
    io_worker.start()

    def read():
        tick()  # what beat does every SCHEDULER_TICK_S
        document = client.get(f"{URL}{body['document']['id']}/").json()
        return document if document["status"] != "processing" else None

    document = wait_until(read, timeout=90, interval=0.5)
    assert document["status"] == "ready" and "ferry terminal" in document["content"], document["error"]
    assert Job.unscoped_objects.get(pk=job_id).attempts == 2
