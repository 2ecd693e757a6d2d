"""Connecting providers: authorization code + PKCE + state against a loopback authorization server."""

import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import PASSWORD, assert_error_shape
from integrations.models import Integration, OAuthState
from integrations.services import integration_access_token, refresh_expiring_tokens
from integrations.tests.fake_providers import Failure
from organizations.tenancy import org_scope

pytestmark = pytest.mark.django_db

BASE = "/api/v1/integrations/"
NONCE_COOKIE = "precis_oauth_nonce"


def authorize(client, provider="google_drive", **body):
    return client.post(f"{BASE}{provider}/authorize/", body, format="json")


def connect(tenant, fake, provider="google_drive", **body) -> dict:
    browser = tenant.client()  # one browser for both legs: it carries the nonce cookie back
    response = authorize(browser, provider, **body)
    assert response.status_code == 200, response.content
    code, state = fake.authorize(response.json()["authorization_url"])
    callback = browser.get(f"{BASE}{provider}/callback/", {"code": code, "state": state})
    assert callback.status_code == 201, callback.content
    return callback.json()


def test_authorize_url_carries_state_and_pkce(tenant, fake_providers):
    url = authorize(tenant.client()).json()["authorization_url"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{fake_providers.url}/oauth/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["state"][0]) >= 32
    assert query["redirect_uri"] == ["http://testserver/api/v1/integrations/google_drive/callback/"]
    assert query["access_type"] == ["offline"]
    state = OAuthState.unscoped_objects.get()
    assert state.state_hash != query["state"][0] and state.org == tenant.org and state.user == tenant.admin


def test_full_connect_stores_encrypted_tokens_and_never_shows_them(tenant, fake_providers):
    body = connect(tenant, fake_providers)
    assert body["provider"] == "google_drive" and body["account_name"] == "owner@acme.test"
    assert body["status"] == "active"
    integration = Integration.unscoped_objects.get(pk=body["id"])
    token = integration.access_token
    assert token.startswith("at-") and integration.refresh_token.startswith("rt-")
    with connection.cursor() as cursor:  # the raw columns hold ciphertext only
        cursor.execute(
            "SELECT access_token_encrypted, refresh_token_encrypted FROM integrations_integration WHERE id = %s",
            [integration.pk],
        )
        raw = " ".join(cursor.fetchone())
    assert token not in raw and integration.refresh_token not in raw and raw.startswith("gAAAA")
    for response in (tenant.client().get(BASE), tenant.client().get(f"{BASE}{body['id']}/")):
        assert token not in response.content.decode() and "refresh" not in response.content.decode()


def test_pkce_verifier_and_client_credentials_are_checked(tenant, fake_providers, settings):
    browser = tenant.client()
    url = authorize(browser).json()["authorization_url"]
    code, state = fake_providers.authorize(url)
    # a different verifier than the challenge was made from: the provider refuses, nothing stored
    OAuthState.unscoped_objects.update(
        code_verifier_encrypted=__import__("integrations.crypto").crypto.encrypt("x" * 64)
    )
    response = browser.get(f"{BASE}google_drive/callback/", {"code": code, "state": state})
    assert_error_shape(response, 400, "oauth_exchange_failed")
    assert not Integration.unscoped_objects.exists()


@pytest.mark.parametrize("case", ["forged", "reused", "expired", "other_provider", "denied"])
def test_bad_state_is_400_and_stores_nothing(tenant, fake_providers, case):
    browser = tenant.client()
    url = authorize(browser).json()["authorization_url"]
    code, state = fake_providers.authorize(url)
    provider, params = "google_drive", {"code": code, "state": state}
    if case == "forged":
        params["state"] = "made-up-state"
    elif case == "reused":
        replay = browser.cookies[NONCE_COOKIE].value  # the callback clears it; a replay brings it back
        assert browser.get(f"{BASE}google_drive/callback/", params).status_code == 201
        browser.cookies[NONCE_COOKIE] = replay
        Integration.unscoped_objects.all().delete()
    elif case == "expired":
        OAuthState.unscoped_objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "other_provider":
        provider = "notion"
    elif case == "denied":
        params = {"state": state, "error": "access_denied"}
    response = browser.get(f"{BASE}{provider}/callback/", params)
    assert_error_shape(response, 400)
    assert not Integration.unscoped_objects.exists()


