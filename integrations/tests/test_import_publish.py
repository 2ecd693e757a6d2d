"""Import (Drive, Notion, URL) and publish (Slack, Notion, webhook) against the loopback fakes.

The job bodies run in this process (the same code the worker runs); the end-to-end
test through a real worker is in test_e2e.py.
"""

import hashlib
import hmac
import json
import time

import pytest

from conftest import Ingest, assert_error_shape
from documents.models import Document
from documents.tests import files
from integrations.models import Integration
from integrations.services import import_job_run
from integrations.tests.fake_providers import Failure
from jobs.models import Job
from organizations.tenancy import org_scope
from summaries.models import Summary
from summaries.services import publish_job_run

pytestmark = pytest.mark.django_db

BASE = "/api/v1/integrations/"


def oauth_integration(tenant, fake, provider) -> Integration:
    integration = Integration(org=tenant.org, provider=provider, name=provider, created_by=tenant.admin)
    integration.access_token = fake.issue_token()
    integration.save()
    return integration


@pytest.fixture(autouse=True)
def _ingest_inline(ingest):
    """The imported files' ingest jobs run here (see `run`)."""


def run(job_id, tenant, runner=import_job_run) -> Job:
    """Run the job, then the ingest jobs it queued (what the workers would do next)."""
    with org_scope(tenant.org.id):
        runner(job_id=job_id)
    Ingest().pending(tenant.org)
    return Job.unscoped_objects.get(pk=job_id)


