"""Handing waiting jobs to workers: fair between organizations, never past capacity.

A job waits in its table (status `queued`, `dispatched_at` NULL) until a round of
`schedule()` hands it to Celery. A round, under one lock for all processes:

1. counts each queue's free slots: the slots its live workers registered
   (jobs.capacity) minus the jobs holding one (running, or handed over and not
   started yet); the CPU-bound queues get one job ready behind each slot (`_ahead`);
2. fills them by water-filling across organizations: each slot goes to the
   organization with the fewest jobs in flight on that queue (ties: its most
   urgent waiting job, interactive before batch, then the oldest). Organizations at
   ORG_MAX_CONCURRENT_JOBS (over all queues) are skipped, and so are jobs an
   admission gate holds back (the LLM limiter: a provider already booked for the
   next second, an organization over its own rate; see `register_gate`);
3. marks the chosen jobs dispatched and, after commit, sends their tasks.

So every backlogged organization converges to an equal share of the capacity, and an
organization that starts a single job gets the next slot that frees, whatever others
have queued. Within one organization interactive jobs go before batch jobs.

Rounds run after jobs are created (the request's answer waits for it, to report a
broker outage as 503), when a job leaves its slot (jobs.services, through one round
thread per process that coalesces the requests), when a worker starts, and on beat's
tick (`jobs.runtime`, SCHEDULER_TICK_S) for delayed retries and anything missed.
Celery stays the transport: nothing polls the table for work, and the broker never
holds more than the workers can start.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from config.celery import app as celery_app

from . import capacity
from .capacity import BrokerUnavailable
from .models import Job

logger = logging.getLogger(__name__)
Status = Job.Status

# kind → task name. Feature apps own the task bodies.
TASKS: dict[str, str] = {
    Job.Kind.SUMMARIZE: "summaries.run_summarize_job",
    Job.Kind.IMPORT: "integrations.run_import_job",
    Job.Kind.PUBLISH: "summaries.run_publish_job",
    Job.Kind.INGEST: "documents.run_ingest_job",
}
# The queues jobs wait for. Work that waits (LLM calls; extraction, which runs in a
# sandboxed child process) on the threads of the `io` worker; CPU-bound summaries (the
# local provider) and integrations on the processes of the `worker`.
JOB_QUEUES = ("llm", "ingest", "summaries", "integrations")
IO_QUEUES = ("llm", "ingest")


def queue_for(kind: str, *, io_bound: bool = False) -> str:
    """The queue a job waits for: summaries through an LLM (`io_bound`) go to `llm`, the
    built-in summarizer's to `summaries`, extraction to `ingest`, imports and publishing
    to `integrations`."""
    if kind == Job.Kind.SUMMARIZE:
        return "llm" if io_bound else "summaries"
    if kind == Job.Kind.INGEST:
        return "ingest"
    return "integrations"


def io_slots(queue: str) -> int | None:
    """Slots of a threads worker on one of the IO queues (its threads only wait)."""
    return {"llm": settings.LLM_CONCURRENCY, "ingest": settings.INGEST_CONCURRENCY}.get(queue)


_LOCK_KEY = 0x70726563  # "prec": the advisory lock of scheduling rounds
_local_lock = threading.Lock()  # the same in the embedded mode (one process)


@dataclass
class Waiting:
    """A job the round may hand over."""

    id: uuid.UUID
    org_id: uuid.UUID
    kind: str
    queue: str
    priority: int
    created_at: Any
    payload: dict
    document_id: uuid.UUID | None = None


Gate = Callable[[list[Waiting]], Callable[[Waiting], bool]]
_gates: dict[str, list[Gate]] = defaultdict(list)


def register_gate(queue: str, gate: Gate) -> None:
    """Let a feature app hold jobs back on a queue. `gate(candidates)` is called once a
    round and returns `admit(job) -> bool`, asked in the order jobs would be handed over."""
    _gates[queue].append(gate)


def schedule(*, wait: bool = True) -> list[uuid.UUID]:
    """One round over every job queue; returns the ids of the jobs handed over.

    `wait=False` (the ticks) skips the round if another process is running one.
    Raises BrokerUnavailable when the broker cannot be reached: the jobs it could not
    send wait for a later round. Call it outside any transaction (after commit).
    """
    if settings.EMBEDDED:
        from . import embedded

        if not embedded.running():
            return []  # only the serving process runs jobs; they wait for it
        if not _local_lock.acquire(blocking=wait):
            return []
        try:
            picked = _pick()
        finally:
            _local_lock.release()
    else:
        picked = _pick(wait=wait)
    if picked is None:
        return []
    return _send(picked)


def _round_logged() -> None:
    """A round whose errors are logged: a later round sends what this one could not."""
    try:
        schedule()
    except BrokerUnavailable:
        logger.warning("broker unavailable: jobs wait for the next scheduling round")
    except Exception:
        logger.exception("scheduling round failed")


def schedule_on_commit() -> None:
    """After the current transaction commits, run a round in this thread."""
    transaction.on_commit(_round_logged)


class _Rounds:
    """One thread per process running the rounds that `schedule_soon()` asks for: a job that
    frees its slot does not wait for the round, and the requests of many jobs finishing at
    once make one or two rounds, not one each."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def request(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or a forked child)
                self._pid = os.getpid()
                self._wanted = threading.Event()
                threading.Thread(target=self._run, name="scheduler-rounds", daemon=True).start()
        self._wanted.set()

    def _run(self) -> None:
        from django.db import close_old_connections

        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                _round_logged()
            finally:
                close_old_connections()