def test_callback_redirects_to_the_frontend(tenant, fake_providers, settings, anon):
    settings.FRONTEND_URL = "https://app.precis.example"
    browser = tenant.client()
    code, state = fake_providers.authorize(authorize(browser).json()["authorization_url"])
    browser.credentials()  # the provider's redirect is a plain navigation: the cookie, no JWT
    response = browser.get(f"{BASE}google_drive/callback/", {"code": code, "state": state})
    integration = Integration.unscoped_objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"https://app.precis.example/integrations?connected={integration.pk}"
    assert integration.org == tenant.org and integration.created_by == tenant.admin
    bad = anon.get(f"{BASE}google_drive/callback/", {"code": "x", "state": "nope"})
    assert bad.status_code == 302 and bad["Location"].endswith("?error=invalid_state")


class TestStateIsBoundToTheBrowser:
    """Issue 15: an admin's authorization link, opened in someone else's browser, must not
    connect that person's account to the admin's organization."""

    def start(self, tenant, fake) -> tuple[APIClient, dict]:
        """The admin's browser asks for a link; returns it and the callback's parameters."""
        browser = tenant.client()
        code, state = fake.authorize(authorize(browser).json()["authorization_url"])
        return browser, {"code": code, "state": state}

    @pytest.mark.parametrize("victim_cookie", ["none", "another_state"])
    def test_a_callback_from_another_browser_is_refused_and_spends_the_state(
        self, tenant, other_tenant, fake_providers, anon, victim_cookie
    ):
        attacker, params = self.start(tenant, fake_providers)
        victim = anon
        if victim_cookie == "another_state":  # the victim started a flow of their own, too
            victim_flow = other_tenant.client()
            assert authorize(victim_flow).status_code == 200
            victim.cookies[NONCE_COOKIE] = victim_flow.cookies[NONCE_COOKIE].value
        response = victim.get(f"{BASE}google_drive/callback/", params)
        assert_error_shape(response, 400, "state_browser_mismatch", "state")
        assert not Integration.unscoped_objects.exists()
        # The state is spent: the attacker's own browser cannot redeem the victim's code with it.
        attacked = OAuthState.unscoped_objects.get(org=tenant.org)
        assert attacked.used_at is not None
        assert_error_shape(attacker.get(f"{BASE}google_drive/callback/", params), 400, "invalid_state")
        assert not Integration.unscoped_objects.exists()

    def test_a_foreign_browser_is_sent_back_to_the_frontend_with_the_error(
        self, tenant, fake_providers, settings, anon
    ):
        settings.FRONTEND_URL = "https://app.precis.example"
        _attacker, params = self.start(tenant, fake_providers)
        response = anon.get(f"{BASE}google_drive/callback/", params)
        assert response.status_code == 302
        assert response["Location"] == "https://app.precis.example/integrations?error=state_browser_mismatch"
        assert not Integration.unscoped_objects.exists()

    def test_the_browser_that_started_the_flow_finishes_it_and_the_cookie_is_cleared(self, tenant, fake_providers):
        browser, params = self.start(tenant, fake_providers)
        browser.credentials()
        response = browser.get(f"{BASE}google_drive/callback/", params)
        assert response.status_code == 201, response.content
        assert Integration.unscoped_objects.get().org == tenant.org
        cleared = response.cookies[NONCE_COOKIE]
        assert cleared.value == "" and cleared["max-age"] == 0
        assert cleared["path"] == "/api/v1/integrations/google_drive/callback/"

    def test_authorize_sets_an_http_only_lax_cookie_scoped_to_the_callback(self, tenant, fake_providers, settings):
        response = authorize(tenant.client())
        cookie = response.cookies[NONCE_COOKIE]
        assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
        assert cookie["path"] == "/api/v1/integrations/google_drive/callback/"
        assert cookie["max-age"] == settings.OAUTH_STATE_TTL_S
        assert cookie["secure"] is True  # not DEBUG: always Secure (TLS ends at the proxy)
        assert cookie.value not in response.content.decode()  # script never sees the nonce
        state = OAuthState.unscoped_objects.get()
        assert state.browser_nonce_hash == hashlib.sha256(cookie.value.encode()).hexdigest()
        assert cookie.value not in state.browser_nonce_hash

    @pytest.mark.parametrize("secure, expected", [(False, ""), (True, True)], ids=["http", "https"])
    def test_in_debug_the_cookie_is_secure_only_over_https(self, tenant, fake_providers, settings, secure, expected):
        settings.DEBUG = True  # `make run` on http://127.0.0.1
        response = tenant.client().post(f"{BASE}google_drive/authorize/", {}, format="json", secure=secure)
        assert response.cookies[NONCE_COOKIE]["secure"] == expected