def start_import(tenant, integration, **body):
    response = tenant.client(tenant.member).post(f"{BASE}{integration.id}/import/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def drive(tenant, fake_providers):
    fake_providers.drive_files.update(
        {
            "doc1": {
                "id": "doc1",
                "name": "Roadmap",
                "mimeType": "application/vnd.google-apps.document",
                "content": b"Roadmap: ship the reader in March.",
            },
            "pdf1": {
                "id": "pdf1",
                "name": "Report.pdf",
                "mimeType": "application/pdf",
                "content": files.pdf_bytes(["Annual report text"]),
            },
            "img1": {"id": "img1", "name": "photo.png", "mimeType": "image/png", "content": b"\x89PNG"},
            "doc2": {"id": "doc2", "name": "Notes", "mimeType": "text/plain", "content": b"Plain notes"},
            "doc3": {
                "id": "doc3",
                "name": "Memo",
                "mimeType": "application/vnd.google-apps.document",
                "content": b"Memo text",
            },
        }
    )
    fake_providers.drive_folders["folderA"] = ["doc2", "doc3", "doc1"]
    return oauth_integration(tenant, fake_providers, "google_drive")


class TestDriveImport:
    def test_files_by_id_become_documents(self, tenant, drive, fake_providers):
        job = run(start_import(tenant, drive, items=["doc1", "pdf1", "img1"]), tenant)
        assert job.status == "succeeded", job.error
        assert job.result["created"] == 2 and job.result["failed"] == 1
        assert job.result["failures"][0]["item"] == "img1"
        docs = {d.source_ref: d for d in Document.unscoped_objects.filter(org=tenant.org)}
        assert docs["doc1"].source == "google_drive" and docs["doc1"].title == "Roadmap"
        assert docs["doc1"].content == "Roadmap: ship the reader in March.", docs["doc1"].error
        assert "Annual report text" in docs["pdf1"].content and docs["pdf1"].content_type == "application/pdf"
        assert Integration.unscoped_objects.get(pk=drive.pk).last_used_at is not None

    def test_folder_with_pagination(self, tenant, drive, fake_providers):
        job = run(start_import(tenant, drive, query="folderA"), tenant)
        assert job.result["created"] == 3
        assert fake_providers.calls.count(("GET", "/drive/v3/files")) == 2  # two pages

    def test_reimport_updates_instead_of_duplicating_and_marks_summaries_stale(self, tenant, drive, fake_providers):
        run(start_import(tenant, drive, items=["doc1"]), tenant)
        document = Document.unscoped_objects.get(source_ref="doc1")
        summary = Summary.unscoped_objects.create(
            org=tenant.org,
            document=document,
            content="s",
            provider="local",
            source_sha256=document.sha256,
            prompt_sha256="0" * 64,
        )
        assert run(start_import(tenant, drive, items=["doc1"]), tenant).result["unchanged"] == 1
        fake_providers.drive_files["doc1"]["content"] = b"Roadmap: ship the reader in April."
        assert run(start_import(tenant, drive, items=["doc1"]), tenant).result["updated"] == 1
        assert Document.unscoped_objects.filter(source_ref="doc1").count() == 1
        updated = Document.unscoped_objects.get(source_ref="doc1")
        assert updated.pk == document.pk and "April" in updated.content
        detail = tenant.client().get(f"/api/v1/summaries/{summary.pk}/").json()
        assert detail["stale"] is True

    def test_429_with_retry_after_is_retried(self, tenant, drive, fake_providers):
        fake_providers.fail("/drive/v3/files/doc1", Failure(429, {"error": "rate"}, {"Retry-After": "0"}))
        job = run(start_import(tenant, drive, items=["doc1"]), tenant)
        assert job.status == "succeeded" and job.result["created"] == 1

    def test_401_marks_the_integration_expired_and_fails_clearly(self, tenant, drive, fake_providers):
        fake_providers.access_tokens.clear()
        job = run(start_import(tenant, drive, items=["doc1"]), tenant)
        assert job.status == "failed" and job.error["code"] == "provider_unauthorized"
        assert Integration.unscoped_objects.get(pk=drive.pk).status == "expired"

    def test_a_query_cannot_widen_the_drive_search(self, tenant, drive, fake_providers):
        client = tenant.client(tenant.member)
        injected = "x' in parents or 'me' in owners or 'y"
        response = client.post(f"{BASE}{drive.id}/import/", {"query": injected}, format="json")
        assert_error_shape(response, 400, "invalid_id", "query")
        response = client.post(f"{BASE}{drive.id}/import/", {"items": ["doc1", "../about"]}, format="json")
        assert_error_shape(response, 400, "invalid_id", "items.1")
        assert not Job.unscoped_objects.filter(kind="import").exists()
        assert ("GET", "/drive/v3/files") not in fake_providers.calls

    def test_the_folder_id_is_quoted_in_the_search(self):
        from integrations.providers.google_drive import _quoted

        assert _quoted("folderA") == "'folderA'"
        assert _quoted("a'b\\c") == "'a\\'b\\\\c'"

    def test_input_validation(self, tenant, drive):
        client = tenant.client()
        for body, attr in [
            ({}, "non_field_errors"),
            ({"items": []}, "items"),
            ({"items": "x"}, "items"),
            ({"items": ["a"], "query": "b"}, "non_field_errors"),
            ({"items": ["x" * 201]}, "items.0"),
        ]:
            assert_error_shape(client.post(f"{BASE}{drive.id}/import/", body, format="json"), 400, attr=attr)


class TestNotion:
    @pytest.fixture
    def notion(self, tenant, fake_providers):
        fake_providers.notion_pages["page1"] = {
            "id": "page1",
            "url": "https://notion.so/page1",
            "properties": {"Name": {"type": "title", "title": [{"plain_text": "Team wiki"}]}},
        }

        def paragraph(text, **extra):
            return {
                "id": text,
                "type": "paragraph",
                "has_children": False,
                "paragraph": {"rich_text": [{"plain_text": text}]},
                **extra,
            }

        fake_providers.notion_children["page1"] = [
            {
                "id": "h",
                "type": "heading_1",
                "has_children": False,
                "heading_1": {"rich_text": [{"plain_text": "Goals"}]},
            },
            paragraph("First paragraph."),
            {
                **paragraph("Parent bullet"),
                "type": "bulleted_list_item",
                "bulleted_list_item": {"rich_text": [{"plain_text": "Parent bullet"}]},
                "has_children": True,
                "id": "b1",
            },
            paragraph("Last paragraph."),
        ]
        fake_providers.notion_children["b1"] = [paragraph("Nested child.")]
        return oauth_integration(tenant, fake_providers, "notion")

    def test_import_recursively_through_paginated_blocks(self, tenant, notion):
        job = run(start_import(tenant, notion, items=["page1"]), tenant)
        assert job.status == "succeeded", job.error
        document = Document.unscoped_objects.get(source="notion", source_ref="page1")
        assert document.title == "Team wiki"
        assert document.content == "# Goals\n\nFirst paragraph.\n\n- Parent bullet\n\nNested child.\n\nLast paragraph."

    def test_search_query(self, tenant, notion):
        assert run(start_import(tenant, notion, query="wiki"), tenant).result["created"] == 1


@pytest.fixture
def summary(tenant):
    document = Document.unscoped_objects.create(
        org=tenant.org, title="Budget", content="text", char_count=4, sha256="0" * 64
    )
    return Summary.unscoped_objects.create(
        org=tenant.org,
        document=document,
        content="First paragraph.\n\n" + ("Long line of summary text. " * 400),
        provider="local",
        template_name="TL;DR",
        source_sha256="0" * 64,
        prompt_sha256="0" * 64,
        created_by=tenant.member,
    )


def publish(tenant, summary, integration, target):
    response = tenant.client(tenant.member).post(
        f"/api/v1/summaries/{summary.id}/publish/",
        {"integration_id": str(integration.id), "target": target},
        format="json",
    )
    assert response.status_code == 202, response.content
    return run(response.json()["id"], tenant, publish_job_run)


class TestPublish:
    def test_slack_long_summary_split_into_a_thread(self, tenant, summary, fake_providers):
        slack = oauth_integration(tenant, fake_providers, "slack")
        job = publish(tenant, summary, slack, {"channel": "C123"})
        assert job.status == "succeeded", job.error
        messages = fake_providers.slack_messages
        assert len(messages) == job.result["published"]["messages"] > 1
        assert all(len(m["text"]) <= 3500 for m in messages)
        assert messages[0]["text"].startswith("*TL;DR: Budget*") and "thread_ts" not in messages[0]
        assert all(m["thread_ts"] == "17000.1" for m in messages[1:])
        assert "".join(m["text"] for m in messages).count("Long line") == 400

    def test_slack_errors(self, tenant, summary, fake_providers):
        slack = oauth_integration(tenant, fake_providers, "slack")
        job = publish(tenant, summary, slack, {"channel": "C-missing"})
        assert job.status == "failed" and job.error["code"] == "provider_bad_request"
        assert "channel_not_found" in job.error["detail"]

    def test_notion_child_page(self, tenant, summary, fake_providers):
        notion = oauth_integration(tenant, fake_providers, "notion")
        job = publish(tenant, summary, notion, {"page_id": "parent-1"})
        assert job.status == "succeeded", job.error
        (created,) = fake_providers.notion_created
        assert created["parent"] == {"page_id": "parent-1"}
        assert created["properties"]["title"]["title"][0]["text"]["content"] == "TL;DR: Budget"
        assert all(len(b["paragraph"]["rich_text"][0]["text"]["content"]) <= 2000 for b in created["children"])

    def test_webhook_signed(self, tenant, summary, fake_providers):
        response = tenant.client().post(
            BASE,
            {
                "provider": "webhook",
                "name": "CI hook",
                "config": {"url": f"{fake_providers.url}/hook", "secret": "s3cr3t"},
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        assert "s3cr3t" not in response.content.decode()
        hook = Integration.unscoped_objects.get(pk=response.json()["id"])
        assert "s3cr3t" not in hook.config_encrypted and hook.config["secret"] == "s3cr3t"
        fake_providers.fail("/hook", Failure(500, "busy"))  # one failure, then the retry lands
        job = publish(tenant, summary, hook, {})
        assert job.status == "succeeded", job.error
        (delivery,) = fake_providers.webhooks
        timestamp = delivery["headers"]["X-Precis-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        signed = timestamp.encode() + b"." + delivery["body"]
        expected = "sha256=" + hmac.new(b"s3cr3t", signed, hashlib.sha256).hexdigest()
        assert delivery["headers"]["X-Precis-Signature"] == expected
        assert json.loads(delivery["body"])["event"] == "summary.published"

    def test_a_target_cannot_forge_the_event_or_the_content(self, tenant, summary, fake_providers):
        hook = Integration(org=tenant.org, provider="webhook", name="hook", created_by=tenant.admin)
        hook.config = {"url": f"{fake_providers.url}/hook", "secret": "s3cr3t"}
        hook.save()
        forged = {"event": "invoice.approved", "content": "amount=99999", "title": "Pay"}
        assert publish(tenant, summary, hook, forged).status == "succeeded"
        (delivery,) = fake_providers.webhooks
        body = json.loads(delivery["body"])
        assert body["event"] == "summary.published" and body["content"] == summary.content
        assert body["title"] != "Pay" and body["target"] == forged

    def test_publish_validation_and_isolation(self, tenant, other_tenant, summary, fake_providers):
        theirs = oauth_integration(other_tenant, fake_providers, "slack")
        drive = oauth_integration(tenant, fake_providers, "google_drive")
        slack = oauth_integration(tenant, fake_providers, "slack")
        url = f"/api/v1/summaries/{summary.id}/publish/"
        client = tenant.client()
        cases = [
            ({"integration_id": str(theirs.id), "target": {"channel": "C"}}, "not_found"),
            ({"integration_id": str(drive.id), "target": {}}, "unsupported_capability"),
            ({"integration_id": str(slack.id), "target": {}}, "invalid_target"),
            ({"integration_id": str(slack.id), "target": ["C"]}, "invalid_target"),
            ({"integration_id": "nope"}, None),
        ]
        for body, code in cases:
            assert_error_shape(client.post(url, body, format="json"), 400, code)
        assert not Job.unscoped_objects.filter(kind="publish").exists()


class TestWebhookCreate:
    @pytest.mark.parametrize(
        "config, code",
        [
            ({"url": "http://10.0.0.8/hook"}, "private_address"),
            ({"url": "http://169.254.169.254/"}, "private_address"),
            ({"url": "ftp://example.org"}, "unsupported_scheme"),
            ({"url": "http://127.0.0.1/x", "extra": 1}, "unknown_field"),
        ],
    )
    def test_refusals(self, tenant, settings, config, code):
        settings.OUTBOUND_ALLOWED_HOSTS = []
        response = tenant.client().post(BASE, {"provider": "webhook", "name": "h", "config": config}, format="json")
        assert_error_shape(response, 400, code)
        assert not Integration.unscoped_objects.exists()

    def test_members_cannot_create(self, tenant):
        response = tenant.client(tenant.member).post(
            BASE, {"provider": "webhook", "name": "h", "config": {"url": "http://127.0.0.1/x"}}, format="json"
        )
        assert_error_shape(response, 403)


class TestUrlImport:
    def test_import_a_page(self, tenant, fake_providers):
        url = f"{fake_providers.url}/pages/plan"
        response = tenant.client().post("/api/v1/documents/import-url/", {"url": url}, format="json")
        assert response.status_code == 202, response.content
        job = run(response.json()["id"], tenant)
        assert job.status == "succeeded", job.error
        document = Document.unscoped_objects.get(pk=job.document_id)
        assert document.source == "url" and document.source_ref == url and document.title == "Fetched Page"
        assert "We will ship the new reader in March." in document.content and "var x" not in document.content
        again = tenant.client().post("/api/v1/documents/import-url/", {"url": url}, format="json").json()
        assert run(again["id"], tenant).result["outcome"] == "unchanged"

    @pytest.mark.parametrize(
        "url, code",
        [
            ("http://10.0.0.1/x", "private_address"),
            ("http://[::1]/", "private_address"),
            ("http://2130706433/", "private_address"),
            ("file:///etc/passwd", "unsupported_scheme"),
        ],
    )
    def test_refused_before_any_job(self, tenant, settings, url, code):
        settings.OUTBOUND_ALLOWED_HOSTS = []
        response = tenant.client().post("/api/v1/documents/import-url/", {"url": url}, format="json")
        assert_error_shape(response, 400, code, "url")
        assert not Job.unscoped_objects.exists()
