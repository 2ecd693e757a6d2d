"""Summarize requests (validation, idempotency, broker outage) and the summary API."""

import pytest

from conftest import assert_error_shape, auth_client, make_user
from documents.models import Document
from jobs.models import Job
from summaries.models import Summary
from templates_app.models import Template

pytestmark = pytest.mark.django_db

DOCS = "/api/v1/documents/"
SUMMARIES = "/api/v1/summaries/"
SYSTEM_TLDR = "5b0c7d3e-1f3a-4c8e-9a51-000000000004"


@pytest.fixture
def document(tenant):
    return tenant.client().post(DOCS, {"title": "T", "content": "Some text to summarize."}, format="json").json()


def summarize(client, document_id, **body):
    return client.post(f"{DOCS}{document_id}/summarize/", body, format="json")


class TestSummarizeRequest:
    def test_system_template_and_own_template_accepted(self, tenant, document):
        own = Template.unscoped_objects.create(org=tenant.org, name="Mine", body="{{ document.content }}")
        for template_id in (SYSTEM_TLDR, str(own.id)):
            response = summarize(tenant.client(tenant.member), document["id"], template_id=template_id)
            assert response.status_code == 202, response.content
            job = Job.unscoped_objects.get(pk=response.json()["id"])
            assert job.payload["template_id"] == template_id and job.created_by == tenant.member
            assert job.queue == "summaries" and job.priority == Job.Priority.INTERACTIVE  # the local provider

    def test_other_orgs_template_is_not_found(self, tenant, other_tenant, document):
        theirs = Template.unscoped_objects.create(org=other_tenant.org, name="Theirs", body="{{ document.content }}")
        response = summarize(tenant.client(), document["id"], template_id=str(theirs.id))
        assert_error_shape(response, 400, "not_found", "template_id")
        assert not Job.unscoped_objects.exists()

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"template_id": "not-a-uuid"}, "template_id"),
            ({"template_id": "00000000-0000-0000-0000-000000000000"}, "template_id"),
            ({"provider": "skynet"}, "provider"),
            ({"provider": 5}, "provider"),
            ({"options": {"max_words": 5}}, "options.max_words"),
            ({"options": {"max_words": "many"}}, "options.max_words"),
            ({"options": {"temperature": 9}}, "options.temperature"),
            ({"options": {"evil": True}}, "options.evil"),
            ({"options": {"format": "sonnet"}}, "options.format"),
            ({"options": {"format": None}}, "options.format"),
            ({"options": {"stream": "yes please"}}, "options.stream"),
            ({"options": {"citation_markers": [1]}}, "options.citation_markers"),
            ({"options": "fast"}, "options.non_field_errors"),
            ({"model": "m" * 201}, "model"),
            ({"org": "x"}, "org"),
        ],
    )
    def test_bad_input(self, tenant, document, body, attr):
        assert_error_shape(summarize(tenant.client(), document["id"], **body), 400, attr=attr)
        assert not Job.unscoped_objects.exists()

    def test_unknown_document_404(self, tenant):
        assert_error_shape(summarize(tenant.client(), "00000000-0000-0000-0000-000000000000"), 404)

    def test_idempotency_key_returns_the_same_job(self, tenant, document):
        client = tenant.client()
        first = client.post(f"{DOCS}{document['id']}/summarize/", {}, format="json", HTTP_IDEMPOTENCY_KEY="sum-1")
        second = client.post(f"{DOCS}{document['id']}/summarize/", {}, format="json", HTTP_IDEMPOTENCY_KEY="sum-1")
        assert first.status_code == second.status_code == 202
        assert first.json()["id"] == second.json()["id"] and second["Idempotent-Replayed"] == "true"
        assert Job.unscoped_objects.count() == 1

    def test_broker_down_is_503_and_leaves_no_queued_job(self, tenant, document, broker_down):
        with broker_down():
            response = tenant.client().post(
                f"{DOCS}{document['id']}/summarize/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k"
            )
        assert_error_shape(response, 503, "broker_unavailable")
        (job,) = Job.unscoped_objects.all()
        assert job.status == "failed" and job.error["code"] == "broker_unavailable"
        # the key was not remembered: a retry once the broker is back gets a new, running job
        retry = tenant.client().post(f"{DOCS}{document['id']}/summarize/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert retry.status_code == 202 and retry.json()["id"] != str(job.id)


def make_summary(tenant, document_id, user):
    document = Document.unscoped_objects.get(pk=document_id)
    return Summary.unscoped_objects.create(
        org=tenant.org,
        document=document,
        content="A summary.",
        provider="local",
        template_name="TL;DR",
        source_sha256=document.sha256,
        prompt_sha256="0" * 64,
        created_by=user,
    )


class TestSummaryAPI:
    def test_list_filter_detail_and_stale(self, tenant, document):
        mine = make_summary(tenant, document["id"], tenant.member)
        other_doc = tenant.client().post(DOCS, {"title": "B", "content": "b"}, format="json").json()
        make_summary(tenant, other_doc["id"], tenant.member)
        client = tenant.client(tenant.member)
        rows = client.get(SUMMARIES, {"document": document["id"]}).json()["results"]
        assert [r["id"] for r in rows] == [str(mine.id)] and rows[0]["stale"] is False
        assert len(client.get(SUMMARIES).json()["results"]) == 2
        detail = client.get(f"{SUMMARIES}{mine.id}/").json()
        assert {
            "id",
            "document",
            "template",
            "content",
            "provider",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "status",
            "stale",
            "created_by",
            "created_at",
        } <= set(detail)
        # the document changes: its old summaries are kept and show as stale
        client.patch(f"{DOCS}{document['id']}/", {"content": "Entirely new text."}, format="json")
        assert client.get(f"{SUMMARIES}{mine.id}/").json()["stale"] is True
        doc = client.get(f"{DOCS}{document['id']}/").json()
        assert doc["summaries"][0]["stale"] is True and doc["summary_count"] == 1

    def test_delete_by_creator_or_admin_only(self, tenant, document):
        summary = make_summary(tenant, document["id"], tenant.member)
        assert_error_shape(auth_client(make_user(tenant.org)).delete(f"{SUMMARIES}{summary.id}/"), 403)
        assert tenant.client(tenant.member).delete(f"{SUMMARIES}{summary.id}/").status_code == 204
        second = make_summary(tenant, document["id"], tenant.member)
        assert tenant.client().delete(f"{SUMMARIES}{second.id}/").status_code == 204
        assert not Summary.unscoped_objects.exists()

    def test_read_only_and_bad_filter(self, tenant, document):
        summary = make_summary(tenant, document["id"], tenant.member)
        assert_error_shape(tenant.client().patch(f"{SUMMARIES}{summary.id}/", {"content": "x"}, format="json"), 405)
        assert_error_shape(tenant.client().get(SUMMARIES, {"document": "nope"}), 400, attr="document")

    def test_deleting_the_document_deletes_its_summaries(self, tenant, document):
        make_summary(tenant, document["id"], tenant.member)
        assert tenant.client().delete(f"{DOCS}{document['id']}/").status_code == 204
        assert not Summary.unscoped_objects.exists()
