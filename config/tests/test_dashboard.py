"""The admin's name and dashboard (config/admin.py, config/dashboard.py): the organization's own
figures only, drawn as SVG with every label escaped."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config import dashboard
from conftest import PASSWORD, admin_client, make_tenant
from documents.models import Document
from integrations.models import Integration
from jobs.models import Job
from summaries.models import BudgetCounter, Summary, UsageDay

pytestmark = pytest.mark.django_db


def document(tenant, source="manual", title="Report"):
    content = f"{title}: revenue grew."
    return Document.unscoped_objects.create(
        org=tenant.org,
        title=title,
        source=source,
        content=content,
        char_count=len(content),
        sha256=hashlib.sha256(content.encode()).hexdigest(),
        created_by=tenant.admin,
    )


def job(tenant, status="succeeded", *, days_ago=0, error=None, result=None):
    row = Job.unscoped_objects.create(
        org=tenant.org, kind="summarize", status=status, error=error, result=result or {}, created_by=tenant.admin
    )
    if days_ago:
        Job.unscoped_objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return row


def summary(tenant, doc, *, provider="openai", prompt=100, completion=20, calls=None):
    """A summary, its job and its calls (UsageDay: what the metering adds up)."""
    made = job(tenant, result={"calls": calls} if calls is not None else None)
    used(tenant, provider, prompt, completion, calls or 1)
    return Summary.unscoped_objects.create(
        org=tenant.org,
        document=doc,
        job=made,
        content="Revenue grew.",
        provider=provider,
        prompt_tokens=prompt,
        completion_tokens=completion,
        source_sha256=doc.sha256,
        prompt_sha256="0" * 64,
        created_by=tenant.admin,
    )


def used(tenant, provider, prompt, completion, calls, *, failed=0, user=None):
    row, _ = UsageDay.unscoped_objects.get_or_create(
        org=tenant.org,
        day=timezone.localdate(),
        user_key=str((user or tenant.admin).pk),
        provider=provider,
        model="m",
        defaults={"user": user or tenant.admin},
    )
    UsageDay.unscoped_objects.filter(pk=row.pk).update(
        calls=F("calls") + calls,
        failed_calls=F("failed_calls") + failed,
        prompt_tokens=F("prompt_tokens") + prompt,
        completion_tokens=F("completion_tokens") + completion,
    )


@pytest.fixture
def acme():
    tenant = make_tenant("Acme")
    manual, upload = document(tenant), document(tenant, "upload", "Scan")
    document(tenant, "url", "Page")
    document(tenant, "upload", "Second scan")
    job(tenant, "failed", error={"code": "llm_timeout", "detail": "The LLM did not answer in time."})
    job(tenant, "failed", error={"code": "llm_timeout", "detail": "..."}, days_ago=2)
    job(tenant, "failed", error={"code": "document_failed", "detail": "..."})
    job(tenant, "failed", error={"code": "llm_timeout", "detail": "..."}, days_ago=30)  # too old to count
    job(tenant, "queued")
    summary(tenant, manual, calls=3)
    summary(tenant, upload, prompt=50, completion=10, calls=1)
    summary(tenant, upload, provider="local", prompt=0, completion=0, calls=1)
    Integration.unscoped_objects.create(
        org=tenant.org,
        provider="google_drive",
        name="Team <b>Drive</b>",
        status="needs_reauth",
        status_detail="refused",
    )
    Integration.unscoped_objects.create(org=tenant.org, provider="slack", name="Fine Slack", status="active")
    return tenant


@pytest.fixture
def globex():
    tenant = make_tenant("Globex")
    doc = document(tenant, "url", "Globex secret plan")
    job(tenant, "failed", error={"code": "globex_only_code", "detail": "..."})
    summary(tenant, doc, provider="anthropic", prompt=9999, completion=1, calls=7)
    Integration.unscoped_objects.create(org=tenant.org, provider="notion", name="Globex Notion", status="expired")
    return tenant


def test_figures_are_the_organization_s_own(acme, globex):
    figures = dashboard.figures(acme.org.id)
    assert figures.documents_by_source == {"manual": 1, "upload": 2, "url": 1}
    # three summaries' jobs + five others, all today but one two days ago (and one too old)
    assert figures.job_totals == {"failed": 3, "queued": 1, "succeeded": 3}
    assert figures.jobs_by_day["failed"][-1] == 2 and figures.jobs_by_day["failed"][-3] == 1
    assert figures.failures == [("llm_timeout", 2), ("document_failed", 1)]
    assert dict(figures.usage_totals) == {"openai": (180, 4), "local": (0, 1)}
    assert [row["name"] for row in figures.integrations] == ["Team <b>Drive</b>"]


def test_a_superuser_sees_every_organization(acme, globex):
    figures = dashboard.figures(None)
    assert figures.documents_by_source == {"manual": 1, "upload": 2, "url": 2}
    assert dict(figures.usage_totals)["anthropic"] == (10000, 7)
    assert {row["name"] for row in figures.integrations} == {"Team <b>Drive</b>", "Globex Notion"}


def test_failed_calls_count_as_calls(acme):
    used(acme, "mistral", 0, 0, 2, failed=2)
    assert dict(dashboard.figures(acme.org.id).usage_totals)["mistral"] == (0, 2)


def test_the_month_s_budget_is_shown_against_what_is_spent(acme):
    type(acme.org).objects.filter(pk=acme.org.pk).update(monthly_token_budget=200)
    BudgetCounter.unscoped_objects.create(org=acme.org, month=timezone.localdate().replace(day=1), tokens=180)
    html = admin_client(acme.admin).get("/admin/").content.decode()
    assert 'data-budget="tokens">' in html and "Monthly token budget: 180 of 200 (90%)" in html
    assert "precis-budget-high" in html


def test_the_index_is_the_organization_s_dashboard(acme, globex):
    response = admin_client(acme.admin).get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Dashboard | Precis</title>" in html
    assert "Precis administration · Acme" in html
    assert "Django administration" not in html
    for section in ("Summaries", "Templates", "Jobs"):
        assert f">{section}<" in html, section
    assert "Summarys" not in html and "Templates_App" not in html
    assert html.count('<svg class="precis-chart"') == 5
    assert 'data-source="upload">2<' in html and 'data-code="llm_timeout">2<' in html
    assert 'data-tokens="openai">180<' in html and 'data-calls="openai">4<' in html
    # escaped everywhere, in the SVG titles as in the list
    assert "Team &lt;b&gt;Drive&lt;/b&gt;" in html and "<b>Drive</b>" not in html
    assert "needs re-authorization" in html.lower()
    for foreign in ("Globex", "globex_only_code", "anthropic", "9999", "10000"):
        assert foreign not in html, foreign


def test_an_empty_organization_gets_an_empty_dashboard(db):
    tenant = make_tenant("Empty")
    html = admin_client(tenant.admin).get("/admin/").content.decode()
    assert "No documents yet." in html and "No LLM calls this month." in html
    assert "All integrations are working." in html


def test_no_dashboard_without_the_admin_role(acme):
    response = admin_client(acme.member).get("/admin/", follow=True)
    assert response.redirect_chain and "/admin/login/" in response.redirect_chain[-1][0]
    assert "precis-dashboard" not in response.content.decode()


def test_a_superuser_s_dashboard_is_over_every_organization(acme, globex):
    root = User.objects.create_superuser(email="root@example.test", password=PASSWORD)
    html = admin_client(root).get("/admin/").content.decode()
    assert "How every organization uses Precis" in html
    assert 'data-tokens="anthropic">10000<' in html


def test_the_figures_are_the_api_s(acme, globex):
    figures = dashboard.figures(acme.org.id)
    client = acme.client()
    documents = client.get("/api/v1/documents/").json()
    assert documents["next"] is None and len(documents["results"]) == figures.total_documents
    for status, count in figures.job_totals.items():
        listed = client.get("/api/v1/jobs/", {"all": "true", "status": status}).json()
        recent = [j for j in listed["results"] if j["created_at"] >= figures.days[0].isoformat()]
        assert len(recent) == count, status
    usage = client.get("/api/v1/org/usage/", {"group_by": "provider"}).json()["results"]
    assert {row["provider"]: (row["total_tokens"], row["calls"]) for row in usage} == dict(figures.usage_totals)
