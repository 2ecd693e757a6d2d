"""The Django admin, tenant-scoped: driven through Django's test client."""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role, User
from conftest import PASSWORD, admin_client, make_user
from organizations.models import Invitation, Organization
from organizations.tenancy import org_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@precis.test", password=PASSWORD)


@pytest.fixture
def invitations(tenant, other_tenant):
    for t in (tenant, other_tenant):
        Invitation.unscoped_objects.create(org=t.org, email=f"guest@{t.org.slug}.test", token_hash=t.org.slug)


class TestAccess:
    def test_org_admin_reaches_the_admin(self, tenant):
        response = admin_client(tenant.admin).get("/admin/")
        assert response.status_code == 200
        assert b"Users" in response.content and b"Invitations" in response.content

    def test_member_is_refused(self, tenant):
        client = Client()
        response = client.post("/admin/login/", {"username": tenant.member.email, "password": PASSWORD})
        assert response.status_code == 200  # the login form again, with an error
        assert client.get("/admin/").status_code == 302


class TestOrgAdminSeesOnlyTheirOrg:
    @pytest.mark.parametrize(
        "url, own, foreign",
        [
            ("/admin/accounts/user/", b"member@acme.test", b"member@globex.test"),
            ("/admin/organizations/invitation/", b"guest@acme.test", b"guest@globex.test"),
            ("/admin/organizations/organization/", b"Acme", b"Globex"),
        ],
    )
    def test_changelists(self, tenant, other_tenant, invitations, url, own, foreign):
        response = admin_client(tenant.admin).get(url)
        assert response.status_code == 200
        assert own in response.content
        assert foreign not in response.content

    def test_search_does_not_cross_orgs(self, tenant, other_tenant):
        response = admin_client(tenant.admin).get("/admin/accounts/user/", {"q": "globex"})
        assert b"member@globex.test" not in response.content

    def test_filter_by_foreign_org_id_shows_nothing(self, tenant, other_tenant):
        response = admin_client(tenant.admin).get("/admin/accounts/user/", {"org__id__exact": str(other_tenant.org.id)})
        assert b"globex.test" not in response.content

    def test_no_org_filter_for_org_admins(self, tenant, other_tenant):
        response = admin_client(tenant.admin).get("/admin/accounts/user/")
        assert b"By organization" not in response.content
        assert b"Globex" not in response.content

    def test_foreign_object_pages_are_not_found(self, tenant, other_tenant, invitations):
        client = admin_client(tenant.admin)
        foreign_invite = Invitation.unscoped_objects.get(org=other_tenant.org)
        for url in [
            f"/admin/accounts/user/{other_tenant.member.id}/change/",
            f"/admin/accounts/user/{other_tenant.member.id}/password/",
            f"/admin/organizations/invitation/{foreign_invite.id}/change/",
            f"/admin/organizations/organization/{other_tenant.org.id}/change/",
        ]:
            response = client.get(url)
            assert response.status_code in (302, 404), url
            assert b"globex" not in response.content.lower(), url

    def test_cannot_delete_foreign_objects(self, tenant, other_tenant, invitations):
        client = admin_client(tenant.admin)
        foreign_invite = Invitation.unscoped_objects.get(org=other_tenant.org)
        client.post(f"/admin/organizations/invitation/{foreign_invite.id}/delete/", {"post": "yes"})
        client.post(
            "/admin/organizations/invitation/",
            {"action": "delete_selected", "_selected_action": [str(foreign_invite.id)], "post": "yes"},
        )
        assert Invitation.unscoped_objects.filter(pk=foreign_invite.pk).exists()

    def test_superusers_are_invisible_to_org_admins(self, tenant, superuser):
        User.objects.filter(pk=superuser.pk).update(org=tenant.org)
        response = admin_client(tenant.admin).get("/admin/accounts/user/")
        assert b"root@precis.test" not in response.content


