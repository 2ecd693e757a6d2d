"""Auth API: register, login, refresh rotation, logout, me — per API.md."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Role, User
from accounts.tokens import PrecisRefreshToken, token_pair_for
from conftest import PASSWORD, assert_error_shape, auth_client
from organizations.models import Organization

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"


def register(client, **overrides):
    body = {"email": "Founder@Example.TEST", "password": PASSWORD, "name": "Ada", "organization_name": "Initech"}
    body.update(overrides)
    return client.post(REGISTER, body, format="json")


class TestRegister:
    def test_creates_org_and_admin_with_tokens(self, anon):
        response = register(anon)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["user"]["email"] == "founder@example.test"
        assert body["user"]["role"] == "admin"
        assert body["organization"]["name"] == "Initech"
        assert body["organization"]["slug"] == "initech"
        claims = AccessToken(body["access"])
        user = User.objects.get(email="founder@example.test")
        assert claims["user_id"] == str(user.id)
        assert claims["org_id"] == str(user.org_id) == body["organization"]["id"]
        assert claims["role"] == "admin"
        assert auth_client(user).get(ME).json()["organization"]["slug"] == "initech"

    def test_same_org_name_gets_a_distinct_slug(self, anon):
        assert register(anon).status_code == 201
        second = register(anon, email="other@example.test")
        assert second.status_code == 201
        assert second.json()["organization"]["slug"] == "initech-2"

    def test_duplicate_email_case_insensitive(self, anon, tenant):
        response = register(anon, email=tenant.admin.email.upper())
        assert_error_shape(response, 400, "email_taken", "email")
        assert Organization.objects.filter(name="Initech").count() == 0

    def test_weak_password_refused_and_nothing_created(self, anon):
        response = register(anon, password="123")
        assert_error_shape(response, 400, "weak_password", "password")
        assert not User.objects.filter(email="founder@example.test").exists()
        assert not Organization.objects.filter(name="Initech").exists()

    @pytest.mark.parametrize(
        "overrides, attr",
        [
            ({"email": "not-an-email"}, "email"),
            ({"email": 12}, "email"),
            ({"organization_name": ["x"]}, "organization_name"),
            ({"organization_name": "x" * 201}, "organization_name"),
            ({"password": None}, "password"),
            ({"role": "admin"}, "role"),  # unknown field: refused, never applied
            ({"org": "00000000-0000-0000-0000-000000000000"}, "org"),
        ],
    )
    def test_bad_input(self, anon, overrides, attr):
        assert_error_shape(register(anon, **overrides), 400, attr=attr)
        assert not User.objects.exists()

    def test_needs_exactly_one_of_org_name_or_invitation(self, anon):
        response = anon.post(REGISTER, {"email": "a@example.test", "password": PASSWORD}, format="json")
        assert_error_shape(response, 400, "organization_or_invitation_required")

    def test_join_by_invitation(self, anon, tenant, invite):
        token = invite(tenant.client(), "New@Example.test")
        response = anon.post(
            REGISTER, {"email": "new@example.test", "password": PASSWORD, "invitation_token": token}, format="json"
        )
        assert response.status_code == 201, response.content
        user = User.objects.get(email="new@example.test")
        assert user.org == tenant.org and user.role == Role.MEMBER
        # single use
        again = anon.post(
            REGISTER, {"email": "new2@example.test", "password": PASSWORD, "invitation_token": token}, format="json"
        )
        assert_error_shape(again, 400, "invalid_invitation", "invitation_token")

    def test_invitation_for_another_email_refused(self, anon, tenant, invite):
        token = invite(tenant.client(), "x@example.test")
        response = anon.post(
            REGISTER, {"email": "y@example.test", "password": PASSWORD, "invitation_token": token}, format="json"
        )
        assert_error_shape(response, 400, "email_mismatch", "email")
        assert not User.objects.filter(email="y@example.test").exists()

    def test_expired_invitation_refused(self, anon, tenant, invite):
        from django.utils import timezone

        from organizations.models import Invitation

        token = invite(tenant.client(), "x2@example.test")
        Invitation.unscoped_objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        response = anon.post(
            REGISTER, {"email": "x2@example.test", "password": PASSWORD, "invitation_token": token}, format="json"
        )
        assert_error_shape(response, 400, "invitation_expired")

    def test_invitation_with_admin_role(self, anon, tenant, invite):
        token = invite(tenant.client(), "boss@example.test", "admin")
        response = anon.post(
            REGISTER,
            {"email": "boss@example.test", "password": PASSWORD, "invitation_token": token},
            format="json",
        )
        assert response.json()["user"]["role"] == "admin"


class TestLogin:
    def test_login_case_insensitive_email(self, anon, tenant):
        response = anon.post(LOGIN, {"email": "  ADMIN@acme.TEST ", "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content
        assert set(response.json()) == {"access", "refresh"}

    def test_wrong_password_401(self, anon, tenant):
        response = anon.post(LOGIN, {"email": tenant.admin.email, "password": "nope"}, format="json")
        assert_error_shape(response, 401, "invalid_credentials")

    def test_inactive_user_401(self, anon, tenant):
        tenant.member.is_active = False
        tenant.member.save()
        response = anon.post(LOGIN, {"email": tenant.member.email, "password": PASSWORD}, format="json")
        assert_error_shape(response, 401, "invalid_credentials")

    def test_inactive_org_401(self, anon, tenant):
        Organization.objects.filter(pk=tenant.org.pk).update(is_active=False)
        response = anon.post(LOGIN, {"email": tenant.member.email, "password": PASSWORD}, format="json")
        assert_error_shape(response, 401)

    def test_missing_fields_400(self, anon):
        assert_error_shape(anon.post(LOGIN, {}, format="json"), 400, attr="email")


class TestThrottling:
    def test_failed_logins_back_off_per_account_and_client(self, anon, tenant, settings):
        settings.LOGIN_FREE_FAILURES = 1
        attacker = {"REMOTE_ADDR": "198.51.100.7"}
        statuses = []
        for _ in range(5):
            assert (
                anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json").status_code == 200
            )
            statuses.append(
                anon.post(LOGIN, {"email": tenant.admin.email, "password": "x"}, format="json", **attacker).status_code
            )
        # each failure after the first doubles the wait: the 5th means 8 s; the last try may
        # already have met the backoff (401s, then 429s, as fast as this machine goes)
        assert statuses[:2] == [401, 401] and set(statuses) <= {401, 429}, statuses
        response = anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json", **attacker)
        body = assert_error_shape(response, 429, "throttled")
        assert int(response["Retry-After"]) >= 1, body
        # The owner, elsewhere, is never locked out by someone else's guesses.
        owner = anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json")
        assert owner.status_code == 200

    def test_backoff_doubles_is_capped_and_clears_on_success(self, tenant, settings, rf):
        from accounts.throttles import THROTTLE_CACHE, LoginBackoff

        settings.LOGIN_FREE_FAILURES, settings.LOGIN_BACKOFF_MAX_S = 2, 30
        backoff = LoginBackoff(rf.post(LOGIN, REMOTE_ADDR="198.51.100.8"), tenant.admin.email.upper())
        waits = []
        for _ in range(9):
            backoff.failed()
            waits.append(round(backoff.wait()))
        assert waits == [0, 0, 1, 2, 4, 8, 16, 30, 30]  # backoff, never a lock
        state = THROTTLE_CACHE.get(backoff.key)
        THROTTLE_CACHE.set(backoff.key, {**state, "until": state["until"] - 31}, 60)  # its wait is over
        client = APIClient(REMOTE_ADDR="198.51.100.8")
        assert client.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json").status_code == 200
        assert backoff.wait() == 0 and THROTTLE_CACHE.get(backoff.key) is None

    def test_login_per_ip_throttled(self, anon, tenant):
        for i in range(10):
            anon.post(LOGIN, {"email": f"u{i}@example.test", "password": "x"}, format="json")
        response = anon.post(LOGIN, {"email": "another@example.test", "password": "x"}, format="json")
        assert_error_shape(response, 429, "throttled")
        assert "Retry-After" in response

    def test_register_per_ip_throttled(self, anon):
        for i in range(5):
            register(anon, email=f"f{i}@example.test", organization_name=f"Org {i}")
        response = register(anon, email="late@example.test", organization_name="Late")
        assert_error_shape(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0


class TestRefreshAndLogout:
    def test_refresh_rotates_and_reuse_is_401(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        first = anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json")
        assert first.status_code == 200, first.content
        new = first.json()
        assert new["refresh"] != pair["refresh"]
        reuse = anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json")
        assert_error_shape(reuse, 401, "token_not_valid")
        # the rotated one works, and its access token authenticates
        assert anon.post(REFRESH, {"refresh": new["refresh"]}, format="json").status_code == 200
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {new['access']}")
        assert anon.get(ME).status_code == 200

    def test_refresh_reflects_current_role(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        User.objects.filter(pk=tenant.member.pk).update(role=Role.ADMIN)
        new = anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json").json()
        assert AccessToken(new["access"])["role"] == "admin"

    def test_refresh_for_deactivated_user_401(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        User.objects.filter(pk=tenant.member.pk).update(is_active=False)
        assert_error_shape(anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json"), 401)

    def test_access_token_is_not_a_refresh_token(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        assert_error_shape(anon.post(REFRESH, {"refresh": pair["access"]}, format="json"), 401)

    def test_garbage_refresh_401(self, anon):
        assert_error_shape(anon.post(REFRESH, {"refresh": "garbage"}, format="json"), 401)

    def test_logout_blacklists_refresh(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        client = auth_client(tenant.member)
        response = client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json")
        assert response.status_code == 204
        assert_error_shape(anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json"), 401)

    def test_logout_with_someone_elses_token_400(self, tenant):
        other = token_pair_for(tenant.admin)
        response = auth_client(tenant.member).post(LOGOUT, {"refresh": other["refresh"]}, format="json")
        assert_error_shape(response, 400, "token_not_valid", "refresh")

    def test_logout_requires_auth(self, anon):
        assert_error_shape(anon.post(LOGOUT, {"refresh": "x"}, format="json"), 401)


class TestTokenChecks:
    def test_deactivated_users_valid_token_refused_at_once(self, tenant):
        client = auth_client(tenant.member)
        assert client.get(ME).status_code == 200
        User.objects.filter(pk=tenant.member.pk).update(is_active=False)
        assert_error_shape(client.get(ME), 401, "user_inactive")

    def test_user_moved_to_another_org_refused(self, tenant, other_tenant):
        client = auth_client(tenant.member)
        User.objects.filter(pk=tenant.member.pk).update(org=other_tenant.org)
        assert_error_shape(client.get(ME), 401, "organization_mismatch")

    def test_deactivated_org_refused(self, tenant):
        client = auth_client(tenant.member)
        Organization.objects.filter(pk=tenant.org.pk).update(is_active=False)
        assert_error_shape(client.get(ME), 401)

    def test_expired_access_token_401(self, anon, tenant):
        token = PrecisRefreshToken.for_user(tenant.member).access_token
        token.set_exp(lifetime=-timedelta(seconds=1))
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_error_shape(anon.get(ME), 401, "token_not_valid")

    def test_missing_and_malformed_header_401(self, anon):
        assert_error_shape(anon.get(ME), 401, "not_authenticated")
        anon.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
        assert_error_shape(anon.get(ME), 401)

    def test_token_lifetimes_within_contract(self, tenant):
        refresh = PrecisRefreshToken.for_user(tenant.member)
        access = refresh.access_token
        assert access["exp"] - access["iat"] <= 15 * 60
        assert refresh["exp"] - refresh["iat"] <= 7 * 24 * 3600


class TestMe:
    def test_get_me(self, tenant):
        body = auth_client(tenant.member).get(ME).json()
        assert body["email"] == tenant.member.email
        assert body["role"] == "member"
        assert body["organization"] == {"id": str(tenant.org.id), "name": "Acme", "slug": "acme"}
        assert set(body) == {"id", "email", "email_verified", "name", "role", "organization", "date_joined"}
        assert body["email_verified"] is True

    def test_patch_name_and_read_only_fields_not_applied(self, tenant, other_tenant):
        client = auth_client(tenant.member)
        response = client.patch(
            ME, {"name": "Grace", "role": "admin", "email": "x@evil.test", "id": str(other_tenant.admin.id)}
        )
        assert response.status_code == 200, response.content
        tenant.member.refresh_from_db()
        assert tenant.member.name == "Grace"
        assert tenant.member.role == Role.MEMBER
        assert tenant.member.email == "member@acme.test"

    def test_org_in_payload_refused(self, tenant, other_tenant):
        response = auth_client(tenant.member).patch(ME, {"org": str(other_tenant.org.id)})
        assert_error_shape(response, 400, "unknown_field", "org")
        tenant.member.refresh_from_db()
        assert tenant.member.org == tenant.org

    def test_password_change_revokes_tokens(self, anon, tenant):
        pair = token_pair_for(tenant.member)
        client = auth_client(tenant.member)
        response = client.patch(ME, {"current_password": PASSWORD, "new_password": "a-much-better-passphrase"})
        assert response.status_code == 200, response.content
        assert_error_shape(client.get(ME), 401, "password_changed")
        assert_error_shape(anon.post(REFRESH, {"refresh": pair["refresh"]}, format="json"), 401)
        login = anon.post(LOGIN, {"email": tenant.member.email, "password": "a-much-better-passphrase"}, format="json")
        assert login.status_code == 200

    def test_password_change_needs_current_password(self, tenant):
        response = auth_client(tenant.member).patch(ME, {"current_password": "wrong", "new_password": "zz-new-pass-99"})
        assert_error_shape(response, 400, "wrong_password", "current_password")

    def test_weak_new_password(self, tenant):
        response = auth_client(tenant.member).patch(ME, {"current_password": PASSWORD, "new_password": "1234"})
        assert_error_shape(response, 400, "weak_password", "new_password")

    def test_name_too_long(self, tenant):
        assert_error_shape(auth_client(tenant.member).patch(ME, {"name": "n" * 201}), 400, attr="name")


@pytest.fixture
def cache_on_own_redis(settings):
    """The cache (and so the throttles) on a redis-server of this test's own."""
    from config.tests.process_fixtures import OwnRedis, redis_cache_settings

    server = OwnRedis().start()
    settings.CACHES = redis_cache_settings(server.url)
    yield server
    server.stop()


def test_login_works_while_redis_is_down(anon, tenant, cache_on_own_redis, monkeypatch):
    """Redis stopped: login answers, throttled by a per-process limiter, and goes back to
    Redis once it answers again."""
    import redis

    from accounts.throttles import THROTTLE_CACHE, ThrottleCache

    monkeypatch.setattr(ThrottleCache, "RETRY_AFTER_S", 0.0)  # look at Redis on every request
    ok = anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json")
    assert ok.status_code == 200
    own = redis.Redis.from_url(cache_on_own_redis.url)
    assert any(b"throttle_login_ip" in key for key in own.keys("*"))

    cache_on_own_redis.stop()
    statuses = [
        anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json").status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [200] * 10  # counted afresh in this process (LOGIN_THROTTLE_RATE 10/min)
    assert statuses[10] == 429  # the per-process limiter still limits
    assert THROTTLE_CACHE.degraded is False  # RETRY_AFTER_S=0: it tries Redis again next time

    cache_on_own_redis.start()  # back, empty
    THROTTLE_CACHE.local.clear()
    assert anon.post(LOGIN, {"email": tenant.admin.email, "password": PASSWORD}, format="json").status_code == 200
    assert any(b"throttle_login_ip" in key for key in own.keys("*"))
