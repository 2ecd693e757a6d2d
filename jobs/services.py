"""The job state machine: every transition is a guarded, atomic UPDATE here.

    queued ──start──► running ──succeed──► succeeded
       │                │  └────fail─────► failed
       │                ├──retry_later──► queued   (transient error / lost worker)
       └──────cancel────┴──cancel───────► cancelled

A queued job waits for the scheduler (jobs.scheduler) to hand it to a worker;
every transition that frees a worker's slot asks for a scheduling round after
commit, and a batch job's end updates its batch (jobs.batches).

A transition is `UPDATE job SET ... WHERE id = ? AND status IN (...) [AND
lease_token = ?]`; when it matches no row, someone else already moved the job
(a duplicate or late delivery, a cancel, the reaper) and the caller stands
down. Each successful transition publishes the job event after commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config.errors import Conflict
from organizations.models import Organization
from realtime import events

from .models import Job

logger = logging.getLogger(__name__)
Status = Job.Status

_EVENT_FOR_STATUS = {
    Status.QUEUED: "job.queued",
    Status.RUNNING: "job.started",
    Status.SUCCEEDED: "job.succeeded",
    Status.FAILED: "job.failed",
    Status.CANCELLED: "job.cancelled",
}


def job_publish(job: Job, type: str | None = None, also: Sequence[tuple[str, dict[str, Any], Any]] = ()) -> None:
    """The job's event, followed by `also` — other `(type, data, user_id)` events of the same
    transaction, stored and sent together with it."""
    from .serializers import job_output

    first = (type or _EVENT_FOR_STATUS[job.status], job_output(job), job.created_by_id)
    events.publish_together(job.org_id, [first, *also])


def _transition(
    job_id,
    *,
    from_statuses,
    owner_token: str | None = None,
    event: str | None = "auto",
    also: Sequence[tuple[str, dict[str, Any], Any]] = (),
    frees_slot: bool = True,
    **changes,
) -> Job | None:
    """The one guarded UPDATE. Returns the updated job, or None when the guard failed.

    `owner_token`, when given, must be the running attempt's lease token: a
    worker whose attempt was taken away (reaped, cancelled) cannot move the job.
    A transition that `frees_slot` (the job leaves a worker, or gives back its
    turn) asks for a scheduling round after commit.
    """
    from .batches import batch_job_finished
    from .scheduler import schedule_soon

    rows = Job.unscoped_objects.filter(pk=job_id, status__in=list(from_statuses))
    if owner_token is not None:
        rows = rows.filter(lease_token=owner_token)
    with transaction.atomic():
        if rows.update(**changes, updated_at=timezone.now()) != 1:
            return None
        job = Job.unscoped_objects.select_related("org").get(pk=job_id)  # task bodies read job.org
        if event:
            job_publish(job, None if event == "auto" else event, also)
        if frees_slot:
            schedule_soon()
        if job.batch_id and job.status in Job.FINISHED:
            batch_id = job.batch_id
            transaction.on_commit(lambda: batch_job_finished(batch_id=batch_id))
    if job.status in Job.FINISHED and changes.get("status") in Job.FINISHED:
        from config.metrics import record_job_finished

        duration = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else None
        record_job_finished(kind=job.kind, status=job.status, duration_s=duration)
    return job


def job_create(
    *,
    org: Organization,
    kind: str,
    created_by: User | None,
    payload: dict[str, Any],
    queue: str,
    document=None,
) -> Job:
    """A queued, interactive job; it waits for a scheduling round (the caller runs one
    after commit: jobs.views.job_start_response, or jobs.scheduler.schedule_on_commit)."""
    job = Job.objects.create(org=org, kind=kind, created_by=created_by, payload=payload, queue=queue, document=document)
    job_publish(job)
    return job


def _attempt(holder: str) -> dict[str, Any]:
    """The changes that start an attempt held by the process `holder` (jobs.holders)."""
    now = timezone.now()
    return {
        "status": Status.RUNNING,
        "attempts": F("attempts") + 1,
        "lease_token": str(uuid.uuid4()),
        "lease_expires_at": now + timedelta(seconds=settings.JOB_LEASE_S),
        "lease_holder": holder,
        "started_at": now,
    }


def job_start(*, job_id, holder: str = "") -> Job | None:
    """Claim a queued job for one attempt: running, a fresh lease token, attempts + 1, held
    by the process `holder` (jobs.holders.current(); "" if it does not beat).

    None when the job is not queued (already running elsewhere, finished or
    cancelled): a duplicate or late delivery, which must then do nothing.
    """
    return _transition(job_id, from_statuses=[Status.QUEUED], frees_slot=False, **_attempt(holder))


def job_take_over(*, job_id, holder: str) -> Job | None:
    """A delivery of a job that is already running: start a new attempt here if the process
    holding it has stopped beating, instead of waiting for its lease to expire.

    That is a task redelivered because its worker died (a prefork parent hands a killed
    child's task back at once: acks_late, reject_on_worker_lost). Waits up to
    jobs.holders.HOLDER_DEAD_AFTER_S to tell. None, doing nothing, when the holder still
    beats (a duplicate delivery), cannot be told (no name: claimed in the embedded mode or
    by an older release; Redis down), or the job moved meanwhile; the dead attempt's token
    guards the takeover. After the job's last attempt it fails `worker_lost` instead.
    """
    from . import holders

    running = Job.unscoped_objects.filter(pk=job_id, status=Status.RUNNING).first()
    if running is None or not holder or running.lease_holder in ("", holder):
        return None
    if not holders.gone(running.lease_holder):
        return None
    if running.attempts >= settings.JOB_MAX_ATTEMPTS:
        logger.warning("job %s: its process %s stopped beating; no attempt left", job_id, running.lease_holder)
        detail = f"The worker running this job stopped ({running.attempts} attempt(s))."
        job_fail(job_id=job_id, lease_token=running.lease_token, code="worker_lost", detail=detail)
        return None
    logger.warning("job %s: its process %s stopped beating; taking the job over", job_id, running.lease_holder)
    error = {"code": "worker_lost", "detail": "The worker running this job stopped; retrying.", "retrying": True}
    return _transition(
        job_id,
        from_statuses=[Status.RUNNING],
        owner_token=running.lease_token,
        frees_slot=False,
        error=error,
        **_attempt(holder),
    )


def job_heartbeat_many(leases: dict[Any, str]) -> set[str]:
    """Renew the leases of several running attempts (`{job_id: lease_token}`) in one
    UPDATE; returns the tokens still owning a running job (the others were cancelled or
    taken away: their work should stop)."""
    owned = set(
        Job.unscoped_objects.filter(
            pk__in=list(leases), lease_token__in=list(leases.values()), status=Status.RUNNING
        ).values_list("lease_token", flat=True)
    )
    if owned:
        Job.unscoped_objects.filter(lease_token__in=owned, status=Status.RUNNING).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_S)
        )
    return owned


def job_heartbeat(*, job_id, lease_token: str) -> bool:
    """Renew the lease; False when the attempt no longer owns a running job (e.g. cancelled)."""
    rows = Job.unscoped_objects.filter(pk=job_id, status=Status.RUNNING, lease_token=lease_token)
    return rows.update(lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_S)) == 1


def job_set_progress(*, job_id, lease_token: str, progress: int) -> bool:
    job = _transition(
        job_id,
        from_statuses=[Status.RUNNING],
        owner_token=lease_token,
        event="job.progress",
        progress=max(0, min(100, int(progress))),
        lease_expires_at=timezone.now() + timedelta(seconds=settings.JOB_LEASE_S),
        frees_slot=False,
    )
    return job is not None


def job_succeed(
    *, job_id, lease_token: str, result: dict[str, Any], summary=None, also: Sequence[tuple[str, dict, Any]] = ()
) -> Job | None:
    """Mark succeeded; `also`: events to publish right after job.succeeded (e.g. summary.created)."""
    return _transition(
        job_id,
        from_statuses=[Status.RUNNING],
        owner_token=lease_token,
        also=also,
        status=Status.SUCCEEDED,
        progress=100,
        result=result,
        summary=summary,
        error=None,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


def job_fail(*, job_id, code: str, detail: str, lease_token: str | None = None) -> Job | None:
    """Mark failed with a stable code and a human detail (never a traceback)."""
    return _transition(
        job_id,
        from_statuses=[Status.QUEUED, Status.RUNNING],
        owner_token=lease_token,
        status=Status.FAILED,
        error={"code": code, "detail": detail},
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


def job_retry_later(
    *, job_id, lease_token: str | None, code: str, detail: str, delay_s: float = 0.0, retries: int | None = None
) -> Job | None:
    """Back to queued after a transient failure: it waits `delay_s` before the scheduler may
    hand it out again. `retries`: the job's LLM retry budget spent so far, kept for the
    next attempt."""
    extra = {} if retries is None else {"retries": retries}
    return _transition(
        job_id,
        from_statuses=[Status.RUNNING],
        owner_token=lease_token,
        status=Status.QUEUED,
        error={"code": code, "detail": detail, "retrying": True},
        lease_token="",
        lease_expires_at=None,
        lease_holder="",
        dispatched_at=None,
        not_before=timezone.now() + timedelta(seconds=delay_s) if delay_s > 0 else None,
        **extra,
    )


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job (202); a finished one cannot be (409)."""
    cancelled = _transition(
        job.pk,
        from_statuses=[Status.QUEUED, Status.RUNNING],
        status=Status.CANCELLED,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    if cancelled is None:
        job.refresh_from_db()
        raise Conflict(f"The job is already {job.status}.", "job_finished")
    return cancelled


def job_cancel_for_document(*, document_id) -> int:
    """Cancel the unfinished jobs of a document that is being deleted."""
    ids = list(
        Job.unscoped_objects.filter(document_id=document_id, status__in=[Status.QUEUED, Status.RUNNING]).values_list(
            "pk", flat=True
        )
    )
    cancelled = 0
    for job_id in ids:
        job = _transition(
            job_id,
            from_statuses=[Status.QUEUED, Status.RUNNING],
            status=Status.CANCELLED,
            error={"code": "document_deleted", "detail": "The document was deleted."},
            finished_at=timezone.now(),
        )
        cancelled += job is not None
    return cancelled


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before a transient failure's next attempt: what the service asked, else 5 s, 15 s, 45 s..."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), 300.0)
    return min(300.0, 5.0 * 3 ** max(0, attempt - 1))


def job_retry_or_fail(
    job: Job,
    *,
    code: str,
    detail: str,
    transient: bool,
    retry_after: float | None = None,
    retries: int | None = None,
) -> None:
    """After a failed attempt: requeue it with a delay while attempts remain and the error is
    transient, else mark it failed."""
    if transient and job.attempts < settings.JOB_MAX_ATTEMPTS:
        job_retry_later(
            job_id=job.pk,
            lease_token=job.lease_token,
            code=code,
            detail=detail,
            delay_s=retry_delay(job.attempts, retry_after),
            retries=retries,
        )
        return
    job_fail(job_id=job.pk, lease_token=job.lease_token, code=code, detail=detail)


class JobTimedOut(Exception):
    """Raised by a task body that passed its job's time budget (JOB_SOFT_TIME_LIMIT_S): pools
    that cannot interrupt a task (threads) check the budget between steps instead."""


def job_deadline(job: Job) -> float:
    """The `time.monotonic()` by which this attempt must be done."""
    import time

    elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    return time.monotonic() + settings.JOB_SOFT_TIME_LIMIT_S - max(0.0, elapsed)


def job_run(job_id, body: Callable[[Job], None]) -> None:
    """Claim a queued job for this delivery and run `body(job)` (the task bodies use this).

    A duplicate or late delivery claims nothing and does nothing, unless the job is
    running in a process that stopped beating: then this delivery takes it over
    (`job_take_over`). An unexpected error fails *this attempt* (its lease token) with
    `internal_error`; the traceback goes to the log, never into the job. An error
    before the claim leaves the job queued, for a redelivery or the reaper.
    """
    from celery.exceptions import SoftTimeLimitExceeded

    from . import holders

    holder = holders.current()
    job = job_start(job_id=job_id, holder=holder) or job_take_over(job_id=job_id, holder=holder)
    if job is None:
        logger.info("job %s not startable (duplicate or late delivery); nothing to do", job_id)
        return
    try:
        body(job)
    except (SoftTimeLimitExceeded, JobTimedOut):
        job_fail(
            job_id=job.pk,
            lease_token=job.lease_token,
            code="timeout",
            detail=f"The job took longer than {settings.JOB_SOFT_TIME_LIMIT_S} s.",
        )
    except Exception:
        logger.exception("job %s crashed", job.pk)
        job_fail(
            job_id=job.pk,
            lease_token=job.lease_token,
            code="internal_error",
            detail="An unexpected error stopped this job; it was logged.",
        )


def job_reap_stale(*, now=None) -> dict[str, int]:
    """The reconciler (beat schedule and `manage.py reap_stale_jobs`), across all orgs.

    - running jobs whose lease expired (their worker died or hung): back to
      queued while attempts remain, else failed `worker_lost`;
    - queued jobs handed to a worker long ago and never started (the message was
      lost between commit and enqueue, or the broker dropped it): they wait for
      the scheduler again. A duplicate message is harmless: only one delivery can
      start the job.
    """
    from .scheduler import schedule_on_commit

    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0, "redispatched": 0}
    for job in Job.unscoped_objects.filter(status=Status.RUNNING, lease_expires_at__lt=now):
        outcome = _take_back(
            job,
            failed=f"The worker running this job stopped responding ({job.attempts} attempt(s)).",
            retrying="The worker running this job stopped responding; retrying.",
        )
        if outcome:
            counts[outcome] += 1
    stuck_before = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_S)
    with transaction.atomic():
        counts["redispatched"] = Job.unscoped_objects.filter(
            status=Status.QUEUED, dispatched_at__lt=stuck_before
        ).update(dispatched_at=None)
        if counts["redispatched"]:
            schedule_on_commit()
    if any(counts.values()):
        logger.info("reaped stale jobs: %s", counts)
    return counts


