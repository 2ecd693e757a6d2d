"""Regression tests for issues found in review: stale saves, forged cursors, non-finite
numbers, brute force through the admin or the password change, admin name clashes."""

import base64

import pytest
from django.test import Client

from accounts.models import Role, User
from accounts.services import user_update_profile
from conftest import PASSWORD, assert_error_shape
from organizations.models import Organization
from organizations.services import organization_update

pytestmark = pytest.mark.django_db


def test_profile_update_never_reverts_a_concurrent_role_change(tenant):
    stale = User.objects.get(pk=tenant.member.pk)  # loaded when the request authenticated
    User.objects.filter(pk=stale.pk).update(role=Role.ADMIN, is_active=False)  # an admin acted meanwhile
    user_update_profile(user=stale, name="New name")
    fresh = User.objects.get(pk=stale.pk)
    assert (fresh.name, fresh.role, fresh.is_active) == ("New name", Role.ADMIN, False)


def test_org_rename_never_reverts_deactivation_or_event_numbers(tenant):
    stale = Organization.objects.get(pk=tenant.org.pk)
    Organization.objects.filter(pk=stale.pk).update(is_active=False, event_seq=41)
    organization_update(org=stale, name="Renamed")
    fresh = Organization.objects.get(pk=stale.pk)
    assert (fresh.name, fresh.is_active, fresh.event_seq) == ("Renamed", False, 41)


def cursor(position: str) -> str:
    return base64.b64encode(f"p={position}".encode()).decode()


@pytest.mark.parametrize("url", ["/api/v1/jobs/", "/api/v1/documents/", "/api/v1/org/users/", "/api/v1/summaries/"])
@pytest.mark.parametrize("position", ["x", "%00", "2026-13-45", "9" * 2000])
def test_forged_cursor_positions_are_404_not_500(tenant, url, position):
    assert_error_shape(tenant.client().get(url, {"cursor": cursor(position)}), 404)


def test_forged_title_cursor(tenant):
    response = tenant.client().get("/api/v1/documents/", {"ordering": "title", "cursor": cursor("%00")})
    assert_error_shape(response, 404)


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"1" + b"0" * 5000])
def test_non_finite_or_absurd_numbers_are_400(tenant, number):
    body = b'{"title": "t", "content": "c", "metadata": {"a": ' + number + b"}}"
    response = tenant.client().generic("POST", "/api/v1/documents/", body, content_type="application/json")
    assert_error_shape(response, 400)


def test_admin_login_is_throttled(tenant):
    client = Client()
    for n in range(10):
        client.post("/admin/login/", {"username": f"guess{n}@acme.test", "password": "wrong"})
    response = client.post("/admin/login/", {"username": tenant.admin.email, "password": PASSWORD})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_admin_login_failures_back_off_without_locking_the_owner_out(tenant, settings):
    settings.LOGIN_FREE_FAILURES = 1
    attacker, owner = Client(REMOTE_ADDR="198.51.100.7"), Client(REMOTE_ADDR="203.0.113.5")
    statuses = [attacker.post("/admin/login/", {"username": tenant.admin.email, "password": "no"}).status_code]
    for _ in range(4):  # 1 s, 2 s, 4 s, 8 s of backoff after the failures
        statuses.append(attacker.post("/admin/login/", {"username": tenant.admin.email, "password": "no"}).status_code)
        assert owner.post("/admin/login/", {"username": tenant.admin.email, "password": PASSWORD}).status_code == 302
    assert statuses[:2] == [200, 200] and set(statuses) <= {200, 429}, statuses
    refused = attacker.post("/admin/login/", {"username": tenant.admin.email, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert owner.post("/admin/login/", {"username": tenant.admin.email, "password": PASSWORD}).status_code == 302


def test_admin_login_throttle_counts_clients_behind_the_proxy_apart(tenant, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    attacker, bystander = Client(REMOTE_ADDR="10.0.0.2"), Client(REMOTE_ADDR="10.0.0.2")  # both via the proxy
    for n in range(10):
        attacker.post(
            "/admin/login/", {"username": f"guess{n}@x.test", "password": "no"}, HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
    refused = attacker.post(
        "/admin/login/", {"username": "guess@x.test", "password": "no"}, HTTP_X_FORWARDED_FOR="198.51.100.7"
    )
    assert refused.status_code == 429
    response = bystander.post(
        "/admin/login/", {"username": tenant.admin.email, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.5"
    )
    assert response.status_code == 302  # logged in: another client's guesses do not lock it out


def test_password_guessing_through_me_is_throttled(tenant):
    client = tenant.client(tenant.member)
    for _ in range(10):
        client.patch("/api/v1/auth/me/", {"current_password": "wrong", "new_password": "another-long-pass-1"})
    response = client.patch("/api/v1/auth/me/", {"current_password": PASSWORD, "new_password": "another-long-pass-1"})
    assert_error_shape(response, 429, "throttled")
    assert tenant.client(tenant.member).patch("/api/v1/auth/me/", {"name": "still fine"}).status_code == 200


def test_template_name_clash_in_admin_is_a_form_error(tenant):
    from templates_app.models import Template

    Template.unscoped_objects.create(org=tenant.org, name="Taken", body="{{ today }}")
    client = Client()
    assert client.login(email=tenant.admin.email, password=PASSWORD)
    response = client.post("/admin/templates_app/template/add/", {"name": "Taken", "body": "{{ today }}"})
    assert response.status_code == 200 and b"already exists" in response.content
    assert Template.unscoped_objects.filter(org=tenant.org, name="Taken").count() == 1
