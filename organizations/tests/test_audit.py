"""The audit log (issue 18): each security-relevant action writes one entry in its
organization, in the action's transaction, with who, from where and what changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from conftest import PASSWORD, admin_client, assert_error_shape, make_user
from documents.models import Document
from organizations import audit
from organizations.models import AuditEntry, Invitation

pytestmark = pytest.mark.django_db
AUDIT = "/api/v1/org/audit/"


def entries(org, action=None):
    rows = AuditEntry.unscoped_objects.filter(org=org).order_by("created_at")
    return list(rows.filter(action=action) if action else rows)


def client_from(tenant, user=None) -> APIClient:
    client = tenant.client(user)
    client.defaults.update(HTTP_USER_AGENT="audit-test/1.0", HTTP_X_REQUEST_ID="req-123", REMOTE_ADDR="203.0.113.9")
    return client


class TestActionsAreRecorded:
    def test_logins_succeeded_and_failed(self, tenant, other_tenant, anon):
        ok = anon.post("/api/v1/auth/login/", {"email": tenant.admin.email, "password": PASSWORD}, format="json")
        assert ok.status_code == 200
        bad = anon.post("/api/v1/auth/login/", {"email": tenant.admin.email, "password": "wrong"}, format="json")
        assert bad.status_code == 401
        unknown = anon.post("/api/v1/auth/login/", {"email": "nobody@x.test", "password": "x"}, format="json")
        assert unknown.status_code == 401
        (login,) = entries(tenant.org, "auth.login")
        (failed,) = entries(tenant.org, "auth.login_failed")
        assert login.actor_user_id == tenant.admin.id and failed.actor_user_id is None
        assert failed.target_id == str(tenant.admin.id) and failed.ip == "127.0.0.1"
        assert not entries(other_tenant.org)

    def test_a_reused_refresh_token(self, tenant, anon):
        pair = anon.post("/api/v1/auth/login/", {"email": tenant.member.email, "password": PASSWORD}).json()
        assert anon.post("/api/v1/auth/refresh/", {"refresh": pair["refresh"]}).status_code == 200
        assert anon.post("/api/v1/auth/refresh/", {"refresh": pair["refresh"]}).status_code == 401
        (reuse,) = entries(tenant.org, "auth.refresh_reused")
        assert reuse.target_id == str(tenant.member.id)
        forged = anon.post("/api/v1/auth/refresh/", {"refresh": "not.a.token"})
        assert forged.status_code == 401 and len(entries(tenant.org, "auth.refresh_reused")) == 1

    def test_a_password_change(self, tenant):
        body = {"current_password": PASSWORD, "new_password": "a-whole-new-passphrase-9"}
        assert client_from(tenant, tenant.member).patch("/api/v1/auth/me/", body).status_code == 200
        (changed,) = entries(tenant.org, "auth.password_changed")
        assert (changed.actor_user_id, changed.ip, changed.user_agent, changed.request_id) == (
            tenant.member.id,
            "203.0.113.9",
            "audit-test/1.0",
            "req-123",
        )

    def test_member_changes_with_their_diff(self, tenant):
        client = client_from(tenant)
        url = f"/api/v1/org/users/{tenant.member.pk}/"
        client.patch(url, {"role": "admin", "monthly_token_budget": 500})
        client.delete(url)
        updated, deactivated = entries(tenant.org, "member.updated")[0], entries(tenant.org, "member.deactivated")[0]
        assert updated.changes == {"role": ["member", "admin"], "monthly_token_budget": [None, 500]}
        assert updated.actor_user_id == tenant.admin.id and updated.target_label == tenant.member.email
        assert deactivated.changes == {"is_active": [True, False]}

    def test_invitations_keys_templates_documents_and_the_org(self, tenant):
        client = client_from(tenant)
        invitation = client.post("/api/v1/org/invitations/", {"email": "new@x.test"}).json()
        client.post(f"/api/v1/org/invitations/{invitation['id']}/resend/")
        client.delete(f"/api/v1/org/invitations/{invitation['id']}/")
        key = client.post("/api/v1/org/api-keys/", {"name": "CI"}, format="json").json()
        client.delete(f"/api/v1/org/api-keys/{key['id']}/")
        template = client.post("/api/v1/templates/", {"name": "Brief", "body": "{{ document.content }}"}).json()
        client.patch(f"/api/v1/templates/{template['id']}/", {"name": "Board brief"})
        client.delete(f"/api/v1/templates/{template['id']}/")
        document = client.post("/api/v1/documents/", {"title": "Doomed", "content": "x"}).json()
        client.delete(f"/api/v1/documents/{document['id']}/")
        client.patch("/api/v1/org/", {"name": "Acme Corp", "monthly_cost_budget": "25.00"})
        actions = [e.action for e in entries(tenant.org)]
        assert actions == [
            "invitation.created",
            "invitation.resent",
            "invitation.revoked",
            "api_key.created",
            "api_key.revoked",
            "template.created",
            "template.updated",
            "template.deleted",
            "document.deleted",
            "org.updated",
            "org.budget_changed",
        ]
        by_action = {e.action: e for e in entries(tenant.org)}
        assert by_action["template.updated"].changes == {"name": ["Brief", "Board brief"]}
        assert by_action["org.budget_changed"].changes == {"monthly_cost_budget": [None, "25.00"]}
        assert by_action["document.deleted"].target_label == "Doomed"
        assert all(e.actor_user_id == tenant.admin.id and e.request_id == "req-123" for e in entries(tenant.org))

    def test_an_api_key_is_named_as_the_actor(self, tenant):
        key = client_from(tenant).post("/api/v1/org/api-keys/", {"name": "CI"}, format="json").json()
        robot = APIClient()
        robot.credentials(HTTP_AUTHORIZATION=f"Bearer {key['key']}")
        document = robot.post("/api/v1/documents/", {"title": "Built", "content": "x"}, format="json").json()
        robot.delete(f"/api/v1/documents/{document['id']}/")
        (deleted,) = entries(tenant.org, "document.deleted")
        assert str(deleted.actor_key_id) == key["id"] and deleted.actor_user_id == tenant.admin.id
        assert f"(API key pk_{key['prefix']}…)" in deleted.actor_label

    def test_integrations_connected_and_disconnected(self, tenant, fake_providers):
        client = client_from(tenant)
        body = {"provider": "webhook", "name": "Hook", "config": {"url": f"{fake_providers.url}/h"}}
        hook = client.post("/api/v1/integrations/", body, format="json")
        assert hook.status_code == 201, hook.content
        client.delete(f"/api/v1/integrations/{hook.json()['id']}/")
        assert [e.action for e in entries(tenant.org)] == ["integration.connected", "integration.disconnected"]

    def test_an_export(self, tenant, tmp_path):
        call_command("export_org", "--org", tenant.org.slug, "--output", str(tmp_path / "out.jsonl"), "--no-progress")
        (exported,) = entries(tenant.org, "org.exported")
        assert exported.actor_label == "manage.py export_org" and exported.ip is None

    def test_an_accepted_invitation(self, tenant, invite, anon):
        token = invite(tenant.client(), "joiner@x.test")
        body = {"email": "joiner@x.test", "password": "a-long-enough-passphrase-3", "invitation_token": token}
        assert anon.post("/api/v1/auth/register/", body, format="json").status_code == 201
        (accepted,) = entries(tenant.org, "invitation.accepted")
        assert accepted.actor_label == "joiner@x.test"


class TestSameTransaction:
    def test_a_refused_action_leaves_no_entry(self, tenant):
        response = client_from(tenant).patch(f"/api/v1/org/users/{tenant.admin.pk}/", {"role": "member"})
        assert_error_shape(response, 409, "last_admin")
        assert not entries(tenant.org)

    def test_a_template_rename_that_clashes_leaves_no_entry(self, tenant):
        client = client_from(tenant)
        client.post("/api/v1/templates/", {"name": "Taken", "body": "{{ document.content }}"})
        other = client.post("/api/v1/templates/", {"name": "Other", "body": "{{ document.content }}"}).json()
        assert_error_shape(client.patch(f"/api/v1/templates/{other['id']}/", {"name": "Taken"}), 400)
        assert not entries(tenant.org, "template.updated")


class TestReading:
    def test_admins_of_the_org_only(self, tenant, other_tenant):
        client_from(tenant).post("/api/v1/documents/", {"title": "T", "content": "x"})
        Document.unscoped_objects.all().delete()
        audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org)
        assert len(tenant.client().get(AUDIT).json()["results"]) == 1
        assert other_tenant.client().get(AUDIT).json()["results"] == []
        assert_error_shape(tenant.client(tenant.member).get(AUDIT), 403)
        row = tenant.client().get(AUDIT).json()["results"][0]
        assert row["action"] == "org.updated" and row["actor"]["user_id"] == str(tenant.admin.pk)
        assert row["target"] == {"type": "organization", "id": str(tenant.org.pk), "label": "Acme"}

    def test_filters_and_bad_input(self, tenant):
        for action in ("org.updated", "template.created", "org.updated"):
            audit.record(action, org=tenant.org, actor=tenant.admin, target=tenant.org)
        client = tenant.client()
        assert len(client.get(AUDIT, {"action": "org.updated"}).json()["results"]) == 2
        assert len(client.get(AUDIT, {"actor": str(tenant.member.pk)}).json()["results"]) == 0
        later = (timezone.now() + timedelta(minutes=1)).isoformat()
        assert client.get(AUDIT, {"created_after": later}).json()["results"] == []
        assert len(client.get(AUDIT, {"page_size": 2}).json()["results"]) == 2
        for params, attr in [
            ({"action": "made.up"}, "action"),
            ({"actor": "nope"}, "actor"),
            ({"created_after": "yesterday"}, "created_after"),
            ({"target_id": "x" * 65}, "target_id"),
        ]:
            assert_error_shape(client.get(AUDIT, params), 400, attr=attr)

    def test_the_log_cannot_be_written_through_the_api_nor_changed(self, tenant):
        entry = audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org)
        client = tenant.client()
        assert_error_shape(client.post(AUDIT, {"action": "org.updated"}), 405)
        assert_error_shape(client.delete(f"{AUDIT}{entry.pk}/"), 404)
        entry.action = "forged"
        with pytest.raises(ValueError, match="append-only"):
            entry.save()
        with pytest.raises(ValueError, match="append-only"):
            entry.delete()

    def test_the_export_is_csv_with_the_filters(self, tenant):
        audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org, changes={"name": ["A", "B"]})
        audit.record("template.created", org=tenant.org, actor=tenant.admin, target=tenant.org)
        response = tenant.client().get(f"{AUDIT}export/", {"action": "org.updated"})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        lines = b"".join(response.streaming_content).decode().strip().splitlines()
        assert lines[0].startswith("created_at,action,actor_user_id") and len(lines) == 2
        assert ",org.updated," in lines[1] and '"{""name"": [""A"", ""B""]}"' in lines[1]
        assert_error_shape(tenant.client(tenant.member).get(f"{AUDIT}export/"), 403)

    def test_retention(self, tenant, settings):
        settings.AUDIT_RETENTION_DAYS = 30
        old = audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org)
        AuditEntry.unscoped_objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
        kept = audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org)
        assert audit.purge() == 1
        assert list(AuditEntry.unscoped_objects.values_list("pk", flat=True)) == [kept.pk]

    def test_the_admin_shows_it_read_only_and_scoped(self, tenant, other_tenant):
        mine = audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org)
        theirs = audit.record("org.updated", org=other_tenant.org, actor=other_tenant.admin, target=other_tenant.org)
        client = admin_client(tenant.admin)
        listing = client.get("/admin/organizations/auditentry/").content.decode()
        assert tenant.admin.email in listing and other_tenant.admin.email not in listing
        assert client.get(f"/admin/organizations/auditentry/{mine.pk}/change/").status_code == 200
        assert client.get(f"/admin/organizations/auditentry/{theirs.pk}/change/").status_code == 302
        assert client.get("/admin/organizations/auditentry/add/").status_code == 403

    def test_admin_made_changes_are_recorded_too(self, tenant):
        client = admin_client(tenant.admin)
        user = make_user(tenant.org, Role.MEMBER, email="budgeted@acme.test")
        form = {"email": user.email, "name": "", "role": "member", "is_active": "on", "monthly_token_budget": "900"}
        response = client.post(f"/admin/accounts/user/{user.pk}/change/", form)
        assert response.status_code == 302, response.content[:2000]
        (updated,) = entries(tenant.org, "member.updated")
        assert updated.changes == {"monthly_token_budget": [None, 900]}
        org_form = {"name": "Acme", "monthly_token_budget": "5000", "monthly_cost_budget": ""}
        assert client.post(f"/admin/organizations/organization/{tenant.org.pk}/change/", org_form).status_code == 302
        (budget,) = entries(tenant.org, "org.budget_changed")
        assert budget.changes == {"monthly_token_budget": [None, 5000]}
        assert Invitation.unscoped_objects.count() == 0
