"""Files to text, off the web tier: every file that becomes a document comes through here.

Upload, URL import, Google Drive, Notion and `import_documents` hand over the original
file's bytes. `document_accept_file` stores them (a generated name; the original name
is kept in the row) and queues an `ingest` job; the document is `processing` until the
job has extracted its text in the sandbox (documents.sandbox), then `ready`, or
`failed` with `error {code, detail}`. Events: `document.processing`, `document.ready`,
`document.failed`. Summaries asked for a processing document wait for it (a scheduler
gate) and fail with the ingestion's reason if it fails. A re-import of the same bytes
changes nothing; new bytes keep the old text readable until the new text is ready.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from jobs import services as job_services
from jobs.lease import LeaseKeeper
from jobs.models import Job
from jobs.scheduler import queue_for
from organizations.models import Organization
from realtime import events

from . import extraction, sandbox
from .models import Document
from .services import clean_title, document_event_data, save_new_document, text_sha256

logger = logging.getLogger(__name__)

MAX_FILENAME_BYTES = 255


def original_name(name: str | None) -> str:
    """The file's name as given, base name only, at most 255 bytes of UTF-8: a long stem is
    cut at a character, its extension kept."""
    name = extraction.normalize_text((name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip() or "upload"
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem and len(extension.encode("utf-8")) <= 10):
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    room = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    return (stem.encode("utf-8")[:room].decode("utf-8", errors="ignore") or "upload") + suffix


def _digest(stream: BinaryIO) -> str:
    stream.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(block)
    stream.seek(0)
    return digest.hexdigest()


def document_accept_file(
    *,
    org: Organization,
    created_by: User | None,
    stream: BinaryIO,
    filename: str,
    source: str,
    source_ref: str = "",
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Document, str, Job | None]:
    """Store a file as a document and queue its extraction (inside the caller's transaction;
    run a scheduling round after commit).

    Refuses at once (415) what no extractor takes, judged from the first bytes. With a
    `source_ref`, the document of (org, source, source_ref) is created or updated:
    returns (document, "created" | "updated" | "unchanged", the ingest job or None).
    """
    name = original_name(filename)
    stream.seek(0)
    extraction.sniff(stream, filename=name)
    file_sha256 = _digest(stream)
    existing = Document.objects.filter(source=source, source_ref=source_ref).first() if source_ref else None
    if existing is not None:
        same_file = (existing.metadata or {}).get("file_sha256") == file_sha256
        same_title = title is None or existing.title == clean_title(title)
        if same_file and same_title and existing.status != Document.Status.FAILED:
            return existing, "unchanged", None
        return existing, "updated", _replace_file(existing, stream, name, file_sha256, title, metadata)
    document = Document(
        org=org,
        created_by=created_by,
        title=clean_title(title or os.path.splitext(name)[0] or name),
        content="",
        content_type=extraction.guess_type(name),
        source=source,
        source_ref=source_ref,
        original_filename=name,
        status=Document.Status.PROCESSING,
        metadata={
            **(metadata or {}),
            "file_size": _size(stream),
            "file_sha256": file_sha256,
            "title_from_file": title is None,
        },
        char_count=0,
        sha256="",
    )
    document.file.save(name, File(stream, name=name), save=False)
    try:
        save_new_document(document)
    except BaseException:
        document.file.delete(save=False)
        raise
    events.publish(document.org_id, "document.processing", document_event_data(document))
    return document, "created", _ingest_job(document, file_sha256)


def _size(stream: BinaryIO) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _replace_file(
    document: Document, stream: BinaryIO, name: str, file_sha256: str, title: str | None, metadata: dict | None
) -> Job:
    """New bytes for an existing document: its old text stays until the new one is ready."""
    old = document.file.name if document.file else ""
    storage = document.file.storage
    document.file.save(name, File(stream, name=name), save=False)
    if old and old != document.file.name:
        transaction.on_commit(lambda: storage.delete(old))
    if title is not None:
        document.title = clean_title(title)
    document.original_filename = name
    document.status = Document.Status.PROCESSING
    document.error = None
    document.metadata = {
        **(document.metadata or {}),
        **(metadata or {}),
        "file_size": _size(stream),
        "file_sha256": file_sha256,
        "title_from_file": title is None and (document.metadata or {}).get("title_from_file", False),
    }
    document.save(update_fields=["file", "title", "original_filename", "status", "error", "metadata", "updated_at"])
    events.publish(document.org_id, "document.processing", document_event_data(document))
    return _ingest_job(document, file_sha256)


def _ingest_job(document: Document, file_sha256: str) -> Job:
    return job_services.job_create(
        org=document.org,
        kind=Job.Kind.INGEST,
        created_by=document.created_by,
        payload={"file_sha256": file_sha256},
        queue=queue_for(Job.Kind.INGEST),
        document=document,
    )


# -- the job -----------------------------------------------------------------------------------
def ingest_job_run(*, job_id) -> None:
    """Task body of `ingest` jobs (inside the job's org scope)."""
    job_services.job_run(job_id, _ingest)


def _ingest(job: Job) -> None:
    token = job.lease_token
    document = Document.objects.filter(pk=job.document_id).first()
    if document is None:
        job_services.job_fail(
            job_id=job.pk, lease_token=token, code="document_deleted", detail="The document was deleted."
        )
        return
    if (document.metadata or {}).get("file_sha256") != job.payload.get("file_sha256"):
        job_services.job_fail(
            job_id=job.pk, lease_token=token, code="superseded", detail="A newer file replaced this one."
        )
        return
    with tempfile.TemporaryDirectory(prefix="precis-ingest-") as folder:
        path = os.path.join(folder, "original")
        try:
            with document.file.open("rb") as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
        except OSError as exc:  # storage trouble: worth another attempt
            job_services.job_retry_or_fail(
                job,
                code="storage_unavailable",
                detail=f"The stored file could not be read ({exc.strerror or exc}).",
                transient=True,
            )
            return
        if not connection.in_atomic_block:
            connection.close()  # the pool's connection is not held while the file is parsed
        with LeaseKeeper(job.pk, token) as lease:
            try:
                outcome = sandbox.run(
                    "extract_file", path, document.original_filename, extraction_options(), alive=lambda: lease.alive
                )
            except sandbox.SandboxFailure as failure:
                if failure.code == "cancelled":
                    logger.info("ingest job %s stopped: cancelled", job.pk)
                    return
                document_ingest_failed(document=document, job=job, code=failure.code, detail=failure.detail)
                return
    document_ingest_succeeded(document=document, job=job, extracted=outcome.value, seconds=outcome.seconds)


def extraction_options() -> dict[str, Any]:
    """What the sandboxed extractor needs to know (JSON: it crosses a process boundary)."""
    return {
        "max_chars": settings.MAX_DOCUMENT_CHARS,
        "max_pdf_pages": settings.MAX_PDF_PAGES,
        "max_archive_bytes": settings.MAX_DOCX_UNCOMPRESSED_BYTES,
        "max_archive_entries": settings.MAX_DOCX_ENTRIES,
        "ocr_languages": settings.OCR_LANGUAGES,
        "ocr_page_s": settings.OCR_PAGE_TIMEOUT_S,
        "ocr_max_pages": settings.OCR_MAX_PAGES,
    }


def document_ingest_succeeded(*, document: Document, job: Job, extracted: dict[str, Any], seconds: float) -> None:
    """The text is in: the document becomes ready (unless it changed meanwhile)."""
    text = extraction.normalize_text(str(extracted.get("text") or "")).strip()
    if not text:
        document_ingest_failed(
            document=document, job=job, code="empty_document", detail="No text could be extracted from this file."
        )
        return
    metadata = {**(document.metadata or {}), **(extracted.get("metadata") or {})}
    changes: dict[str, Any] = {
        "content": text,
        "char_count": len(text),
        "sha256": text_sha256(text),
        "content_type": str(extracted.get("content_type") or document.content_type)[:100],
        "language": str(extracted.get("language") or "")[:8],
        "status": Document.Status.READY,
        "error": None,
        "metadata": metadata,
        "updated_at": timezone.now(),
    }
    file_title = extraction.normalize_text(str(extracted.get("title") or "")).strip()[:500]
    if file_title and metadata.get("title_from_file"):
        changes["title"] = file_title
    with transaction.atomic():
        updated = Document.objects.filter(
            pk=document.pk, status=Document.Status.PROCESSING, metadata__file_sha256=job.payload.get("file_sha256")
        ).update(**changes)
        if not updated:
            job_services.job_fail(
                job_id=job.pk, lease_token=job.lease_token, code="superseded", detail="The document changed meanwhile."
            )
            return
        document.refresh_from_db()
        job_services.job_succeed(
            job_id=job.pk,
            lease_token=job.lease_token,
            result={"chars": len(text), "pages": metadata.get("pages"), "ocr": bool(metadata.get("ocr"))},
            also=[("document.ready", document_event_data(document), None)],
        )


def document_ingest_failed(*, document: Document, job: Job, code: str, detail: str) -> None:
    """The file gave no text: the document is failed with the reason, and so are the summaries
    that were waiting for it."""
    error = {"code": code, "detail": detail}
    with transaction.atomic():
        Document.objects.filter(pk=document.pk, status=Document.Status.PROCESSING).update(
            status=Document.Status.FAILED, error=error, updated_at=timezone.now()
        )
        document.refresh_from_db()
        job_services.job_fail(job_id=job.pk, lease_token=job.lease_token, code=code, detail=detail)
        for waiting in Job.objects.filter(document=document, kind=Job.Kind.SUMMARIZE, status=Job.Status.QUEUED):
            job_services.job_fail(job_id=waiting.pk, code=code, detail=f"The document could not be read: {detail}")
        events.publish(document.org_id, "document.failed", document_event_data(document))
