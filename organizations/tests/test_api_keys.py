"""API keys (issue 18): shown once, hashed, scoped, capped by their creator, revoked at once."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role, User
from conftest import assert_error_shape, make_user
from documents.models import Document
from organizations.models import ApiKey

pytestmark = pytest.mark.django_db
KEYS = "/api/v1/org/api-keys/"
DOCS = "/api/v1/documents/"


def create(client, **body):
    return client.post(KEYS, {"name": "CI server", **body}, format="json")


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def admin_key(tenant) -> str:
    return create(tenant.client(), role="admin").json()["key"]


class TestCreating:
    def test_the_key_is_shown_once_and_only_its_hash_is_kept(self, tenant):
        response = create(tenant.client(), role="admin", scopes=["read"])
        assert response.status_code == 201, response.content
        body = response.json()
        key = body["key"]
        assert key.startswith(f"pk_{body['prefix']}_") and len(key) > 40
        assert body["role"] == "admin" and body["scopes"] == ["read"] and body["status"] == "active"
        row = ApiKey.unscoped_objects.get(pk=body["id"])
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in str(row.__dict__)
        listed = tenant.client().get(KEYS).json()["results"]
        assert [r["id"] for r in listed] == [body["id"]] and "key" not in listed[0]
        assert "key" not in tenant.client().get(f"{KEYS}{body['id']}/").json()

    def test_a_member_makes_member_keys_only(self, tenant):
        member = tenant.client(tenant.member)
        assert create(member).json()["role"] == "member"
        assert_error_shape(create(member, role="admin"), 403, "role_too_high")

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"name": ""}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": "bad\x00name"}, "name"),
            ({"name": 5}, "name"),
            ({"role": "owner"}, "role"),
            ({"scopes": []}, "scopes"),
            ({"scopes": ["delete"]}, "scopes.0"),
            ({"scopes": "read"}, "scopes"),
            ({"expires_at": "soon"}, "expires_at"),
            ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
            ({"prefix": "mine"}, "prefix"),
        ],
    )
    def test_bad_input(self, tenant, body, attr):
        assert_error_shape(create(tenant.client(), **body), 400, attr=attr)
        assert not ApiKey.unscoped_objects.exists()

    def test_anonymous_is_401(self, anon):
        assert_error_shape(create(anon), 401)


class TestUsing:
    def test_a_key_acts_as_its_creator_in_their_organization(self, tenant, other_tenant, admin_key):
        Document.unscoped_objects.create(org=other_tenant.org, title="Theirs", content="x", sha256="0" * 64)
        client = with_key(admin_key)
        assert client.get(DOCS).json()["results"] == []
        created = client.post(DOCS, {"title": "From CI", "content": "Built."}, format="json")
        assert created.status_code == 201, created.content
        document = Document.unscoped_objects.get(pk=created.json()["id"])
        assert document.org_id == tenant.org.id and document.created_by_id == tenant.admin.id
        assert ApiKey.unscoped_objects.get().last_used_at is not None
        assert client.get("/api/v1/org/invitations/").status_code == 200  # an admin key

    def test_a_read_key_only_reads(self, tenant):
        key = create(tenant.client(), scopes=["read"]).json()["key"]
        assert with_key(key).get(DOCS).status_code == 200
        refused = with_key(key).post(DOCS, {"title": "T", "content": "x"}, format="json")
        assert_error_shape(refused, 403, "read_only_key")
        assert not Document.unscoped_objects.exists()

    def test_a_member_key_of_an_admin_is_a_member(self, tenant):
        key = create(tenant.client(), role="member").json()["key"]
        assert_error_shape(with_key(key).get("/api/v1/org/invitations/"), 403)

    def test_a_key_is_never_more_than_its_creator_is_now(self, tenant, admin_key):
        second = make_user(tenant.org, Role.ADMIN, email="boss@acme.test")  # keeps an admin in the org
        assert second.role == Role.ADMIN
        User.objects.filter(pk=tenant.admin.pk).update(role=Role.MEMBER)
        assert_error_shape(with_key(admin_key).get("/api/v1/org/invitations/"), 403)
        assert with_key(admin_key).get(DOCS).status_code == 200

    @pytest.mark.parametrize("case", ["revoked", "expired", "creator_inactive", "garbage", "too_long", "other_hash"])
    def test_unusable_keys_are_401(self, tenant, admin_key, case):
        key = admin_key
        if case == "revoked":
            assert tenant.client().delete(f"{KEYS}{ApiKey.unscoped_objects.get().pk}/").status_code == 204
        elif case == "expired":
            ApiKey.unscoped_objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        elif case == "creator_inactive":
            User.objects.filter(pk=tenant.admin.pk).update(is_active=False)
        elif case == "garbage":
            key = "pk_nothing_here"
        elif case == "too_long":
            key = "pk_" + "a" * 5000
        elif case == "other_hash":
            key = admin_key[:-1] + ("A" if admin_key[-1] != "A" else "B")
        assert_error_shape(with_key(key).get(DOCS), 401, "invalid_api_key")

    def test_revoking_takes_effect_on_the_next_request(self, tenant, admin_key):
        client = with_key(admin_key)
        assert client.get(DOCS).status_code == 200
        key_id = ApiKey.unscoped_objects.get().pk
        assert tenant.client().delete(f"{KEYS}{key_id}/").status_code == 204
        assert_error_shape(client.get(DOCS), 401, "invalid_api_key")
        assert tenant.client().get(f"{KEYS}{key_id}/").json()["status"] == "revoked"  # the row stays

    def test_a_key_never_authenticates_the_admin_site(self, admin_key):
        response = Client().get("/admin/", HTTP_AUTHORIZATION=f"Bearer {admin_key}")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_keys_cannot_manage_keys(self, admin_key):
        client = with_key(admin_key)
        assert_error_shape(client.get(KEYS), 403, "api_key_not_allowed")
        assert_error_shape(create(client), 403, "api_key_not_allowed")
        assert ApiKey.unscoped_objects.count() == 1


class TestWhoSeesWhich:
    def test_admins_see_every_key_members_their_own(self, tenant, other_tenant):
        mine = create(tenant.client(tenant.member)).json()
        admins = create(tenant.client(), role="admin").json()
        theirs = create(other_tenant.client()).json()
        assert {r["id"] for r in tenant.client().get(KEYS).json()["results"]} == {mine["id"], admins["id"]}
        assert {r["id"] for r in tenant.client(tenant.member).get(KEYS).json()["results"]} == {mine["id"]}
        assert_error_shape(tenant.client(tenant.member).delete(f"{KEYS}{admins['id']}/"), 404)
        assert_error_shape(tenant.client().delete(f"{KEYS}{theirs['id']}/"), 404)
        assert ApiKey.unscoped_objects.filter(revoked_at__isnull=True).count() == 3
        assert tenant.client().delete(f"{KEYS}{mine['id']}/").status_code == 204  # an admin revokes any of theirs
