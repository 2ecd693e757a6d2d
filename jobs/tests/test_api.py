"""Job API: own jobs, admins' ?all=true, filters, cancel."""

import pytest

from conftest import assert_error_shape
from jobs.models import Job

pytestmark = pytest.mark.django_db

URL = "/api/v1/jobs/"


@pytest.fixture
def jobs(tenant):
    def make(user, **fields):
        return Job.unscoped_objects.create(org=tenant.org, created_by=user, **{"kind": "summarize", **fields})

    return {
        "member_queued": make(tenant.member),
        "member_failed": make(tenant.member, status="failed", error={"code": "llm_timeout", "detail": "slow"}),
        "admin_job": make(tenant.admin, kind="import"),
    }


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_member_sees_own_jobs_only(tenant, jobs):
    client = tenant.client(tenant.member)
    assert ids(client.get(URL)) == {str(jobs["member_queued"].id), str(jobs["member_failed"].id)}
    assert_error_shape(client.get(f"{URL}{jobs['admin_job'].id}/"), 404)
    assert_error_shape(client.get(URL, {"all": "true"}), 403)


def test_admin_all(tenant, jobs):
    client = tenant.client()
    assert ids(client.get(URL)) == {str(jobs["admin_job"].id)}
    assert len(ids(client.get(URL, {"all": "true"}))) == 3
    assert client.get(f"{URL}{jobs['member_queued'].id}/").status_code == 200


def test_filters_and_shape(tenant, jobs):
    client = tenant.client(tenant.member)
    assert ids(client.get(URL, {"status": "failed"})) == {str(jobs["member_failed"].id)}
    assert ids(tenant.client().get(URL, {"all": "true", "kind": "import"})) == {str(jobs["admin_job"].id)}
    row = client.get(f"{URL}{jobs['member_failed'].id}/").json()
    assert set(row) == {
        "id",
        "kind",
        "status",
        "progress",
        "document",
        "summary",
        "batch",
        "result",
        "error",
        "attempts",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    }
    assert row["error"] == {"code": "llm_timeout", "detail": "slow"}


@pytest.mark.parametrize(
    "query, attr",
    [({"status": "done"}, "status"), ({"kind": "x"}, "kind"), ({"all": "maybe"}, "all"), ({"batch": "x"}, "batch")],
)
def test_bad_query(tenant, jobs, query, attr):
    assert_error_shape(tenant.client().get(URL, query), 400, attr=attr)


def test_cancel_202_then_409(tenant, jobs):
    client = tenant.client(tenant.member)
    url = f"{URL}{jobs['member_queued'].id}/cancel/"
    response = client.post(url)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert_error_shape(client.post(url), 409, "job_finished")
    assert_error_shape(client.post(f"{URL}{jobs['member_failed'].id}/cancel/"), 409)


def test_member_cannot_cancel_others_jobs(tenant, jobs):
    assert_error_shape(tenant.client(tenant.member).post(f"{URL}{jobs['admin_job'].id}/cancel/"), 404)
    assert tenant.client().post(f"{URL}{jobs['member_queued'].id}/cancel/").status_code == 202


def test_jobs_are_read_only(tenant, jobs):
    url = f"{URL}{jobs['member_queued'].id}/"
    assert_error_shape(tenant.client().patch(url, {"status": "succeeded"}, format="json"), 405)
    assert_error_shape(tenant.client().delete(url), 405)
    assert_error_shape(tenant.client().post(URL, {"kind": "summarize"}, format="json"), 405)
