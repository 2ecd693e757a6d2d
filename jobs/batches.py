"""Batches: many jobs of one kind started by one request, followed as one.

A batch's jobs are ordinary jobs with batch priority (an organization's interactive
jobs go first) that are created without a `job.queued` event each: the batch's own
events tell their story to sockets, `batch.created`, then `batch.progress` at most
every BATCH_PROGRESS_INTERVAL_S while its jobs finish (a held-back update goes out
with the next scheduler tick), then `batch.completed` or `batch.cancelled`. Their
started, succeeded and failed events are sent as for any job.

Counts and progress are always read from the jobs, never kept beside them.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from config.errors import Conflict
from config.serializers import api_datetime, api_uuid
from organizations.models import Organization
from realtime import events

from .models import Batch, Job

Status = Job.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING)


def batch_create(
    *,
    org: Organization,
    created_by: User | None,
    kind: str,
    payload: dict[str, Any],
    selection: dict[str, Any],
    queue: str,
    document_ids: list,
) -> Batch:
    """A running batch with one queued job per document (inside the caller's transaction;
    run a scheduling round after commit)."""
    batch = Batch.objects.create(
        org=org, created_by=created_by, kind=kind, payload=payload, selection=selection, total=len(document_ids)
    )
    Job.objects.bulk_create(
        [
            Job(
                org=org,
                kind=kind,
                created_by=created_by,
                payload=payload,
                queue=queue,
                document_id=document_id,
                batch=batch,
                priority=Job.Priority.BATCH,
            )
            for document_id in document_ids
        ],
        batch_size=500,
    )
    _publish(batch, "batch.created", {Status.QUEUED: batch.total})
    return batch


def batch_counts(batch_ids: Iterable) -> dict[Any, dict[str, int]]:
    """Jobs per status for each batch (one query)."""
    counts: dict[Any, dict[str, int]] = defaultdict(lambda: {status: 0 for status in Status.values})
    rows = (
        Job.unscoped_objects.filter(batch_id__in=list(batch_ids))
        .values("batch_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["batch_id"]][row["status"]] = row["n"]
    return counts


def batch_output(batch: Batch, counts: dict[str, int], job_ids: list | None = None) -> dict[str, Any]:
    """The batch as the API and its events show it (`jobs`: only in the detail)."""
    finished = sum(counts.get(status, 0) for status in Job.FINISHED)
    output = {
        "id": str(batch.pk),
        "kind": batch.kind,
        "status": batch.status,
        "total": batch.total,
        "counts": {status: counts.get(status, 0) for status in Status.values},
        "progress": int(100 * finished / batch.total) if batch.total else 100,
        "template_id": batch.payload.get("template_id"),
        "provider": batch.payload.get("provider"),
        "model": batch.payload.get("model"),
        "options": batch.payload.get("options") or {},
        "selection": batch.selection,
        "created_by": api_uuid(batch.created_by_id),
        "created_at": api_datetime(batch.created_at),
        "finished_at": api_datetime(batch.finished_at),
    }
    if job_ids is not None:
        output["jobs"] = [str(job_id) for job_id in job_ids]
    return output


def _publish(batch: Batch, type: str, counts: dict[str, int] | None = None) -> None:
    if counts is None:
        counts = batch_counts([batch.pk])[batch.pk]
    events.publish(batch.org_id, type, batch_output(batch, counts), user_id=batch.created_by_id)


def batch_cancel(*, batch: Batch) -> Batch:
    """Cancel a running batch: its waiting jobs at once (no event each), its running jobs as
    any job is cancelled (they stop at their next step). 409 if it already finished."""
    from .scheduler import schedule_on_commit
    from .services import job_cancel

    now = timezone.now()
    with transaction.atomic():
        if not Batch.unscoped_objects.filter(pk=batch.pk, status=Batch.Status.RUNNING).update(
            status=Batch.Status.CANCELLED, finished_at=now, progress_pending=False, updated_at=now
        ):
            batch.refresh_from_db()
            raise Conflict(f"The batch is already {batch.status}.", "batch_finished")
        Job.unscoped_objects.filter(batch=batch, status=Status.QUEUED).update(
            status=Status.CANCELLED, lease_expires_at=None, finished_at=now, updated_at=now
        )
        for job in Job.unscoped_objects.filter(batch=batch, status=Status.RUNNING):
            with contextlib.suppress(Conflict):  # it finished meanwhile
                job_cancel(job=job)
        batch.refresh_from_db()
        _publish(batch, "batch.cancelled")
        schedule_on_commit()
    return batch


def batch_job_finished(*, batch_id) -> None:
    """After one of the batch's jobs reached a final status (committed): complete the batch
    when none is left, else tell its progress — at most every BATCH_PROGRESS_INTERVAL_S, the
    rest flagged for the tick (`batch_flush_progress`)."""
    now = timezone.now()
    unfinished = Job.unscoped_objects.filter(batch_id=OuterRef("pk"), status__in=UNFINISHED)
    running = Batch.unscoped_objects.filter(pk=batch_id, status=Batch.Status.RUNNING)
    if running.filter(~Exists(unfinished)).update(
        status=Batch.Status.COMPLETED, finished_at=now, progress_pending=False, updated_at=now
    ):
        _publish(Batch.unscoped_objects.get(pk=batch_id), "batch.completed")
        return
    since = now - timedelta(seconds=settings.BATCH_PROGRESS_INTERVAL_S)
    if running.filter(Q(progress_sent_at__isnull=True) | Q(progress_sent_at__lte=since)).update(
        progress_sent_at=now, progress_pending=False
    ):
        batch = Batch.unscoped_objects.filter(pk=batch_id).first()
        if batch is not None:
            _publish(batch, "batch.progress")
    else:
        running.update(progress_pending=True)


def batch_flush_progress() -> int:
    """The tick's part: send the progress events that throttling held back."""
    now = timezone.now()
    since = now - timedelta(seconds=settings.BATCH_PROGRESS_INTERVAL_S)
    sent = 0
    for batch in Batch.unscoped_objects.filter(progress_pending=True, progress_sent_at__lte=since)[:100]:
        if Batch.unscoped_objects.filter(pk=batch.pk, progress_pending=True, status=Batch.Status.RUNNING).update(
            progress_sent_at=now, progress_pending=False
        ):
            _publish(batch, "batch.progress")
            sent += 1
    return sent


def batch_fail(*, batch: Batch, code: str, detail: str) -> None:
    """A batch that could not be started (the broker is down): its waiting jobs fail with
    `code`, and it completes at once."""
    now = timezone.now()
    with transaction.atomic():
        Job.unscoped_objects.filter(batch=batch, status=Status.QUEUED).update(
            status=Status.FAILED, error={"code": code, "detail": detail}, finished_at=now, updated_at=now
        )
        Batch.unscoped_objects.filter(pk=batch.pk, status=Batch.Status.RUNNING).update(
            status=Batch.Status.COMPLETED, finished_at=now, progress_pending=False, updated_at=now
        )
        batch.refresh_from_db()
        _publish(batch, "batch.completed")
