"""POST /api/v1/documents/summarize/: a batch from document ids or the list's filters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import assert_error_shape
from documents.models import Document
from jobs.models import Batch, Job
from realtime.models import StoredEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/summarize/"


def make_documents(tenant, n, **fields):
    now = timezone.now()
    return [
        Document.unscoped_objects.create(
            org=tenant.org,
            title=f"Report {i}",
            content=f"Quarterly report number {i}. Revenue grew.",
            created_at=now - timedelta(days=n - i),
            **fields,
        )
        for i in range(n)
    ]


def test_by_ids(tenant, django_capture_on_commit_callbacks):
    documents = make_documents(tenant, 3)
    ids = [str(d.id) for d in documents]
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.client(tenant.member).post(
            URL, {"document_ids": [*ids, ids[0]], "options": {"max_words": 40}}, format="json"
        )
    assert response.status_code == 202, response.content
    batch = response.json()
    assert batch["status"] == "running" and batch["total"] == 3 and batch["progress"] == 0
    assert batch["counts"] == {"queued": 3, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert batch["selection"] == {"document_ids": ids} and batch["options"] == {"max_words": 40}
    assert batch["provider"] == "local" and batch["created_by"] == str(tenant.member.id)
    jobs = Job.unscoped_objects.filter(batch_id=batch["id"])
    assert sorted(str(j.document_id) for j in jobs) == sorted(ids)
    assert sorted(str(j.id) for j in jobs) == sorted(batch["jobs"])
    assert {(j.priority, j.queue, j.created_by_id) for j in jobs} == {
        (Job.Priority.BATCH, "summaries", tenant.member.id)
    }
    # one batch.created event, not one job.queued per document
    types = list(StoredEvent.unscoped_objects.filter(org=tenant.org).values_list("type", flat=True))
    assert types == ["batch.created"]


def test_by_filter(tenant):
    documents = make_documents(tenant, 5)
    Document.unscoped_objects.filter(pk=documents[4].pk).update(source="notion", title="Notion page")
    client = tenant.client()
    by_source = client.post(URL, {"filter": {"source": "notion"}}, format="json").json()
    assert by_source["jobs"] and Job.unscoped_objects.get(pk=by_source["jobs"][0]).document_id == documents[4].id
    after = documents[2].created_at.isoformat()
    recent = client.post(URL, {"filter": {"created_after": after}}, format="json").json()
    assert recent["total"] == 3 and recent["selection"] == {"filter": {"created_after": after}}
    everything = client.post(URL, {"filter": {}}, format="json").json()
    assert everything["total"] == 5
    searched = client.post(URL, {"filter": {"search": "notion"}}, format="json").json()
    assert searched["total"] == 1


def test_llm_provider_goes_to_the_llm_queue(tenant, settings):
    settings.LLM_API_KEY = "k"
    (document,) = make_documents(tenant, 1)
    batch = tenant.client().post(URL, {"document_ids": [str(document.id)], "provider": "openai"}, format="json")
    assert batch.status_code == 202, batch.content
    assert Job.unscoped_objects.get(batch_id=batch.json()["id"]).queue == "llm"


def test_another_orgs_documents_are_not_found(tenant, other_tenant):
    (mine,) = make_documents(tenant, 1)
    (theirs,) = make_documents(other_tenant, 1)
    response = tenant.client().post(URL, {"document_ids": [str(mine.id), str(theirs.id)]}, format="json")
    body = assert_error_shape(response, 400, "not_found", "document_ids")
    assert str(theirs.id) in body["errors"][0]["detail"]
    assert not Batch.unscoped_objects.exists() and not Job.unscoped_objects.exists()
    # a filter never reaches across organizations either
    assert other_tenant.client().post(URL, {"filter": {}}, format="json").json()["total"] == 1


def test_size_cap(tenant, settings):
    settings.MAX_BATCH_DOCUMENTS = 3
    documents = make_documents(tenant, 4)
    ids = [str(d.id) for d in documents]
    client = tenant.client()
    assert_error_shape(client.post(URL, {"document_ids": ids}, format="json"), 400, "batch_too_large", "document_ids")
    assert_error_shape(client.post(URL, {"filter": {}}, format="json"), 400, "batch_too_large", "filter")
    huge = client.post(URL, {"document_ids": ["not-even-a-uuid"] * 100_000}, format="json")
    assert_error_shape(huge, 400, "batch_too_large", "document_ids")  # counted before each id is parsed
    assert client.post(URL, {"document_ids": ids[:3]}, format="json").status_code == 202
    assert Batch.unscoped_objects.count() == 1


def test_nothing_selected(tenant):
    make_documents(tenant, 2)
    response = tenant.client().post(URL, {"filter": {"search": "zebra"}}, format="json")
    assert_error_shape(response, 400, "no_documents")


@pytest.mark.parametrize(
    "body, attr",
    [
        ({}, "non_field_errors"),
        ({"document_ids": [], "filter": {}}, "document_ids"),
        ({"document_ids": []}, "document_ids"),
        ({"document_ids": "all"}, "document_ids"),
        ({"document_ids": ["nope"]}, "document_ids.0"),
        ({"document_ids": [5]}, "document_ids.0"),
        ({"filter": "recent"}, "filter.non_field_errors"),
        ({"filter": {"colour": "red"}}, "filter.colour"),
        ({"filter": {"source": "Not A Slug"}}, "filter.source"),
        ({"filter": {"created_after": "yesterday"}}, "filter.created_after"),
        ({"filter": {"search": "x" * 501}}, "filter.search"),
        ({"filter": {"search": 7}}, "filter.search"),
        ({"filter": {}, "template_id": "00000000-0000-0000-0000-000000000000"}, "template_id"),
        ({"filter": {}, "provider": "skynet"}, "provider"),
        ({"filter": {}, "options": {"max_words": 1}}, "options.max_words"),
        ({"filter": {}, "org": "x"}, "org"),
    ],
)
def test_bad_input(tenant, body, attr):
    make_documents(tenant, 1)
    assert_error_shape(tenant.client().post(URL, body, format="json"), 400, attr=attr)
    assert not Batch.unscoped_objects.exists()


def test_nul_bytes_and_invalid_utf8(tenant):
    make_documents(tenant, 1)
    client = tenant.client()
    response = client.post(URL, '{"filter": {"search": "a\\u0000b"}}', content_type="application/json")
    assert_error_shape(response, 400, "invalid_characters")
    response = client.post(URL, b'{"filter": {"search": "\xff"}}', content_type="application/json")
    assert_error_shape(response, 400, "invalid_utf8")


def test_authentication_required(anon):
    assert_error_shape(anon.post(URL, {"filter": {}}, format="json"), 401)


def test_idempotency_key(tenant):
    documents = make_documents(tenant, 2)
    client = tenant.client()
    body = {"document_ids": [str(d.id) for d in documents]}
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] and Batch.unscoped_objects.count() == 1
    other = client.post(URL, {"filter": {}}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert_error_shape(other, 409, "idempotency_key_reused")


def test_broker_down_is_503_and_the_batch_fails(tenant, broker_down):
    documents = make_documents(tenant, 2)
    with broker_down():
        response = tenant.client().post(URL, {"document_ids": [str(d.id) for d in documents]}, format="json")
    assert_error_shape(response, 503, "broker_unavailable")
    (batch,) = Batch.unscoped_objects.all()
    assert batch.status == "completed"
    assert set(Job.unscoped_objects.values_list("status", "error__code")) == {("failed", "broker_unavailable")}