def test_reconnect_keeps_the_integration_id(tenant, fake_providers):
    first = connect(tenant, fake_providers)
    Integration.unscoped_objects.filter(pk=first["id"]).update(status="needs_reauth")
    second = connect(tenant, fake_providers, integration_id=first["id"])
    assert second["id"] == first["id"] and second["status"] == "active"
    assert Integration.unscoped_objects.count() == 1


def test_roles_and_configuration(tenant, other_tenant, fake_providers, settings):
    assert_error_shape(authorize(tenant.client(tenant.member)), 403)
    assert_error_shape(authorize(tenant.client(), "myspace"), 404)
    assert_error_shape(authorize(tenant.client(), "webhook"), 404)
    theirs = connect(other_tenant, fake_providers)
    assert_error_shape(authorize(tenant.client(), integration_id=theirs["id"]), 400, "not_found", "integration_id")
    settings.INTEGRATION_PROVIDERS = {**settings.INTEGRATION_PROVIDERS, "notion": {"client_id": ""}}
    assert_error_shape(authorize(tenant.client(), "notion"), 400, "provider_not_configured")


def test_slack_v2_token_shape(tenant, fake_providers):
    body = connect(tenant, fake_providers, provider="slack")
    assert body["account_name"] == "Acme Slack"
    assert Integration.unscoped_objects.get(pk=body["id"]).external_account_id == "T1"


class TestRefresh:
    def test_refreshed_at_half_life_on_use_with_rotation(self, tenant, fake_providers):
        body = connect(tenant, fake_providers)
        integration = Integration.unscoped_objects.get(pk=body["id"])
        old_access, old_refresh = integration.access_token, integration.refresh_token
        with org_scope(tenant.org.id):
            assert integration_access_token(integration=integration) == old_access  # fresh: no refresh
            Integration.unscoped_objects.filter(pk=integration.pk).update(  # 31 min into a 60 min token
                token_issued_at=timezone.now() - timedelta(minutes=31),
                token_expires_at=timezone.now() + timedelta(minutes=29),
            )
            integration.refresh_from_db()
            new_access = integration_access_token(integration=integration)
        integration.refresh_from_db()
        assert new_access != old_access and integration.access_token == new_access
        assert integration.refresh_token != old_refresh  # the rotated refresh token was kept

    def test_beat_task_refreshes_expiring_tokens(self, tenant, fake_providers):
        body = connect(tenant, fake_providers)
        Integration.unscoped_objects.filter(pk=body["id"]).update(token_issued_at=timezone.now() - timedelta(hours=1))
        assert refresh_expiring_tokens() == {"refreshed": 1, "failed": 0}
        assert refresh_expiring_tokens() == {"refreshed": 0, "failed": 0}

    def test_one_broken_integration_does_not_stop_the_others(self, tenant, other_tenant, fake_providers):
        broken = connect(tenant, fake_providers)
        good = connect(other_tenant, fake_providers)
        stale = timezone.now() - timedelta(hours=1)
        Integration.unscoped_objects.filter(pk__in=[broken["id"], good["id"]]).update(token_issued_at=stale)
        Integration.unscoped_objects.filter(pk=broken["id"]).update(refresh_token_encrypted="not-a-fernet-token")
        assert refresh_expiring_tokens() == {"refreshed": 1, "failed": 1}
        assert Integration.unscoped_objects.get(pk=good["id"]).token_issued_at > stale

    def test_a_refresh_answer_without_a_token_is_a_failure_not_a_crash(self, tenant, fake_providers):
        body = connect(tenant, fake_providers)
        fake_providers.fail("/oauth/token", Failure(200, {}))
        Integration.unscoped_objects.filter(pk=body["id"]).update(token_issued_at=timezone.now() - timedelta(hours=1))
        assert refresh_expiring_tokens() == {"refreshed": 0, "failed": 1}
        assert Integration.unscoped_objects.get(pk=body["id"]).status == "active"

    def test_invalid_grant_means_reconnect(self, tenant, fake_providers):
        body = connect(tenant, fake_providers)
        fake_providers.refresh_tokens.clear()  # the provider forgot the grant
        Integration.unscoped_objects.filter(pk=body["id"]).update(token_issued_at=timezone.now() - timedelta(hours=1))
        assert refresh_expiring_tokens()["failed"] == 1
        assert Integration.unscoped_objects.get(pk=body["id"]).status == "needs_reauth"

    def test_transient_refresh_errors_do_not_disconnect(self, tenant, fake_providers):
        body = connect(tenant, fake_providers)
        fake_providers.fail("/oauth/token", Failure(503, {"error": "temporarily_unavailable"}))
        Integration.unscoped_objects.filter(pk=body["id"]).update(token_issued_at=timezone.now() - timedelta(hours=1))
        assert refresh_expiring_tokens()["failed"] == 1
        assert Integration.unscoped_objects.get(pk=body["id"]).status == "active"


