"""A dead worker's job is taken over as soon as its process stops beating, not when its lease
expires (jobs/holders.py): real Celery worker processes, killed with SIGKILL mid-call."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from config.tests.process_fixtures import Worker, wait_until
from jobs import capacity, holders
from jobs.models import Job
from jobs.runtime import tick
from summaries.models import Summary
from summaries.tests.fake_llm import Reply

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_S = 60  # the workers' JOB_LEASE_S: what recovery used to wait for
TAKEOVER_WITHIN_S = 25  # well before it: the beat's HOLDER_DEAD_AFTER_S, a worker's start, the LLM probe
SLOTS_GONE_WITHIN_S = 10  # a dead worker's registered slots
WATCH_S = 2 * holders.HOLDER_DEAD_AFTER_S + 2  # long enough for a wrong takeover to show


@pytest.fixture
def workers(no_session_worker, fake_llm):
    started: list[Worker] = []

    def start(name: str, pool: str, concurrency: int, **env: str) -> Worker:
        worker = Worker(
            fake_llm.url,
            name=name,
            pool=pool,
            concurrency=concurrency,
            queues="llm,default",
            extra_env={"JOB_LEASE_S": str(LEASE_S), "JOB_MAX_ATTEMPTS": "3", **env},
        )
        if worker.log_path.exists():
            worker.log_path.unlink()
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


def summarize(tenant) -> str:
    client = tenant.client()
    document = client.post(
        "/api/v1/documents/", {"title": "Budget", "content": "Revenue grew. Costs fell."}, format="json"
    )
    assert document.status_code == 201, document.content
    response = client.post(
        f"/api/v1/documents/{document.json()['id']}/summarize/", {"provider": "openai"}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def job_row(job_id) -> Job:
    return Job.unscoped_objects.get(pk=job_id)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def finished_task(worker: Worker, task_id: str) -> bool:
    return any("task finished" in line and task_id in line for line in worker.log_path.read_text().splitlines())


def started_again(job_id, first: Job):
    row = job_row(job_id)
    return row if row.attempts > first.attempts and row.lease_token != first.lease_token else None


def assert_taken_over_early(job_id, first: Job, killed_at: float) -> Job:
    """The second attempt started well before the dead attempt's lease would have expired."""
    second = wait_until(lambda: started_again(job_id, first), timeout=TAKEOVER_WITHIN_S, interval=0.2)
    assert time.monotonic() - killed_at < TAKEOVER_WITHIN_S
    assert second.started_at < first.lease_expires_at - timedelta(seconds=LEASE_S - TAKEOVER_WITHIN_S)
    assert second.attempts == 2
    return second


def test_a_redelivered_task_takes_over_from_a_killed_process_at_once(workers, fake_llm, tenant):
    """prefork: the child running the job dies, its parent hands the task back (acks_late,
    reject_on_worker_lost) and the next child takes the job over."""
    fake_llm.then(Reply(hang=True))
    worker = workers("takeover", "prefork", 1)
    job_id = summarize(tenant)
    assert fake_llm.wait_for_requests(1)
    first = job_row(job_id)
    assert first.status == "running" and first.attempts == 1
    (child,) = children(worker.process.pid)
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    assert_taken_over_early(job_id, first, killed_at)
    done = wait_until(lambda: (row := job_row(job_id)).status in ("succeeded", "failed") and row, timeout=30)
    assert done.status == "succeeded", done.error
    assert Summary.unscoped_objects.filter(job_id=job_id).count() == 1


def test_a_killed_worker_s_job_goes_to_the_next_worker(workers, fake_llm, tenant, settings):
    """The whole worker dies (its task comes back only after the broker's visibility timeout):
    the tick sees its process stopped beating and requeues the job for a live worker."""
    # The dead call was the model's first (its probe): the ticks here hand out no LLM job
    # until it is given up on after the workers' LLM_TIMEOUT_S.
    settings.LLM_TIMEOUT_S = 5
    fake_llm.then(Reply(hang=True))
    dead = workers("doomed", "threads", 2)
    job_id = summarize(tenant)
    assert fake_llm.wait_for_requests(1)
    first = job_row(job_id)
    assert first.status == "running"
    dead.kill()
    killed_at = time.monotonic()
    workers("heir", "threads", 2)

    def started_by_the_heir():
        tick()  # this test plays beat
        return started_again(job_id, first)

    wait_until(started_by_the_heir, timeout=TAKEOVER_WITHIN_S, interval=0.5)
    assert_taken_over_early(job_id, first, killed_at)

    def finished():
        tick()
        row = job_row(job_id)
        return row if row.status in ("succeeded", "failed") else None

    done = wait_until(finished, timeout=30, interval=0.5)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and Summary.unscoped_objects.filter(job_id=job_id).count() == 1


def test_a_live_holder_is_never_taken_over(workers, fake_llm, tenant):
    """A duplicate delivery while the job runs in another, live process stands down."""
    fake_llm.then(Reply(hang=True))
    worker = workers("alive", "prefork", 2, LLM_TIMEOUT_S="60")  # the call hangs until released
    job_id = summarize(tenant)
    assert fake_llm.wait_for_requests(1)
    first = job_row(job_id)
    duplicate = celery_app.send_task(
        "summaries.run_summarize_job", kwargs={"org_id": str(tenant.org.id), "job_id": job_id}, queue="llm"
    )
    wait_until(lambda: finished_task(worker, duplicate.id))
    # ...and no tick takes it back either, however long it runs
    watch_until = time.monotonic() + WATCH_S

    def held_throughout() -> bool:
        tick()
        row = job_row(job_id)
        assert (row.status, row.attempts, row.lease_token) == ("running", 1, first.lease_token)
        return time.monotonic() > watch_until

    wait_until(held_throughout, timeout=WATCH_S + 10, interval=0.5)
    fake_llm.release.set()
    done = wait_until(lambda: (row := job_row(job_id)).status in ("succeeded", "failed") and row, timeout=30)
    assert done.status == "succeeded" and done.attempts == 1
    assert timezone.now() < first.lease_expires_at  # all of it within the first attempt's lease


def test_a_killed_worker_s_slots_stop_counting_within_seconds(workers):
    """Until they do, the scheduler hands jobs to a worker that is gone, and they wait in the
    broker ahead of everyone's next job (a registration used to count for 45 s)."""
    before = capacity.capacity(["llm"])["llm"]
    dead = workers("vanishing", "threads", 7)
    assert capacity.capacity(["llm"])["llm"] == before + 7
    dead.kill()
    killed_at = time.monotonic()
    wait_until(lambda: capacity.capacity(["llm"])["llm"] == before, timeout=SLOTS_GONE_WITHIN_S)
    assert time.monotonic() - killed_at <= SLOTS_GONE_WITHIN_S
    alive = workers("staying", "threads", 3)
    watch_until = time.monotonic() + SLOTS_GONE_WITHIN_S  # a live one's refreshes keep it counting

    def kept() -> bool:
        assert capacity.capacity(["llm"])["llm"] == before + 3
        return time.monotonic() > watch_until

    wait_until(kept, timeout=SLOTS_GONE_WITHIN_S + 10, interval=0.5)
    alive.stop()
    assert capacity.capacity(["llm"])["llm"] == before  # a goodbye counts at once
