"""The whole journey through a real worker: connect Notion (OAuth + PKCE), import a page,
summarize it, publish the summary back to Notion and to Slack."""

import pytest

from config.tests.process_fixtures import wait_until
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/integrations/"


def finished(job_id) -> Job:
    return wait_until(lambda: (j := Job.unscoped_objects.get(pk=job_id)).is_finished and j, timeout=60)


def connect(client, fake, provider):
    url = client.post(f"{BASE}{provider}/authorize/", {}, format="json").json()["authorization_url"]
    code, state = fake.authorize(url)
    response = client.get(f"{BASE}{provider}/callback/", {"code": code, "state": state})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_connect_import_summarize_publish(celery_worker, fake_providers, tenant):
    fake_providers.notion_pages["wiki"] = {
        "id": "wiki",
        "properties": {"title": {"type": "title", "title": [{"plain_text": "Launch plan"}]}},
    }
    fake_providers.notion_children["wiki"] = [
        {"id": f"p{i}", "type": "paragraph", "has_children": False, "paragraph": {"rich_text": [{"plain_text": text}]}}
        for i, text in enumerate(
            [
                "The launch of the new reader is planned for March.",
                "Marketing prepares the launch campaign in February.",
                "The office plants were watered on Tuesday.",
            ]
        )
    ]
    client = tenant.client()
    notion_id = connect(client, fake_providers, "notion")
    slack_id = connect(client, fake_providers, "slack")

    imported = finished(client.post(f"{BASE}{notion_id}/import/", {"items": ["wiki"]}, format="json").json()["id"])
    assert imported.status == "succeeded", imported.error
    document_id = imported.result["documents"][0]

    summarized = finished(
        client.post(
            f"/api/v1/documents/{document_id}/summarize/", {"options": {"max_words": 25}}, format="json"
        ).json()["id"]
    )
    assert summarized.status == "succeeded", summarized.error

    for integration_id, target in ((notion_id, {"page_id": "parent"}), (slack_id, {"channel": "C1"})):
        response = client.post(
            f"/api/v1/summaries/{summarized.summary_id}/publish/",
            {"integration_id": integration_id, "target": target},
            format="json",
        )
        assert response.status_code == 202, response.content
        published = finished(response.json()["id"])
        assert published.status == "succeeded", published.error
    (page,) = fake_providers.notion_created
    assert page["parent"] == {"page_id": "parent"} and "launch" in str(page["children"]).lower()
    assert "launch" in fake_providers.slack_messages[0]["text"].lower()
    # The audit log: both connections and both publications, attributed to the admin.
    from organizations.models import AuditEntry

    logged = AuditEntry.unscoped_objects.filter(org=tenant.org).order_by("created_at")
    assert [e.action for e in logged if e.action.startswith("integration.")] == [
        "integration.connected",
        "integration.connected",
        "integration.published",
        "integration.published",
    ]
    assert {e.actor_user_id for e in logged if e.action.startswith("integration.")} == {tenant.admin.id}