def test_delete_revokes_then_deletes(tenant, fake_providers):
    body = connect(tenant, fake_providers)
    refresh = Integration.unscoped_objects.get(pk=body["id"]).refresh_token
    assert_error_shape(tenant.client(tenant.member).delete(f"{BASE}{body['id']}/"), 403)
    assert tenant.client().delete(f"{BASE}{body['id']}/").status_code == 204
    assert fake_providers.revoked == [refresh]
    assert not Integration.unscoped_objects.exists()


@pytest.mark.parametrize("how", ["button", "bulk"])
def test_admin_delete_revokes_too(tenant, fake_providers, how):
    from django.test import Client

    body = connect(tenant, fake_providers)
    refresh = Integration.unscoped_objects.get(pk=body["id"]).refresh_token
    client = Client()
    assert client.login(email=tenant.admin.email, password=PASSWORD)
    if how == "button":
        response = client.post(f"/admin/integrations/integration/{body['id']}/delete/", {"post": "yes"})
    else:
        response = client.post(
            "/admin/integrations/integration/",
            {"action": "delete_selected", "_selected_action": [body["id"]], "post": "yes"},
        )
    assert response.status_code == 302
    assert fake_providers.revoked == [refresh]
    assert not Integration.unscoped_objects.exists()


def test_providers_endpoint(tenant, fake_providers):
    rows = {p["name"]: p for p in tenant.client(tenant.member).get(f"{BASE}providers/").json()}
    assert set(rows) == {"google_drive", "notion", "slack", "webhook"}
    assert rows["google_drive"]["capabilities"] == ["import"] and rows["slack"]["capabilities"] == ["publish"]
    assert rows["notion"]["capabilities"] == ["import", "publish"] and rows["webhook"]["oauth"] is False
    assert all(p["configured"] for p in rows.values())


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_spend_the_rotating_refresh_token_once(tenant, fake_providers):
    """The provider rotates refresh tokens (the old one dies in the exchange). Two workers read
    the same stale integration; both must end with working tokens, not `needs_reauth`."""
    import threading

    from django.db import connections

    from integrations.services import integration_refresh

    body = connect(tenant, fake_providers)
    Integration.unscoped_objects.filter(pk=body["id"]).update(token_issued_at=timezone.now() - timedelta(hours=1))
    copies = [Integration.unscoped_objects.get(pk=body["id"]) for _ in range(2)]  # both read before either refreshes
    errors: list[BaseException] = []

    def refresh(integration):
        try:
            integration_refresh(integration=integration)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    final = Integration.unscoped_objects.get(pk=body["id"])
    assert final.status == "active"
    assert final.refresh_token in fake_providers.refresh_tokens  # the surviving, rotated one
    assert copies[0].access_token == copies[1].access_token == final.access_token
