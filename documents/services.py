"""Document write logic: create (typed or uploaded), update, delete, import.

Every function takes the tenant first and runs inside its scope (views via the
tenant mixin, commands via org_scope). Text is normalised and limited the same
way whatever the way in (JSON, upload, import command, later URL import).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, BinaryIO

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.models import User
from config.errors import Conflict, ValidationFailed
from jobs import services as job_services
from organizations.models import Organization
from realtime import events

from . import extraction
from .models import Document

logger = logging.getLogger(__name__)

MAX_METADATA_BYTES = 64 * 1024


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean_content(content: str) -> str:
    text = extraction.normalize_text(content)
    if not text.strip():
        raise ValidationFailed("The content must not be empty.", "empty_document", "content")
    extraction.check_length(text, extraction.Limits.from_settings())
    return text


def _clean_title(title: str) -> str:
    title = extraction.normalize_text(title).strip()
    if not title:
        raise ValidationFailed("The title must not be blank.", "blank", "title")
    return title[:500]


def document_event_data(document: Document) -> dict[str, Any]:
    """What realtime events carry about a document (no content)."""
    return {
        "id": str(document.pk),
        "title": document.title,
        "source": document.source,
        "source_ref": document.source_ref,
        "content_type": document.content_type,
        "char_count": document.char_count,
        "sha256": document.sha256,
        "created_by": str(document.created_by_id) if document.created_by_id else None,
        "created_at": document.created_at.isoformat().replace("+00:00", "Z"),
    }


def _save_new(document: Document) -> Document:
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        raise Conflict(
            f"A document from {document.source!r} with this source_ref already exists.", "duplicate_source_ref"
        ) from None
    events.publish(document.org_id, "document.created", document_event_data(document))
    return document


def document_create(
    *,
    org: Organization,
    created_by: User | None,
    title: str,
    content: str,
    source: str = Document.Source.MANUAL,
    source_ref: str = "",
    metadata: dict[str, Any] | None = None,
    content_type: str = extraction.TEXT,
) -> Document:
    """A document from typed text (JSON API, integrations)."""
    text = _clean_content(content)
    return _save_new(
        Document(
            org=org,
            created_by=created_by,
            title=_clean_title(title),
            content=text,
            content_type=content_type,
            source=source,
            source_ref=source_ref,
            metadata=metadata or {},
            char_count=len(text),
            sha256=_fingerprint(text),
        )
    )


def document_create_from_upload(
    *,
    org: Organization,
    created_by: User | None,
    upload: UploadedFile,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Document:
    """A document from an uploaded file: extract, then store row and original file.

    Nothing is left behind on failure: the file reaches storage only after the
    text was extracted, and is deleted again if the row cannot be saved.
    """
    extracted = extraction.extract(upload, filename=upload.name or "")
    name = (upload.name or "upload").rsplit("/", 1)[-1][:200] or "upload"
    document = Document(
        org=org,
        created_by=created_by,
        title=_clean_title(title or extracted.title or name),
        content=extracted.text,
        content_type=extracted.content_type,
        source=Document.Source.UPLOAD,
        metadata={**extracted.metadata, "file_size": upload.size, **(metadata or {})},
        char_count=len(extracted.text),
        sha256=_fingerprint(extracted.text),
    )
    upload.seek(0)
    document.file.save(name, upload, save=False)
    try:
        return _save_new(document)
    except BaseException:
        document.file.delete(save=False)
        raise


def document_update(
    *,
    document: Document,
    title: str | None = None,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Document:
    """Change title/content/metadata. Summaries of the old content stay, and show
    as stale because they remember the sha256 they were made from."""
    fields = ["updated_at"]
    if title is not None:
        document.title = _clean_title(title)
        fields.append("title")
    if content is not None:
        text = _clean_content(content)
        document.content, document.char_count, document.sha256 = text, len(text), _fingerprint(text)
        fields += ["content", "char_count", "sha256"]
    if metadata is not None:
        document.metadata = metadata
        fields.append("metadata")
    document.save(update_fields=fields)
    events.publish(document.org_id, "document.updated", document_event_data(document))
    return document


def document_delete(*, document: Document) -> None:
    """Delete the row (its summaries cascade), cancel its unfinished jobs, and
    remove its stored file after commit."""
    file = document.file
    job_services.job_cancel_for_document(document_id=document.pk)
    events.publish(document.org_id, "document.deleted", {"id": str(document.pk)})
    document.delete()
    if file:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda: storage.delete(name))


def document_import_file(
    *,
    org: Organization,
    created_by: User | None,
    stream: BinaryIO,
    filename: str,
    source: str,
    source_ref: str,
    title: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Document, str]:
    """Create or update the document for (org, source, source_ref) from a file's bytes.

    The import command, integrations and URL import all come through here.
    Returns (document, outcome) with outcome "created", "updated" or "unchanged"
    (same extracted text as stored: nothing is written). An update keeps the
    document's id; its summaries then show as stale.
    """
    extracted = extraction.extract(stream, filename=filename)
    digest = _fingerprint(extracted.text)
    title = title or extracted.title or filename
    existing = Document.objects.filter(source=source, source_ref=source_ref).first()
    if existing is not None:
        if existing.sha256 == digest and existing.title == _clean_title(title):
            return existing, "unchanged"
        merged = {**existing.metadata, **extracted.metadata, **(metadata or {})}
        return document_update(document=existing, title=title, content=extracted.text, metadata=merged), "updated"
    document = document_create(
        org=org,
        created_by=created_by,
        title=title,
        content=extracted.text,
        source=source,
        source_ref=source_ref,
        metadata={**extracted.metadata, **(metadata or {})},
        content_type=extracted.content_type,
    )
    return document, "created"