class TestOrgAdminCannotEscalate:
    def user_form(self, user, **overrides):
        data = {"email": user.email, "name": user.name, "role": user.role, "is_active": "on"}
        data.update(overrides)
        return data

    def test_cannot_grant_superuser_or_move_org(self, tenant, other_tenant):
        client = admin_client(tenant.admin)
        change = client.get(f"/admin/accounts/user/{tenant.member.id}/change/")
        assert b'name="is_superuser"' not in change.content
        assert b'name="org"' not in change.content
        response = client.post(
            f"/admin/accounts/user/{tenant.member.id}/change/",
            self.user_form(tenant.member, is_superuser="on", org=str(other_tenant.org.id), name="Renamed"),
        )
        assert response.status_code == 302, response.content[:2000]
        tenant.member.refresh_from_db()
        assert tenant.member.name == "Renamed"
        assert tenant.member.is_superuser is False
        assert tenant.member.org == tenant.org

    def test_last_admin_guard(self, tenant):
        client = admin_client(tenant.admin)
        response = client.post(
            f"/admin/accounts/user/{tenant.admin.id}/change/", self.user_form(tenant.admin, role=Role.MEMBER)
        )
        assert response.status_code == 200
        assert b"at least one active admin" in response.content
        tenant.admin.refresh_from_db()
        assert tenant.admin.role == Role.ADMIN

    def test_created_user_lands_in_own_org(self, tenant, other_tenant):
        client = admin_client(tenant.admin)
        response = client.post(
            "/admin/accounts/user/add/",
            {
                "email": "Fresh@Acme.test",
                "name": "Fresh",
                "role": Role.MEMBER,
                "org": str(other_tenant.org.id),
                "password1": "a-strong-passphrase-1",
                "password2": "a-strong-passphrase-1",
            },
        )
        assert response.status_code == 302, response.content[:3000]
        user = User.objects.get(email="fresh@acme.test")
        assert user.org == tenant.org and not user.is_superuser

    def test_created_invitation_lands_in_own_org(self, tenant, other_tenant, sent_mail):
        client = admin_client(tenant.admin)
        with sent_mail("new@x.test") as got:
            response = client.post(
                "/admin/organizations/invitation/add/",
                {
                    "email": "new@x.test",
                    "role": "member",
                    "org": str(other_tenant.org.id),
                    "expires_at_0": (timezone.now() + timedelta(days=3)).date().isoformat(),
                    "expires_at_1": "00:00:00",
                },
            )
        assert response.status_code == 302
        invitation = Invitation.unscoped_objects.get(email="new@x.test")
        assert invitation.org == tenant.org and invitation.created_by == tenant.admin
        # The token goes to the invitee only, by mail: never to the admin's page or cookies.
        assert invitation.token_hash == hashlib.sha256(got.token.encode()).hexdigest()
        assert "Acme" in got.message["From"] and "Acme" in got.message["Subject"]
        page = client.get(response["Location"]).content
        assert b"Invitation mailed to new@x.test" in page and got.token.encode() not in page

    def test_an_invitation_cannot_outlive_its_ttl(self, tenant):
        response = admin_client(tenant.admin).post(
            "/admin/organizations/invitation/add/",
            {"email": "late@x.test", "role": "member", "expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
        )
        assert response.status_code == 200 and b"expires within" in response.content
        assert not Invitation.unscoped_objects.filter(email="late@x.test").exists()

    def test_cannot_add_or_delete_organizations(self, tenant):
        client = admin_client(tenant.admin)
        assert client.get("/admin/organizations/organization/add/").status_code == 403
        client.post(f"/admin/organizations/organization/{tenant.org.id}/delete/", {"post": "yes"})
        assert Organization.objects.filter(pk=tenant.org.pk).exists()


class TestSuperuser:
    def test_sees_every_org(self, tenant, other_tenant, superuser, invitations):
        client = admin_client(superuser)
        users = client.get("/admin/accounts/user/").content
        assert b"member@acme.test" in users and b"member@globex.test" in users
        invites = client.get("/admin/organizations/invitation/").content
        assert b"guest@acme.test" in invites and b"guest@globex.test" in invites

    def test_can_move_a_user(self, tenant, other_tenant, superuser):
        member = make_user(tenant.org)
        client = admin_client(superuser)
        change = client.get(f"/admin/accounts/user/{member.id}/change/")
        assert b'name="org"' in change.content and b'name="is_superuser"' in change.content


class TestInvitationsThroughTheServices:
    """Issue 17: invite (mailed), resend (a new link), revoke, from the admin."""

    ADD = "/admin/organizations/invitation/add/"
    LIST = "/admin/organizations/invitation/"

    def add(self, client, email, **extra):
        expires = (timezone.now() + timedelta(days=3)).date().isoformat()
        form = {"email": email, "role": "member", "expires_at_0": expires, "expires_at_1": "00:00:00", **extra}
        return client.post(self.ADD, form)

    def test_resend_mails_a_new_link_and_the_old_one_stops_working(self, tenant, sent_mail):
        client = admin_client(tenant.admin)
        with sent_mail("new@x.test") as first:
            self.add(client, "new@x.test")
        invitation = Invitation.unscoped_objects.get(email="new@x.test")
        Invitation.unscoped_objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(hours=1))
        assert "expired" in client.get(self.LIST).content.decode()
        with sent_mail("new@x.test") as second:
            response = client.post(self.LIST, {"action": "resend", "_selected_action": [str(invitation.pk)]})
        assert response.status_code == 302
        invitation.refresh_from_db()
        assert second.token != first.token
        assert invitation.token_hash == hashlib.sha256(second.token.encode()).hexdigest()
        assert invitation.expires_at > timezone.now() + timedelta(days=6)
        page = client.get(self.LIST).content.decode()
        assert "Invitation mailed again to new@x.test" in page and "pending" in page
        assert second.token not in page

    def test_an_accepted_invitation_is_not_resent(self, tenant):
        accepted = Invitation.unscoped_objects.create(
            org=tenant.org, email="in@x.test", token_hash="h", accepted_at=timezone.now()
        )
        client = admin_client(tenant.admin)
        client.post(self.LIST, {"action": "resend", "_selected_action": [str(accepted.pk)]})
        assert "Not sent: in@x.test: This invitation was accepted already." in client.get(self.LIST).content.decode()
        accepted.refresh_from_db()
        assert accepted.token_hash == "h"

    def test_the_service_s_refusals_come_back_as_messages(self, tenant):
        client = admin_client(tenant.admin)
        response = self.add(client, tenant.member.email)
        assert response.status_code == 302
        assert "A user with this email already exists." in client.get(response["Location"]).content.decode()
        tenant.admin.email_verified_at = None
        tenant.admin.save(update_fields=["email_verified_at"])
        response = self.add(client, "fresh@x.test")
        assert "Verify your email address before inviting others" in client.get(response["Location"]).content.decode()
        assert not Invitation.unscoped_objects.exists()

    def test_revoke_and_another_org_s_invitations(self, tenant, other_tenant, invitations):
        client = admin_client(tenant.admin)
        mine = Invitation.unscoped_objects.get(org=tenant.org)
        theirs = Invitation.unscoped_objects.get(org=other_tenant.org)
        page = client.get(f"/admin/organizations/invitation/{mine.pk}/change/").content.decode()
        assert 'id="resend"' in page and "Revoke" in page
        client.post(self.LIST, {"action": "resend", "_selected_action": [str(theirs.pk)]})
        theirs.refresh_from_db()
        assert theirs.token_hash == other_tenant.org.slug  # not in the selection: unchanged
        client.post(f"/admin/organizations/invitation/{mine.pk}/delete/", {"post": "yes"})
        client.post(f"/admin/organizations/invitation/{theirs.pk}/delete/", {"post": "yes"})
        assert list(Invitation.unscoped_objects.values_list("org_id", flat=True)) == [other_tenant.org.id]

    @pytest.mark.parametrize(
        "email, said", [("not-an-email", "Enter a valid email address."), ("a\x00@x.test", "Null characters")]
    )
    def test_bad_input_is_said_on_the_form(self, tenant, email, said):
        response = self.add(admin_client(tenant.admin), email)
        assert response.status_code == 200 and said in response.content.decode()
        assert not Invitation.unscoped_objects.exists()


