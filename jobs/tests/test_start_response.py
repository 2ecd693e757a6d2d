"""Starting a job over the API when the database goes away right after the job's commit
(jobs.views.job_start_response): the job exists and runs, so the answer is 202, a retry with
the Idempotency-Key replays it, and the job.queued event is in the store for replay.

The fault is real: the request's PostgreSQL session is terminated from a second connection at
the chosen moment, so every later query of the request fails as after a failover.
"""

import psycopg
import pytest
from django.db import connection, transaction

from config.celery import app as celery_app
from config.tests.process_fixtures import wait_until
from jobs import capacity, services
from jobs.models import Job
from jobs.runtime import tick
from realtime import events
from realtime.models import StoredEvent
from summaries.models import Summary

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "retry-me-1"


def terminate_this_session() -> None:
    """End this thread's PostgreSQL session from another connection, and wait until it is gone."""
    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as other:
        assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


def summarize(client, document_id):
    return client.post(f"/api/v1/documents/{document_id}/summarize/", {}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)


def make_document(client) -> str:
    response = client.post(
        "/api/v1/documents/", {"title": "Budget", "content": "Revenue grew. Costs fell. It rained."}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def queued_events(job_id) -> list[StoredEvent]:
    return list(StoredEvent.unscoped_objects.filter(type="job.queued", data__id=job_id))


def assert_accepted_once(client, document_id, first) -> str:
    """202 with the job; the retry replays it; one job; its job.queued event stored."""
    assert first.status_code == 202, first.content
    job_id = first.json()["id"]
    retry = summarize(client, document_id)
    assert retry.status_code == 202, retry.content
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    assert [str(pk) for pk in Job.unscoped_objects.values_list("id", flat=True)] == [job_id]
    assert len(queued_events(job_id)) == 1
    return job_id


def finished(job_id) -> Job:
    return wait_until(lambda: (job := Job.unscoped_objects.get(pk=job_id)).status in Job.FINISHED and job)


def test_the_database_lost_right_after_the_task_is_sent(celery_worker, tenant, monkeypatch):
    client = tenant.client()
    document_id = make_document(client)
    send_task = celery_app.send_task

    def send_then_lose_the_database(*args, **kwargs):
        result = send_task(*args, **kwargs)
        terminate_this_session()
        return result

    monkeypatch.setattr(celery_app, "send_task", send_then_lose_the_database)
    first = summarize(client, document_id)
    monkeypatch.setattr(celery_app, "send_task", send_task)
    connection.close()  # what the server does after a request whose connection broke

    job_id = assert_accepted_once(client, document_id, first)
    done = finished(job_id)
    assert done.status == "succeeded", done.error
    assert done.attempts == 1 and Summary.unscoped_objects.filter(job_id=job_id).count() == 1


def test_the_database_lost_during_the_round_leaves_the_job_to_the_next(celery_worker, tenant, monkeypatch):
    client = tenant.client()
    document_id = make_document(client)
    slots = capacity.capacity

    def read_then_lose_the_database(queues):
        free = slots(queues)
        terminate_this_session()  # the round's next statement fails: nothing is handed over
        return free

    monkeypatch.setattr(capacity, "capacity", read_then_lose_the_database)
    first = summarize(client, document_id)
    monkeypatch.setattr(capacity, "capacity", slots)
    connection.close()

    job_id = assert_accepted_once(client, document_id, first)
    waiting = Job.unscoped_objects.get(pk=job_id)
    assert waiting.status == "queued" and waiting.dispatched_at is None
    tick()  # beat's next tick hands it out
    done = finished(job_id)
    assert done.status == "succeeded", done.error


def test_a_job_s_event_is_stored_with_it_or_not_at_all(tenant):
    """Inside the job's transaction the event is stored at once: it commits, or rolls back, with the job."""
    with transaction.atomic(), events.stored_in_transaction():
        job = services.job_create(org=tenant.org, kind="import", created_by=tenant.admin, payload={}, queue="default")
        assert len(queued_events(str(job.pk))) == 1  # before the commit
    assert len(queued_events(str(job.pk))) == 1

    with pytest.raises(RuntimeError), transaction.atomic(), events.stored_in_transaction():
        lost = services.job_create(org=tenant.org, kind="import", created_by=tenant.admin, payload={}, queue="default")
        raise RuntimeError("rolled back")
    assert not Job.unscoped_objects.filter(pk=lost.pk).exists() and not queued_events(str(lost.pk))
    seqs = list(StoredEvent.unscoped_objects.filter(org=tenant.org).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # the rolled-back number was not taken
