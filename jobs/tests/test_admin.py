"""Job, summary and template admin: tenant-scoped, jobs read-only with a cancel action."""

import pytest
from django.test import Client

from conftest import PASSWORD
from jobs.models import Job

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_jobs_scoped_read_only_and_cancellable(tenant, other_tenant):
    mine = Job.unscoped_objects.create(org=tenant.org, kind="summarize", created_by=tenant.member)
    theirs = Job.unscoped_objects.create(org=other_tenant.org, kind="summarize", created_by=other_tenant.member)
    client = login(tenant.admin)
    page = client.get("/admin/jobs/job/").content.decode()
    assert str(mine.id) in page and str(theirs.id) not in page
    assert client.get(f"/admin/jobs/job/{theirs.id}/change/").status_code == 302
    assert client.get("/admin/jobs/job/add/").status_code == 403
    client.post(f"/admin/jobs/job/{mine.id}/change/", {"status": "succeeded"})
    assert Job.unscoped_objects.get(pk=mine.pk).status == "queued"
    client.post(
        "/admin/jobs/job/",
        {"action": "cancel_jobs", "_selected_action": [str(mine.id), str(theirs.id)]},
    )
    assert Job.unscoped_objects.get(pk=mine.pk).status == "cancelled"
    assert Job.unscoped_objects.get(pk=theirs.pk).status == "queued"


def test_summary_and_template_admin_scoped(tenant, other_tenant):
    from templates_app.models import Template

    Template.unscoped_objects.create(org=tenant.org, name="Ours", body="{{ today }}")
    Template.unscoped_objects.create(org=other_tenant.org, name="Theirs", body="{{ today }}")
    client = login(tenant.admin)
    page = client.get("/admin/templates_app/template/").content
    assert b"Ours" in page and b"Theirs" not in page
    assert client.get("/admin/summaries/summary/").status_code == 200
    response = client.post("/admin/templates_app/template/add/", {"name": "Bad", "body": "{{ x.__class__ }}"})
    assert response.status_code == 200 and b"Malformed placeholder" in response.content
    assert not Template.unscoped_objects.filter(name="Bad").exists()
