"""Batches: the /api/v1/batches/ API, cancel, completion and throttled progress events."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope

from conftest import assert_error_shape
from documents.models import Document
from jobs import batches, services
from jobs.models import Batch, Job
from realtime.models import StoredEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/batches/"


def make_batch(tenant, user, n=3) -> Batch:
    documents = [
        Document.unscoped_objects.create(org=tenant.org, title=f"D{i}", content="Text.", created_by=user)
        for i in range(n)
    ]
    with scope(org=tenant.org.id):
        return batches.batch_create(
            org=tenant.org,
            created_by=user,
            kind="summarize",
            payload={"template_id": "t", "provider": "local", "model": None, "options": {}},
            selection={"document_ids": [str(d.id) for d in documents]},
            queue="summaries",
            document_ids=[d.id for d in documents],
        )


def event_types(tenant):
    return list(StoredEvent.unscoped_objects.filter(org=tenant.org).order_by("seq").values_list("type", flat=True))


def finish(job, status="succeeded"):
    running = services.job_start(job_id=job.pk)
    if status == "succeeded":
        services.job_succeed(job_id=job.pk, lease_token=running.lease_token, result={})
    else:
        services.job_fail(job_id=job.pk, lease_token=running.lease_token, code="llm_timeout", detail="slow")


class TestAPI:
    def test_members_see_their_own_admins_all(self, tenant):
        mine, theirs = make_batch(tenant, tenant.member), make_batch(tenant, tenant.admin)
        member, admin = tenant.client(tenant.member), tenant.client()
        assert [b["id"] for b in member.get(URL).json()["results"]] == [str(mine.id)]
        assert member.get(f"{URL}{theirs.id}/").status_code == 404
        assert_error_shape(member.get(URL, {"all": "true"}), 403)
        assert {b["id"] for b in admin.get(URL, {"all": "true"}).json()["results"]} == {str(mine.id), str(theirs.id)}
        assert [b["id"] for b in admin.get(URL).json()["results"]] == [str(theirs.id)]
        assert admin.get(f"{URL}{mine.id}/").status_code == 200

    def test_detail_counts_progress_and_jobs(self, tenant):
        batch = make_batch(tenant, tenant.member, 4)
        jobs = list(Job.unscoped_objects.filter(batch=batch).order_by("created_at"))
        finish(jobs[0])
        finish(jobs[1], "failed")
        services.job_start(job_id=jobs[2].pk)
        detail = tenant.client(tenant.member).get(f"{URL}{batch.id}/").json()
        assert detail["counts"] == {"queued": 1, "running": 1, "succeeded": 1, "failed": 1, "cancelled": 0}
        assert detail["progress"] == 50 and detail["status"] == "running" and detail["total"] == 4
        assert detail["jobs"] == [str(j.id) for j in jobs]
        listed = tenant.client(tenant.member).get(URL).json()["results"][0]
        assert listed["counts"] == detail["counts"] and "jobs" not in listed
        by_batch = tenant.client(tenant.member).get("/api/v1/jobs/", {"batch": str(batch.id)}).json()["results"]
        assert {j["id"] for j in by_batch} == set(detail["jobs"]) and {j["batch"] for j in by_batch} == {str(batch.id)}

    def test_status_filter_and_bad_queries(self, tenant):
        running, cancelled = make_batch(tenant, tenant.admin), make_batch(tenant, tenant.admin)
        batches.batch_cancel(batch=cancelled)
        client = tenant.client()
        assert [b["id"] for b in client.get(URL, {"status": "cancelled"}).json()["results"]] == [str(cancelled.id)]
        assert [b["id"] for b in client.get(URL, {"status": "running"}).json()["results"]] == [str(running.id)]
        assert_error_shape(client.get(URL, {"status": "done"}), 400, attr="status")
        assert_error_shape(client.get(URL, {"all": "maybe"}), 400, attr="all")
        assert_error_shape(client.get(f"{URL}not-a-uuid/"), 404)

    def test_read_only(self, tenant):
        batch = make_batch(tenant, tenant.admin)
        client = tenant.client()
        assert_error_shape(client.post(URL, {}, format="json"), 405)
        assert_error_shape(client.delete(f"{URL}{batch.id}/"), 405)
        assert_error_shape(client.patch(f"{URL}{batch.id}/", {"status": "completed"}, format="json"), 405)

    def test_authentication_required(self, anon, tenant):
        batch = make_batch(tenant, tenant.admin)
        assert_error_shape(anon.get(URL), 401)
        assert_error_shape(anon.post(f"{URL}{batch.id}/cancel/"), 401)


class TestCancel:
    def test_cancel_stops_waiting_and_running_jobs(self, tenant, django_capture_on_commit_callbacks):
        batch = make_batch(tenant, tenant.member, 3)
        first = Job.unscoped_objects.filter(batch=batch).order_by("created_at").first()
        running = services.job_start(job_id=first.pk)
        with django_capture_on_commit_callbacks(execute=True):
            response = tenant.client(tenant.member).post(f"{URL}{batch.id}/cancel/")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "cancelled" and body["counts"]["cancelled"] == 3 and body["finished_at"]
        assert services.job_heartbeat(job_id=first.pk, lease_token=running.lease_token) is False  # the worker stops
        assert event_types(tenant)[-2:] == ["job.cancelled", "batch.cancelled"]  # job events only for running ones
        again = tenant.client(tenant.member).post(f"{URL}{batch.id}/cancel/")
        assert_error_shape(again, 409, "batch_finished")

    def test_a_member_cannot_cancel_someone_elses_batch(self, tenant):
        batch = make_batch(tenant, tenant.admin)
        assert_error_shape(tenant.client(tenant.member).post(f"{URL}{batch.id}/cancel/"), 404)
        assert Batch.unscoped_objects.get(pk=batch.pk).status == "running"
        assert tenant.client().post(f"{URL}{batch.id}/cancel/").status_code == 202  # an admin may


class TestLifecycle:
    def test_completes_when_every_job_has_finished(self, tenant, django_capture_on_commit_callbacks):
        batch = make_batch(tenant, tenant.member, 2)
        first, second = Job.unscoped_objects.filter(batch=batch).order_by("created_at")
        with django_capture_on_commit_callbacks(execute=True):
            finish(first)
        assert Batch.unscoped_objects.get(pk=batch.pk).status == "running"
        with django_capture_on_commit_callbacks(execute=True):
            finish(second, "failed")
        done = Batch.unscoped_objects.get(pk=batch.pk)
        assert done.status == "completed" and done.finished_at
        completed = StoredEvent.unscoped_objects.filter(org=tenant.org, type="batch.completed").get()
        assert completed.data["counts"]["succeeded"] == 1 and completed.data["counts"]["failed"] == 1
        assert completed.data["progress"] == 100 and completed.user_id == tenant.member.id

    def test_progress_is_throttled_and_the_rest_follows_on_the_tick(
        self, tenant, settings, django_capture_on_commit_callbacks
    ):
        settings.BATCH_PROGRESS_INTERVAL_S = 60
        batch = make_batch(tenant, tenant.member, 4)
        jobs = list(Job.unscoped_objects.filter(batch=batch).order_by("created_at"))
        for job in jobs[:3]:
            with django_capture_on_commit_callbacks(execute=True):
                finish(job)
        progress = StoredEvent.unscoped_objects.filter(org=tenant.org, type="batch.progress")
        assert [event.data["counts"]["succeeded"] for event in progress] == [1]  # the others held back
        assert Batch.unscoped_objects.get(pk=batch.pk).progress_pending
        assert batches.batch_flush_progress() == 0  # not yet: the interval has not passed
        Batch.unscoped_objects.filter(pk=batch.pk).update(progress_sent_at=timezone.now() - timedelta(seconds=61))
        with django_capture_on_commit_callbacks(execute=True):
            assert batches.batch_flush_progress() == 1
        assert [event.data["counts"]["succeeded"] for event in progress.order_by("seq")] == [1, 3]
        assert not Batch.unscoped_objects.get(pk=batch.pk).progress_pending