class TestApiKeysInTheAdmin:
    def test_a_key_is_made_shown_once_and_revoked(self, tenant, other_tenant):
        from organizations import api_keys
        from organizations.models import ApiKey

        client = admin_client(tenant.admin)
        page = client.post(
            "/admin/organizations/apikey/add/", {"name": "Nightly export", "role": "member", "scopes": ["read"]}
        )
        assert page.status_code == 200
        key = ApiKey.unscoped_objects.get(org=tenant.org)
        html = page.content.decode()
        plain = html.split('id="api-key">')[1].split("<")[0]
        assert api_keys.key_hash(plain) == key.key_hash and "shown this once" in html
        listing = client.get("/admin/organizations/apikey/").content.decode()
        assert f"pk_{key.prefix}_…" in listing and plain not in listing
        with org_scope(other_tenant.org.pk):
            theirs, _ = api_keys.api_key_create(
                org=other_tenant.org, user=other_tenant.admin, name="Theirs", role="member", scopes=["read"]
            )
        assert "Theirs" not in listing
        client.post(
            "/admin/organizations/apikey/",
            {"action": "revoke", "_selected_action": [str(key.pk), str(theirs.pk)]},
        )
        key.refresh_from_db()
        theirs.refresh_from_db()
        assert key.revoked_at is not None and theirs.revoked_at is None

    def test_an_admin_cannot_make_a_key_above_their_role_nor_a_bad_one(self, tenant):
        from organizations.models import ApiKey

        User.objects.filter(pk=tenant.admin.pk).update(role=Role.ADMIN)
        client = admin_client(tenant.admin)
        response = client.post("/admin/organizations/apikey/add/", {"name": "", "role": "owner", "scopes": []})
        assert response.status_code == 200 and "This field is required" in response.content.decode()
        assert not ApiKey.unscoped_objects.exists()
