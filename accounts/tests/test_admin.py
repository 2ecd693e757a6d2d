"""The user admin's write paths go through the member services (issue 15, item 7):
"delete" deactivates with the last-admin guard, deactivation revokes refresh tokens."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client

from accounts.models import Role, User
from accounts.tokens import token_pair_for
from conftest import PASSWORD, admin_client, make_user

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
REFRESH = "/api/v1/auth/refresh/"


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@precis.test", password=PASSWORD)


def delete_one(client: Client, user: User):
    return client.post(f"{USERS}{user.pk}/delete/", {"post": "yes"}, follow=True)


def delete_selected(client: Client, *users: User):
    return client.post(
        USERS,
        {"action": "delete_selected", "_selected_action": [str(u.pk) for u in users], "post": "yes"},
        follow=True,
    )


def refresh_works(refresh: str, anon) -> bool:
    return anon.post(REFRESH, {"refresh": refresh}, format="json").status_code == 200


class TestDeleteDeactivates:
    @pytest.mark.parametrize("delete", [delete_one, delete_selected], ids=["delete_button", "delete_selected"])
    def test_the_user_stays_inactive_and_their_tokens_are_revoked(self, tenant, anon, delete):
        refresh = token_pair_for(tenant.member)["refresh"]
        response = delete(admin_client(tenant.admin), tenant.member)
        assert response.status_code == 200
        member = User.objects.get(pk=tenant.member.pk)  # never hard-deleted: their work stays in the org
        assert member.is_active is False and member.org == tenant.org
        (entry,) = LogEntry.objects.filter(object_id=str(member.pk))
        assert entry.action_flag == CHANGE and entry.change_message == "Deactivated (delete)."
        assert not refresh_works(refresh, anon)
        User.objects.filter(pk=member.pk).update(is_active=True)
        assert not refresh_works(refresh, anon)  # reactivated: the old token stays dead

    def test_the_delete_button_says_what_happened(self, tenant):
        response = delete_one(admin_client(tenant.admin), tenant.member)
        assert f"The user “{tenant.member.email}” was deactivated".encode() in response.content
        assert b"deleted successfully" not in response.content


class TestGuards:
    @pytest.mark.parametrize("delete", [delete_one, delete_selected], ids=["delete_button", "delete_selected"])
    def test_an_admin_cannot_delete_themselves(self, tenant, delete):
        make_user(tenant.org, Role.ADMIN)  # not the last admin: the self guard alone refuses
        response = delete(admin_client(tenant.admin), tenant.admin)
        assert response.status_code == 200
        assert b"cannot delete your own account" in response.content
        assert User.objects.get(pk=tenant.admin.pk).is_active is True
        assert not LogEntry.objects.exists()  # rolled back with the refused delete

    @pytest.mark.parametrize("delete", [delete_one, delete_selected], ids=["delete_button", "delete_selected"])
    def test_the_last_admin_stays(self, tenant, superuser, delete):
        response = delete(admin_client(superuser), tenant.admin)
        assert response.status_code == 200
        assert b"at least one active admin" in response.content
        assert User.objects.get(pk=tenant.admin.pk).is_active is True

    def test_a_bulk_delete_that_would_remove_the_last_admin_changes_nobody(self, tenant, superuser):
        second = make_user(tenant.org, Role.ADMIN)
        response = delete_selected(admin_client(superuser), tenant.member, tenant.admin, second)
        assert b"at least one active admin" in response.content
        assert b"Successfully deleted" not in response.content
        assert User.objects.filter(org=tenant.org, is_active=True).count() == 3  # all or nothing

    def test_a_foreign_user_cannot_be_deleted(self, tenant, other_tenant):
        client = admin_client(tenant.admin)
        delete_one(client, other_tenant.member)
        delete_selected(client, other_tenant.member)
        assert User.objects.get(pk=other_tenant.member.pk).is_active is True


class TestDeactivatingInTheForm:
    def form(self, user: User, **overrides) -> dict:
        data = {"email": user.email, "name": user.name, "role": user.role}
        if user.is_active:
            data["is_active"] = "on"
        data.update(overrides)
        return {k: v for k, v in data.items() if v is not None}

    def test_deactivating_revokes_refresh_tokens_for_good(self, tenant, anon):
        refresh = token_pair_for(tenant.member)["refresh"]
        client = admin_client(tenant.admin)
        url = f"{USERS}{tenant.member.pk}/change/"
        assert client.post(url, self.form(tenant.member, is_active=None)).status_code == 302
        tenant.member.refresh_from_db()
        assert tenant.member.is_active is False
        assert client.post(url, self.form(tenant.member, is_active="on")).status_code == 302
        tenant.member.refresh_from_db()
        assert tenant.member.is_active is True
        assert not refresh_works(refresh, anon)  # before issue 15 the old token worked again here

    def test_other_edits_keep_the_sessions(self, tenant, anon):
        refresh = token_pair_for(tenant.member)["refresh"]
        response = admin_client(tenant.admin).post(
            f"{USERS}{tenant.member.pk}/change/", self.form(tenant.member, name="Renamed")
        )
        assert response.status_code == 302
        assert User.objects.get(pk=tenant.member.pk).name == "Renamed"
        assert refresh_works(refresh, anon)

    def test_a_role_change_goes_through_the_last_admin_guard(self, tenant):
        response = admin_client(tenant.admin).post(
            f"{USERS}{tenant.admin.pk}/change/", self.form(tenant.admin, role=Role.MEMBER)
        )
        assert response.status_code == 200 and b"at least one active admin" in response.content
        assert User.objects.get(pk=tenant.admin.pk).role == Role.ADMIN
