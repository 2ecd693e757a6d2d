"""LLM work at the provider's pace, shared fairly: real `llm` workers (threads, as the Procfile
runs them) against the loopback OpenAI-compatible server with latency and a hard limit."""

from __future__ import annotations

import time

import pytest

from config.tests.process_fixtures import Worker, wait_until
from conftest import make_tenant
from documents.models import Document
from jobs.models import Batch, Job
from summaries.providers import ratelimit
from summaries.tests.fake_llm import Reply

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "/api/v1/documents/summarize/"


@pytest.fixture
def llm_workers(no_session_worker, fake_llm):
    started: list[Worker] = []

    def start(count=1, concurrency=None, **env) -> list[Worker]:
        """`count` workers as the Procfile's `llm` (without --concurrency: LLM_CONCURRENCY)."""
        for index in range(count):
            worker = Worker(
                fake_llm.url,
                name=f"llm{index}",
                pool="threads",
                queues="llm,default",
                extra_env={
                    "LLM_MAX_RETRIES": "3",
                    **({"LLM_CONCURRENCY": str(concurrency)} if concurrency else {}),
                    **env,
                },
            )
            if worker.log_path.exists():
                worker.log_path.unlink()
            started.append(worker.start())
        return started

    yield start
    for worker in started:
        worker.stop()


def documents(tenant, n, title="Report"):
    return [
        Document.unscoped_objects.create(
            org=tenant.org,
            title=f"{title} {i}",
            content=f"{title} {i}: revenue grew. Costs fell.",
            created_by=tenant.admin,
        )
        for i in range(n)
    ]


