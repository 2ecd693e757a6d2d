"""The job state machine: guarded transitions, leases, the reaper."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from config.errors import Conflict
from jobs import services
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tenant):
    return Job.unscoped_objects.create(org=tenant.org, kind="summarize", created_by=tenant.member, queue="summaries")


def reload(job):
    return Job.unscoped_objects.get(pk=job.pk)


def test_only_one_delivery_can_start_a_job(job):
    first = services.job_start(job_id=job.pk)
    assert first.status == "running" and first.attempts == 1 and first.lease_token and first.started_at
    assert services.job_start(job_id=job.pk) is None  # duplicate delivery
    assert reload(job).attempts == 1


def test_finished_job_cannot_be_moved_by_late_delivery(job):
    running = services.job_start(job_id=job.pk)
    assert services.job_succeed(job_id=job.pk, lease_token=running.lease_token, result={"ok": 1})
    assert services.job_start(job_id=job.pk) is None
    assert services.job_fail(job_id=job.pk, code="x", detail="late") is None
    assert services.job_set_progress(job_id=job.pk, lease_token=running.lease_token, progress=5) is False
    final = reload(job)
    assert final.status == "succeeded" and final.progress == 100 and final.error is None and final.finished_at


def test_a_stale_attempt_cannot_finish_the_job(job):
    first = services.job_start(job_id=job.pk)
    services.job_retry_later(job_id=job.pk, lease_token=first.lease_token, code="worker_lost", detail="retry")
    second = services.job_start(job_id=job.pk)
    assert second.attempts == 2 and second.lease_token != first.lease_token
    assert services.job_succeed(job_id=job.pk, lease_token=first.lease_token, result={}) is None
    assert services.job_heartbeat(job_id=job.pk, lease_token=first.lease_token) is False
    assert services.job_heartbeat(job_id=job.pk, lease_token=second.lease_token) is True


def test_cancel(job):
    cancelled = services.job_cancel(job=job)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    with pytest.raises(Conflict):
        services.job_cancel(job=reload(job))
    assert services.job_start(job_id=job.pk) is None


def test_cancel_running_stops_heartbeat(job):
    running = services.job_start(job_id=job.pk)
    services.job_cancel(job=reload(job))
    assert services.job_heartbeat(job_id=job.pk, lease_token=running.lease_token) is False


def test_fail_records_code_and_detail(job):
    failed = services.job_fail(job_id=job.pk, code="llm_bad_request", detail="The LLM refused.")
    assert failed.status == "failed" and failed.error == {"code": "llm_bad_request", "detail": "The LLM refused."}


def test_transitions_publish_events_after_commit(job, django_capture_on_commit_callbacks):
    layer = get_channel_layer()  # channels-redis on the real Redis
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"org.{job.org_id}", channel)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        running = services.job_start(job_id=job.pk)
        services.job_set_progress(job_id=job.pk, lease_token=running.lease_token, progress=40)
        services.job_succeed(job_id=job.pk, lease_token=running.lease_token, result={})
    assert len(callbacks) >= 3  # nothing was sent before the commit (the rest: a scheduling round)
    for callback in callbacks:
        callback()

    async def receive_all():
        return [(await asyncio.wait_for(layer.receive(channel), timeout=5))["event"] for _ in range(3)]

    sent = async_to_sync(receive_all)()
    envelopes = [e["envelope"] for e in sent]
    assert [e["type"] for e in envelopes] == ["job.started", "job.progress", "job.succeeded"]
    assert envelopes[1]["data"]["progress"] == 40 and envelopes[2]["data"]["status"] == "succeeded"
    assert all(e["org_id"] == str(job.org_id) for e in envelopes)
    assert all(e["user_id"] == str(job.created_by_id) for e in sent)
    seqs = [e["seq"] for e in sent]
    assert seqs == list(range(seqs[0], seqs[0] + 3))  # stored, numbered without gaps


class TestReaper:
    def test_expired_lease_requeues_while_attempts_remain(self, job, settings):
        settings.JOB_MAX_ATTEMPTS = 2
        services.job_start(job_id=job.pk)
        Job.unscoped_objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert services.job_reap_stale() == {"requeued": 1, "failed": 0, "redispatched": 0}
        requeued = reload(job)
        assert requeued.status == "queued" and requeued.error["code"] == "worker_lost"
        assert requeued.dispatched_at is None and requeued.lease_token == ""  # waits for the scheduler again

    def test_expired_lease_fails_after_the_last_attempt(self, job, settings):
        settings.JOB_MAX_ATTEMPTS = 1
        services.job_start(job_id=job.pk)
        Job.unscoped_objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert services.job_reap_stale()["failed"] == 1
        final = reload(job)
        assert final.status == "failed" and final.error["code"] == "worker_lost"
        assert "stopped responding" in final.error["detail"]

    def test_live_lease_untouched(self, job):
        services.job_start(job_id=job.pk)
        assert services.job_reap_stale() == {"requeued": 0, "failed": 0, "redispatched": 0}
        assert reload(job).status == "running"

    def test_lost_publish_is_redispatched(self, job, settings):
        old = timezone.now() - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_S + 5)
        Job.unscoped_objects.filter(pk=job.pk).update(created_at=old, dispatched_at=old)
        recent = Job.unscoped_objects.create(
            org=job.org, kind="summarize", queue="summaries", dispatched_at=timezone.now()
        )
        assert services.job_reap_stale()["redispatched"] == 1
        assert reload(job).dispatched_at is None  # handed out again by the next round
        assert reload(recent).dispatched_at is not None  # not stuck yet: left alone


@pytest.mark.parametrize(
    "task_path",
    [
        "summaries.tasks.run_summarize_job",
        "summaries.tasks.run_publish_job",
        "integrations.tasks.run_import_job",
    ],
)
def test_database_outage_before_the_claim_sends_the_task_again(job, monkeypatch, task_path):
    """A task whose database is unreachable is redelivered later (growing delay), not
    acknowledged as failed with its job left queued for the reaper."""
    import importlib

    from celery.exceptions import Retry
    from django.db import OperationalError

    module_name, task_name = task_path.rsplit(".", 1)
    task = getattr(importlib.import_module(module_name), task_name)

    def database_down(**_):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "job_start", database_down)
    retries = []

    def record_retry(exc=None, countdown=None, max_retries=None, **_):
        retries.append((type(exc).__name__, countdown, max_retries))
        return Retry()

    monkeypatch.setattr(task, "retry", record_retry)
    with pytest.raises(Retry):
        task(org_id=str(job.org_id), job_id=str(job.pk))
    assert retries == [("OperationalError", 5.0, 8)]
    assert reload(job).status == Job.Status.QUEUED  # untouched: the redelivery will claim it


def test_other_errors_before_the_claim_are_not_retried(job, monkeypatch):
    from summaries.tasks import run_summarize_job

    def broken(**_):
        raise ValueError("a bug")

    monkeypatch.setattr(services, "job_start", broken)
    monkeypatch.setattr(run_summarize_job, "retry", lambda **_: pytest.fail("retried a bug"))
    with pytest.raises(ValueError):
        run_summarize_job(org_id=str(job.org_id), job_id=str(job.pk))


def test_job_output_matches_the_documented_serializer(job, tenant):
    """Events and lists build the job's JSON with job_output(); it must equal what the
    documented JobOutputSerializer gives, in every state."""
    import json

    from jobs.serializers import JobOutputSerializer, job_output

    def same(j):
        expected = json.loads(json.dumps(JobOutputSerializer(j).data))
        assert json.loads(json.dumps(job_output(j))) == expected

    same(job)  # queued, fresh from create()
    same(reload(job))
    started = services.job_start(job_id=job.pk)
    same(started)
    failed = services.job_fail(job_id=job.pk, lease_token=started.lease_token, code="llm_timeout", detail="slow")
    same(failed)
    Job.unscoped_objects.filter(pk=job.pk).update(error={"detail": "no code"}, result={"calls": 2, "x": [1, None]})
    same(reload(job))
    Job.unscoped_objects.filter(pk=job.pk).update(created_by=None, error={})
    same(reload(job))