_rounds = _Rounds()


def schedule_soon() -> None:
    """After the current transaction commits, have this process's round thread run a round."""
    transaction.on_commit(_rounds.request)


def _pick(*, wait: bool = True) -> list[Waiting] | None:
    """Choose and mark the jobs to hand over (one transaction, under the lock)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if wait:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
                else:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
                    if not cursor.fetchone()[0]:
                        return None
        in_flight = _in_flight()
        slots = capacity.capacity(list(JOB_QUEUES))
        held = {q: sum(n for (queue, _), n in in_flight.items() if queue == q) for q in JOB_QUEUES}
        free = {q: slots[q] + _ahead(q, slots[q]) - held[q] for q in JOB_QUEUES}
        free = {q: n for q, n in free.items() if n > 0}
        if not free:
            return []
        org_totals: dict[Any, int] = defaultdict(int)
        for (_, org_id), n in in_flight.items():
            org_totals[org_id] += n
        picked: list[Waiting] = []
        for queue, count in free.items():
            picked += _fill(
                queue, count, _waiting(queue, count), in_flight, org_totals, _org_share(queue, slots[queue])
            )
        if picked:
            Job.unscoped_objects.filter(
                pk__in=[job.id for job in picked], status=Status.QUEUED, dispatched_at__isnull=True
            ).update(dispatched_at=timezone.now())
        return picked


# Raw SQL: these two run in every round, and building them with the ORM cost more than
# running them. Both use a partial index (job_in_flight, job_waiting).
_IN_FLIGHT_SQL = """
SELECT queue, org_id, COUNT(*) FROM jobs_job
WHERE status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL)
GROUP BY queue, org_id
"""
_WAITING_SQL = """
SELECT id, org_id, kind, queue, priority, created_at, payload, document_id FROM (
    SELECT id, org_id, kind, queue, priority, created_at, payload, document_id,
           ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY priority, created_at) AS turn
    FROM jobs_job
    WHERE queue = %s AND status = 'queued' AND dispatched_at IS NULL AND (not_before IS NULL OR not_before <= %s)
) AS waiting
WHERE turn <= %s
"""


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _ahead(queue: str, slots: int) -> int:
    """Jobs handed out beyond the slots, ready for a slot the moment it frees: one per slot on
    the CPU-bound queues, whose jobs take milliseconds and would otherwise wait a round trip
    for each next job; none on the IO queues, whose jobs take seconds (a round trip is
    nothing) and whose fair order must hold until a slot is really free."""
    return 0 if queue in IO_QUEUES else slots


def _org_share(queue: str, slots: int) -> int | None:
    """The most slots of `queue` one organization may hold: of the ingest slots, one always
    stays for the others (a file can take a whole EXTRACTION_TIMEOUT_S, and ten hostile
    files must not hold up everyone's uploads); elsewhere no limit but the fair order."""
    if queue == "ingest" and slots > 1:
        return slots - 1
    return None


def _in_flight() -> dict[tuple[str, Any], int]:
    """Jobs holding a slot, per (queue, org): running, or handed over and not started."""
    with connection.cursor() as cursor:
        cursor.execute(_IN_FLIGHT_SQL)
        return {(queue, _uuid(org_id)): n for queue, org_id, n in cursor.fetchall()}


def _waiting(queue: str, per_org: int) -> list[Waiting]:
    """The first `per_org` waiting jobs of every organization on `queue`, most urgent first."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_WAITING_SQL, [queue, now, per_org])
        rows = cursor.fetchall()
    return [
        Waiting(
            _uuid(job_id),
            _uuid(org_id),
            kind,
            job_queue,
            priority,
            created_at,
            payload if isinstance(payload, dict) else json.loads(payload or "{}"),
            _uuid(document_id) if document_id else None,
        )
        for job_id, org_id, kind, job_queue, priority, created_at, payload, document_id in rows
    ]


def _fill(
    queue: str,
    free: int,
    waiting: list[Waiting],
    in_flight: dict[tuple[str, Any], int],
    org_totals: dict[Any, int],
    share: int | None = None,
) -> list[Waiting]:
    """Water-filling: the next slot to the organization with the fewest jobs in flight."""
    by_org: dict[Any, deque[Waiting]] = defaultdict(deque)
    for job in sorted(waiting, key=lambda j: (j.priority, j.created_at)):
        by_org[job.org_id].append(job)
    admits = []
    for gate in _gates.get(queue, ()):
        try:
            admits.append(gate(waiting))
        except Exception:  # e.g. Redis down: hold the queue back rather than overrun a limit
            logger.warning("admission gate for %s failed; its jobs wait", queue, exc_info=True)
            return []
    cap = settings.ORG_MAX_CONCURRENT_JOBS
    heap = [
        (in_flight.get((queue, org), 0), jobs[0].priority, jobs[0].created_at, str(org)) for org, jobs in by_org.items()
    ]
    orgs = {str(org): org for org in by_org}
    heapq.heapify(heap)
    picked: list[Waiting] = []
    while free > 0 and heap:
        held, _, _, key = heapq.heappop(heap)
        org = orgs[key]
        if cap and org_totals[org] >= cap:
            continue  # this organization has its share of every queue
        if share is not None and held >= share:
            continue  # ...or of this one
        jobs = by_org[org]
        job = jobs.popleft()
        if all(admit(job) for admit in admits):
            picked.append(job)
            free -= 1
            held += 1
            org_totals[org] += 1
        if jobs:
            heapq.heappush(heap, (held, jobs[0].priority, jobs[0].created_at, key))
    return picked


def _send(picked: list[Waiting]) -> list[uuid.UUID]:
    """Hand the chosen jobs' tasks over; on a broker outage the rest wait again."""
    sent: list[uuid.UUID] = []
    for index, job in enumerate(picked):
        try:
            _send_one(job)
        except BrokerUnavailable:
            unsent = [j.id for j in picked[index:]]
            Job.unscoped_objects.filter(pk__in=unsent, status=Status.QUEUED).update(dispatched_at=None)
            logger.warning("broker unavailable: %d job(s) wait for the next round", len(unsent))
            raise
        sent.append(job.id)
    return sent


def _send_one(job: Waiting) -> None:
    kwargs = {"org_id": str(job.org_id), "job_id": str(job.id)}
    if settings.EMBEDDED:
        from . import embedded

        embedded.submit(job.queue, TASKS[job.kind], kwargs)
        return
    try:
        celery_app.send_task(
            TASKS[job.kind],
            kwargs=kwargs,
            queue=job.queue,
            retry=True,
            retry_policy=settings.CELERY_PUBLISH_RETRY_POLICY,
        )
    except (KombuOperationalError, OSError, ConnectionError) as exc:
        raise BrokerUnavailable() from exc


def waiting_counts(queues: Iterable[str] = JOB_QUEUES) -> dict[str, int]:
    """Jobs waiting for a slot per queue (metrics)."""
    rows = (
        Job.unscoped_objects.filter(queue__in=list(queues), status=Status.QUEUED, dispatched_at__isnull=True)
        .values("queue")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["queue"]: row["n"] for row in rows}