def job_take_back_from_dead_holders() -> dict[str, int]:
    """On every tick: running jobs whose process stopped beating (jobs.holders.dead: a
    worker killed whole, whose task the broker gives back only after its visibility
    timeout) are requeued at once, or failed `worker_lost` after their last attempt,
    instead of waiting for their lease to expire and the reaper."""
    from . import holders

    running = Job.unscoped_objects.filter(status=Status.RUNNING).exclude(lease_holder="")
    gone = holders.dead(running.order_by().values_list("lease_holder", flat=True).distinct())
    counts = {"requeued": 0, "failed": 0}
    for job in running.filter(lease_holder__in=gone) if gone else ():
        outcome = _take_back(
            job,
            failed=f"The worker running this job stopped ({job.attempts} attempt(s)).",
            retrying="The worker running this job stopped; retrying.",
        )
        if outcome:
            counts[outcome] += 1
    if any(counts.values()):
        logger.warning("jobs of stopped processes %s taken back: %s", sorted(gone), counts)
    return counts


def _take_back(job: Job, *, failed: str, retrying: str) -> str | None:
    """A running job whose worker is gone: requeued while attempts remain, else failed
    `worker_lost`. Returns "requeued", "failed", or None if it moved meanwhile."""
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        done = job_fail(job_id=job.pk, lease_token=job.lease_token, code="worker_lost", detail=failed)
        return "failed" if done else None
    done = job_retry_later(job_id=job.pk, lease_token=job.lease_token, code="worker_lost", detail=retrying)
    return "requeued" if done else None


def job_recover_abandoned() -> dict[str, int]:
    """At the embedded server's start: what the previous process held is its no longer.

    Jobs it was running are requeued (or failed `worker_lost` after their last
    attempt) and jobs it had taken but not started wait for the scheduler again.
    """
    counts = {"requeued": 0, "failed": 0, "released": 0}
    for job in Job.unscoped_objects.filter(status=Status.RUNNING):
        outcome = _take_back(
            job,
            failed="The server stopped while running this job.",
            retrying="The server stopped while running this job; retrying.",
        )
        if outcome:
            counts[outcome] += 1
    counts["released"] = Job.unscoped_objects.filter(status=Status.QUEUED, dispatched_at__isnull=False).update(
        dispatched_at=None
    )
    return counts
