"""`Idempotency-Key` support for creating POSTs (documents, summarize jobs, ...).

A client that retries a POST with the same `Idempotency-Key` header gets the
first response again (same status and body, plus `Idempotent-Replayed: true`)
instead of a duplicate. The same key with a *different* request body is a
client bug: 409 `idempotency_key_reused`.

Concurrency: in atomic requests the record is inserted inside the request's
transaction, so a concurrent retry blocks on the unique index until the first
request commits, then finds its stored response. Views that commit as they go
(summarize) commit the record first; a concurrent retry then gets 409
`idempotency_key_in_use` until the first request has answered. If the first
request fails, its record is removed (or rolls back) and a retry runs anew.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from config.errors import Conflict, ValidationFailed

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


def fingerprint_of(*parts: object) -> str:
    """A stable hash of what identifies a request's content."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def idempotency_remember(request, *, scope: str, response: Response) -> None:
    """Store `response` as the answer of the request's record (inserted by `idempotent`
    before `create()` ran) now, in the caller's transaction: for views whose answer must
    survive the database going away right after they commit. A failure later still forgets it."""
    key = request.headers.get(HEADER)
    if key is None:
        return
    IdempotencyRecord.objects.filter(
        org=request.org, user=request.user, scope=scope, key=key, status_code__isnull=True
    ).update(status_code=response.status_code, response_body=response.data)


def idempotent(request, *, scope: str, fingerprint: str, create: Callable[[], Response]) -> Response:
    """Run `create()` once per Idempotency-Key; replay its response on retries."""
    key = request.headers.get(HEADER)
    if key is None:
        return create()
    if not _VALID_KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable ASCII characters without spaces.", "invalid_idempotency_key"
        )
    lookup = {"org": request.org, "user": request.user, "scope": scope, "key": key}
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    IdempotencyRecord.objects.filter(**lookup, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(**lookup, fingerprint=fingerprint)
    except IntegrityError:
        record = IdempotencyRecord.objects.get(**lookup)
        if record.fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was already used with a different request.", "idempotency_key_reused"
            ) from None
        if record.status_code is None:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.", "idempotency_key_in_use"
            ) from None
        return Response(record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        response = create()
    except BaseException:
        _forget(record)
        raise
    if 200 <= response.status_code < 300:
        record.status_code = response.status_code
        record.response_body = response.data
        record.save(update_fields=["status_code", "response_body"])
    else:
        _forget(record)
    return response


def _forget(record: IdempotencyRecord) -> None:
    """Failures are not remembered: a retry with the same key runs again."""
    if transaction.get_connection().needs_rollback:
        return  # the request's transaction rolls back, taking the record with it
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def idempotency_forget_object(*, scope: str, object_id: str) -> int:
    """Drop the records whose stored response is this object (its text goes with it when the
    object is deleted): a response that is the object (`{id, …}`) or holds it (`{document: {id}}`)."""
    records = IdempotencyRecord.unscoped_objects.filter(scope=scope)
    deleted, _ = (
        records.filter(response_body__id=object_id) | records.filter(response_body__document__id=object_id)
    ).delete()
    return deleted


def idempotency_purge(*, older_than_hours: int | None = None) -> int:
    """Delete expired records (all orgs); returns how many."""
    hours = older_than_hours if older_than_hours is not None else settings.IDEMPOTENCY_TTL_HOURS
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.unscoped_objects.filter(created_at__lt=cutoff).delete()
    return deleted
