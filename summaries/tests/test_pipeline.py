"""End to end through a real Celery worker process, real Redis and PostgreSQL.

HTTP call → job row → broker → worker → LLM (local, or the loopback
OpenAI-compatible server) → summary row; plus retries, permanent failures,
duplicate deliveries, cancellation mid-way, a worker killed mid-task.
"""

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from config.tests.process_fixtures import wait_until
from documents.models import Document
from jobs.models import Job
from jobs.runtime import tick
from jobs.services import job_reap_stale
from summaries.models import Summary
from summaries.tests.fake_llm import Reply

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = "/api/v1/documents/"

ARTICLE = (
    "The city council approved a new budget for public libraries on Monday. The budget adds funding for longer "
    "opening hours and new digital services. Library visits have risen every year since the renovation. Council "
    "members said the libraries are central to education in the city. The weather on Monday was cloudy."
)


def long_text(paragraphs: int = 12) -> str:
    return "\n\n".join(
        f"Section {i}. " + " ".join(f"Budget line {i}-{j} funds library services and staff." for j in range(8))
        for i in range(paragraphs)
    )


def make_document(client, content=ARTICLE, title="Library budget") -> dict:
    response = client.post(DOCS, {"title": title, "content": content}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def summarize(client, document_id, **body):
    return client.post(f"{DOCS}{document_id}/summarize/", body, format="json")


def worker_logged(worker, event: str, needle: str) -> bool:
    """The worker logs JSON lines; has one with this event mentioned `needle`?"""
    return any(event in line and needle in line for line in worker.log_path.read_text().splitlines())


def job_row(job_id) -> Job:
    return Job.unscoped_objects.get(pk=job_id)


def wait_for_status(job_id, *statuses, timeout=30) -> Job:
    return wait_until(lambda: (j := job_row(job_id)).status in statuses and j, timeout=timeout)


def test_local_provider_end_to_end(celery_worker, tenant):
    client = tenant.client(tenant.member)
    document = make_document(client)
    response = summarize(client, document["id"], options={"max_words": 30})
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "summarize" and job["document"] == document["id"]

    done = wait_for_status(job["id"], "succeeded", "failed")
    assert done.status == "succeeded", done.error
    assert done.progress == 100 and done.attempts == 1 and done.summary_id

    summary = Summary.unscoped_objects.get(pk=done.summary_id)
    assert summary.org == tenant.org and summary.created_by == tenant.member
    assert summary.provider == "local" and summary.template_name == "Executive summary"
    assert "budget" in summary.content.lower() and "weather" not in summary.content.lower()
    assert summary.strategy == "single" and summary.chunk_count == 1 and not summary.truncated
    assert len(summary.prompt_sha256) == 64 and summary.source_sha256 == document["sha256"]

    detail = client.get(f"{DOCS}{document['id']}/").json()
    assert detail["summary_count"] == 1 and detail["summaries"][0]["id"] == str(summary.id)
    assert detail["latest_summary"]["stale"] is False
    api_job = client.get(f"/api/v1/jobs/{job['id']}/").json()
    assert api_job["status"] == "succeeded" and api_job["summary"] == str(summary.id)


def test_openai_compatible_server_through_the_worker(celery_worker, fake_llm, tenant):
    client = tenant.client()
    document = make_document(client)
    job = summarize(client, document["id"], provider="openai", model="fake-large").json()
    done = wait_for_status(job["id"], "succeeded", "failed")
    assert done.status == "succeeded", done.error
    summary = Summary.unscoped_objects.get(pk=done.summary_id)
    assert summary.provider == "openai" and summary.model == "fake-large"
    assert summary.content.startswith("Summary:") and summary.prompt_tokens > 0
    (request,) = fake_llm.requests
    assert "Library budget" in request["messages"][-1]["content"] and "Acme" in request["messages"][-1]["content"]


def test_long_document_map_reduce_through_the_worker(celery_worker, fake_llm, tenant):
    client = tenant.client()
    document = make_document(client, content=long_text())
    job = summarize(client, document["id"], provider="openai").json()
    done = wait_for_status(job["id"], "succeeded", "failed")
    assert done.status == "succeeded", done.error
    summary = Summary.unscoped_objects.get(pk=done.summary_id)
    assert summary.strategy == "map_reduce" and summary.chunk_count > 1
    assert len(fake_llm.requests) == summary.chunk_count + 1
    assert done.result["chunks"] == summary.chunk_count


def test_transient_llm_errors_retry_then_succeed(celery_worker, fake_llm, tenant):
    fake_llm.then(Reply(status=503, body=b"busy", headers={"Retry-After": "0"}))
    client = tenant.client()
    job = summarize(client, make_document(client)["id"], provider="openai").json()
    done = wait_for_status(job["id"], "succeeded", "failed")
    # the call is retried in place, from the job's budget (LLM_MAX_RETRIES=1 in the worker)
    assert done.status == "succeeded", done.error
    assert done.attempts == 1 and len(fake_llm.requests) == 2


def test_a_failing_provider_sees_a_few_calls_per_job(celery_worker, fake_llm, tenant):
    """One retry budget per job: not LLM_MAX_RETRIES calls per attempt times JOB_MAX_ATTEMPTS."""
    fake_llm.then(*[Reply(status=500, body=b"down")] * 20)
    client = tenant.client()
    job = summarize(client, make_document(client)["id"], provider="openai").json()
    done = wait_for_status(job["id"], "failed", "succeeded")
    assert done.error["code"] == "llm_unavailable" and "Gave up after 1 retry" in done.error["detail"]
    assert done.attempts == 1 and len(fake_llm.requests) == 2  # LLM_MAX_RETRIES + 1


def test_permanent_llm_error_fails_the_job_clearly(celery_worker, fake_llm, tenant):
    fake_llm.then(Reply(status=400, body=b'{"error": {"message": "model not found"}}'))
    client = tenant.client()
    job = summarize(client, make_document(client)["id"], provider="openai").json()
    done = wait_for_status(job["id"], "failed", "succeeded")
    assert done.status == "failed" and done.attempts == 1
    assert done.error["code"] == "llm_bad_request" and "model not found" in done.error["detail"]
    api = client.get(f"/api/v1/jobs/{job['id']}/").json()
    assert api["error"]["code"] == "llm_bad_request" and "Traceback" not in api["error"]["detail"]
    assert not Summary.unscoped_objects.exists()


def test_duplicate_deliveries_write_one_summary(celery_worker, tenant):
    client = tenant.client()
    job = summarize(client, make_document(client)["id"]).json()
    for _ in range(3):  # the same task delivered again (at-least-once)
        celery_app.send_task(
            "summaries.run_summarize_job", kwargs={"org_id": str(tenant.org.id), "job_id": job["id"]}, queue="summaries"
        )
    done = wait_for_status(job["id"], "succeeded", "failed")
    # The solo worker takes the queue in order: once this marker task ran, so did every duplicate.
    marker = celery_app.send_task("jobs.reap_stale_jobs", queue="summaries")
    wait_until(lambda: worker_logged(celery_worker, "task finished", marker.id), timeout=30)
    assert Summary.unscoped_objects.filter(job_id=job["id"]).count() == 1
    assert job_row(job["id"]).attempts == done.attempts == 1


def test_cancel_a_running_multi_chunk_job(celery_worker, fake_llm, tenant, settings):
    fake_llm.then(Reply(), *[Reply(hang=True)] * 20)  # after the first chunk every call hangs until released
    client = tenant.client()
    document = make_document(client, content=long_text(20))
    job = summarize(client, document["id"], provider="openai").json()
    # the map steps run LLM_MAP_CONCURRENCY at a time: the first answers, the next ones hang
    assert fake_llm.wait_for_requests(1 + settings.LLM_MAP_CONCURRENCY)
    assert job_row(job["id"]).status == "running"
    response = client.post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    sent = len(fake_llm.requests)
    fake_llm.release.set()
    # the worker notices as the calls in flight come back (released, or timed out on a slow
    # machine) and starts no other
    wait_until(lambda: worker_logged(celery_worker, "task finished", job["id"]), timeout=30)
    assert len(fake_llm.requests) == sent
    final = job_row(job["id"])
    assert final.status == "cancelled" and final.summary_id is None
    assert not Summary.unscoped_objects.exists()


def test_worker_killed_mid_task_is_resolved_by_the_reaper(celery_worker, fake_llm, tenant, settings):
    settings.JOB_MAX_ATTEMPTS = 2
    fake_llm.then(Reply(hang=True))
    client = tenant.client()
    job = summarize(client, make_document(client)["id"], provider="openai").json()
    assert fake_llm.wait_for_requests(1)
    celery_worker.kill()  # SIGKILL mid-call: no chance to clean up
    fake_llm.release.set()
    stuck = job_row(job["id"])
    assert stuck.status == "running" and stuck.attempts == 1
    wait_until(lambda: job_row(job["id"]).lease_expires_at < timezone.now(), timeout=30)
    assert job_reap_stale()["requeued"] == 1
    assert job_row(job["id"]).status == "queued"
    celery_worker.start()
    # The dead worker's call was the model's first (its probe): no call starts until it has
    # been given up on after LLM_TIMEOUT_S, and then at the next tick. This test plays beat.
    settings.LLM_TIMEOUT_S = 5  # the worker's

    def finished():
        tick()
        row = job_row(job["id"])
        return row if row.status in ("succeeded", "failed") else None

    done = wait_until(finished, timeout=30, interval=0.5)
    assert done.status == "succeeded" and done.attempts == 2
    assert Summary.unscoped_objects.filter(job_id=job["id"]).count() == 1


def test_document_deleted_while_queued_cancels_its_job(tenant, celery_worker):
    client = tenant.client()
    document = make_document(client)
    celery_worker.stop()  # keep the job queued
    try:
        job = summarize(client, document["id"]).json()
        assert client.delete(f"{DOCS}{document['id']}/").status_code == 204
        final = job_row(job["id"])
        assert final.status == "cancelled" and final.error["code"] == "document_deleted"
        assert not Document.unscoped_objects.exists()
    finally:
        celery_worker.start()