def summarize_batch(tenant, docs) -> dict:
    response = tenant.client().post(
        BATCH, {"document_ids": [str(d.id) for d in docs], "provider": "openai"}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def batch_done(batch_id, timeout=60) -> dict:
    def finished():
        jobs = Job.unscoped_objects.filter(batch_id=batch_id)
        return not jobs.filter(status__in=["queued", "running"]).exists() and dict(
            (status, jobs.filter(status=status).count()) for status in ("succeeded", "failed", "cancelled")
        )

    return wait_until(finished, timeout=timeout, interval=0.2)


def test_one_worker_keeps_32_calls_in_flight(llm_workers, fake_llm):
    fake_llm.latency = 2.0
    llm_workers(1)  # the shipped default: LLM_CONCURRENCY=32 threads
    tenant = make_tenant("Busy")
    batch = summarize_batch(tenant, documents(tenant, 48))
    assert batch_done(batch["id"]) == {"succeeded": 48, "failed": 0, "cancelled": 0}
    assert fake_llm.peak_in_flight >= 32  # was 2 with the prefork pool
    # an unknown server got one call first (its answer's headers would have set the pace)
    assert fake_llm.arrivals[1] - fake_llm.arrivals[0] >= 1.9
    # The batch completes right after its last job's commit (jobs.batches.batch_job_finished).
    wait_until(lambda: Batch.unscoped_objects.get(pk=batch["id"]).status == "completed", timeout=10)


def test_two_workers_share_one_limit(llm_workers, fake_llm):
    """Never over the provider's limit: 600/min booked in one bucket for both processes."""
    fake_llm.latency = 0.2
    fake_llm.limit_rpm = 600  # the server refuses (429) anything above it
    workers = llm_workers(2, concurrency=16, LLM_RATE_LIMIT_RPM="600")
    tenant = make_tenant("Paced")
    batch = summarize_batch(tenant, documents(tenant, 120))
    assert batch_done(batch["id"]) == {"succeeded": 120, "failed": 0, "cancelled": 0}
    assert fake_llm.refused == []
    arrivals = sorted(fake_llm.arrivals)
    interval = 60 / 590  # a bucket of 10, refilled at 590 a minute
    for first in range(len(arrivals)):
        for last in range(first, len(arrivals)):
            span = arrivals[last] - arrivals[first]
            assert last - first + 1 <= 11 + span / interval + 2, (first, last, span)  # 2: send jitter
    rate = (len(arrivals) - 11) / (arrivals[-1] - arrivals[10])
    assert rate >= 0.8 * 590 / 60  # ...and it uses what it may
    for worker in workers:  # both processes did part of the work
        assert "summaries.run_summarize_job" in worker.log_path.read_text()


def test_429s_pause_every_worker_and_no_job_fails(llm_workers, fake_llm, settings):
    fake_llm.latency = 0.3
    fake_llm.then(*[Reply(), Reply(), Reply(status=429, body=b"{}", headers={"Retry-After": "2"})])
    llm_workers(1, concurrency=4)
    tenant = make_tenant("Throttled")
    batch = summarize_batch(tenant, documents(tenant, 12))
    assert batch_done(batch["id"]) == {"succeeded": 12, "failed": 0, "cancelled": 0}
    refused_at = fake_llm.arrivals[2]
    answered_at = refused_at + 0.05  # a 429 is answered at once
    # calls already on the wire came back; no new one went out before the Retry-After
    paused = [t for t in fake_llm.arrivals[3:] if answered_at + 0.1 < t < refused_at + 1.9]
    assert paused == []
    assert len(fake_llm.requests) == 13  # 12 jobs, one call retried
    (state,), _ = ratelimit._store().read([ratelimit.model_key("openai", settings.LLM_MODEL)])
    assert state["ar"] >= 1  # and the rate came down, to recover step by step


def test_a_light_organization_is_served_within_about_one_call(llm_workers, fake_llm):
    fake_llm.latency = 1.0
    llm_workers(1, concurrency=8)
    heavy, light = make_tenant("Heavy"), make_tenant("Light")
    backlog = summarize_batch(heavy, documents(heavy, 200))
    wait_until(lambda: fake_llm.in_flight == 8, timeout=30)
    assert Job.unscoped_objects.filter(batch_id=backlog["id"], status="queued").count() >= 190

    def first_call_for(title: str) -> float | None:
        for arrived, request in zip(fake_llm.arrivals, fake_llm.requests, strict=False):
            if title in request["messages"][-1]["content"]:
                return arrived
        return None

    (single,) = documents(light, 1, title="Lightweight")
    sent = time.time()
    response = light.client().post(f"/api/v1/documents/{single.id}/summarize/", {"provider": "openai"}, format="json")
    assert response.status_code == 202
    called = wait_until(lambda: first_call_for("Lightweight"), timeout=30)
    assert called - sent <= 1.6  # one call's time (1 s) and the round trip; FIFO would be 25 s

    # within the heavy organization, a person waiting goes before its own batch
    (urgent,) = documents(heavy, 1, title="Urgent")
    sent = time.time()
    heavy.client().post(f"/api/v1/documents/{urgent.id}/summarize/", {"provider": "openai"}, format="json")
    assert wait_until(lambda: first_call_for("Urgent"), timeout=30) - sent <= 1.6

    assert heavy.client().post(f"/api/v1/batches/{backlog['id']}/cancel/").status_code == 202
    assert batch_done(backlog["id"])["cancelled"] >= 180


def test_cpu_work_is_not_held_up_by_llm_work(llm_workers, fake_llm):
    """The built-in summarizer's jobs go to the CPU worker, whatever the `llm` queue holds."""
    fake_llm.latency = 2.0
    llm_workers(1, concurrency=4)
    cpu = Worker(fake_llm.url, name="cpu", queues="default,summaries,integrations")
    if cpu.log_path.exists():
        cpu.log_path.unlink()
    cpu.start()
    try:
        tenant = make_tenant("Mixed")
        backlog = summarize_batch(tenant, documents(tenant, 40))
        wait_until(lambda: fake_llm.in_flight == 4, timeout=30)
        (local,) = documents(tenant, 1, title="Local")
        job = tenant.client().post(f"/api/v1/documents/{local.id}/summarize/", {"provider": "local"}, format="json")
        done = wait_until(
            lambda: Job.unscoped_objects.filter(pk=job.json()["id"], status="succeeded").first(), timeout=10
        )
        assert done.queue == "summaries"
        assert Job.unscoped_objects.filter(batch_id=backlog["id"], status="queued").count() >= 30  # still waiting
        tenant.client().post(f"/api/v1/batches/{backlog['id']}/cancel/")
    finally:
        cpu.stop()
