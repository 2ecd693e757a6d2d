"""Document write logic: create from typed text, update, delete. Files come in through
documents.ingestion.

Every function takes the tenant first and runs inside its scope (views via the
tenant mixin, commands via org_scope). Text is normalised and limited the same
way whatever the way in.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from config.errors import Conflict, ValidationFailed
from jobs import services as job_services
from organizations.idempotency import idempotency_forget_object
from organizations.models import Organization
from realtime import events

from . import extraction
from .models import Document

logger = logging.getLogger(__name__)

MAX_METADATA_BYTES = 64 * 1024


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean_content(content: str) -> str:
    text = extraction.normalize_text(content)
    if not text.strip():
        raise ValidationFailed("The content must not be empty.", "empty_document", "content")
    extraction.check_length(text, settings.MAX_DOCUMENT_CHARS)
    return text


def clean_title(title: str) -> str:
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
        "status": document.status,
        "error": document.error,
        "language": document.language,
        "created_by": str(document.created_by_id) if document.created_by_id else None,
        "created_at": document.created_at.isoformat().replace("+00:00", "Z"),
    }


def save_new_document(document: Document) -> Document:
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
    return save_new_document(
        Document(
            org=org,
            created_by=created_by,
            title=clean_title(title),
            content=text,
            content_type=content_type,
            source=source,
            source_ref=source_ref,
            metadata=metadata or {},
            char_count=len(text),
            sha256=text_sha256(text),
        )
    )


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
        document.title = clean_title(title)
        fields.append("title")
    if content is not None:
        text = _clean_content(content)
        document.content, document.char_count, document.sha256 = text, len(text), text_sha256(text)
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
    from organizations import audit

    file = document.file
    audit.record("document.deleted", org=document.org_id, target=document)
    job_services.job_cancel_for_document(document_id=document.pk)
    events.publish(document.org_id, "document.deleted", {"id": str(document.pk)})
    # A replayable create response would keep the deleted text: it goes too.
    idempotency_forget_object(scope="documents.create", object_id=str(document.pk))
    document.delete()
    if file:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda: storage.delete(name))


def document_delete_unstarted(*, document: Document) -> None:
    """An upload whose ingestion could not be started (the broker is down): nothing of it
    stays, so the client's retry (it got a 503) is the only copy."""
    with transaction.atomic():
        document_delete(document=document)
