"""Integration admin: tenant-scoped and without secrets."""

import pytest
from django.test import Client

from conftest import PASSWORD
from integrations.models import Integration, OAuthState

pytestmark = pytest.mark.django_db


def test_admin_scoped_and_secret_free(tenant, other_tenant):
    mine = Integration(org=tenant.org, provider="webhook", name="Our hook")
    mine.config = {"url": "https://hooks.example/x", "secret": "hook-secret-value"}
    mine.access_token = "token-value-123"
    mine.save()
    theirs = Integration(org=other_tenant.org, provider="slack", name="Their Slack")
    theirs.save()
    client = Client()
    assert client.login(email=tenant.admin.email, password=PASSWORD)
    listing = client.get("/admin/integrations/integration/").content
    assert b"Our hook" in listing and b"Their Slack" not in listing
    page = client.get(f"/admin/integrations/integration/{mine.pk}/change/").content
    for secret in (b"hook-secret-value", b"token-value-123", mine.access_token_encrypted.encode()):
        assert secret not in page
    assert client.get(f"/admin/integrations/integration/{theirs.pk}/change/").status_code == 302


ADD = "/admin/integrations/integration/add/"
CONNECT = "/admin/integrations/integration/connect/"
CALLBACK = "/api/v1/integrations/{}/callback/"


def admin_browser(user):
    client = Client()
    client.force_login(user)
    return client


class TestConnectFromTheAdmin:
    """Issue 17: the OAuth flow starts in the admin console and comes back to it."""

    def connect(self, browser, fake, provider="google_drive", url=None):
        """The admin's click, the provider's consent, the browser's way back: the last response."""
        started = browser.post(url or f"{CONNECT}{provider}/")
        assert started.status_code == 302 and started["Location"].startswith(fake.url), started
        assert browser.cookies["precis_oauth_nonce"]["httponly"]
        code, state = fake.authorize(started["Location"])
        return browser.get(CALLBACK.format(provider), {"code": code, "state": state})

    def test_the_add_page_offers_the_providers_and_a_webhook_form(self, tenant, fake_providers, settings):
        settings.INTEGRATION_PROVIDERS = {**settings.INTEGRATION_PROVIDERS, "notion": {}}
        page = admin_browser(tenant.admin).get(ADD).content.decode()
        assert 'id="connect-google_drive"' in page and 'id="connect-slack"' in page
        assert "Not configured on this server: set NOTION_CLIENT_ID and NOTION_CLIENT_SECRET." in page
        assert 'id="webhook-form"' in page and 'name="url"' in page
        listing = admin_browser(tenant.admin).get("/admin/integrations/integration/").content.decode()
        assert "Connect an integration" in listing

    def test_connecting_lands_on_the_new_integration_s_page(self, tenant, fake_providers):
        browser = admin_browser(tenant.admin)
        back = self.connect(browser, fake_providers)
        integration = Integration.unscoped_objects.get()
        assert back.status_code == 302
        assert back["Location"] == f"/admin/integrations/integration/{integration.pk}/change/"
        assert (integration.org_id, integration.created_by_id, integration.status) == (
            tenant.org.id,
            tenant.admin.id,
            "active",
        )
        page = browser.get(back["Location"]).content.decode()
        assert "Connected “google_drive: owner@acme.test”." in page
        assert 'id="reconnect"' in page and "Disconnect" in page

    def test_a_refusal_at_the_provider_comes_back_as_a_message(self, tenant, fake_providers):
        browser = admin_browser(tenant.admin)
        started = browser.post(f"{CONNECT}google_drive/")
        _code, state = fake_providers.authorize(started["Location"])
        back = browser.get(CALLBACK.format("google_drive"), {"state": state, "error": "access_denied"})
        assert back.status_code == 302 and back["Location"] == "/admin/integrations/integration/"
        page = browser.get(back["Location"]).content.decode()
        assert "Not connected: The provider did not authorize the connection (access_denied)." in page
        assert not Integration.unscoped_objects.exists()

    def test_the_api_s_flow_still_answers_json(self, tenant, fake_providers):
        browser = tenant.client()
        url = browser.post("/api/v1/integrations/google_drive/authorize/", {}, format="json").json()
        code, state = fake_providers.authorize(url["authorization_url"])
        assert browser.get(CALLBACK.format("google_drive"), {"code": code, "state": state}).status_code == 201

    def test_reconnecting_keeps_the_integration(self, tenant, fake_providers):
        browser = admin_browser(tenant.admin)
        self.connect(browser, fake_providers)
        integration = Integration.unscoped_objects.get()
        Integration.unscoped_objects.filter(pk=integration.pk).update(status="needs_reauth", status_detail="refused")
        listing = browser.get("/admin/integrations/integration/").content.decode()
        assert "needs_reauth" in listing.replace("Needs re-authorization", "needs_reauth") and "refused" in listing
        back = self.connect(browser, fake_providers, url=f"/admin/integrations/integration/{integration.pk}/reconnect/")
        assert back["Location"] == f"/admin/integrations/integration/{integration.pk}/change/"
        (again,) = Integration.unscoped_objects.all()
        assert again.pk == integration.pk and again.status == "active" and again.status_detail == ""

    def test_disconnecting_revokes_at_the_provider(self, tenant, fake_providers, django_capture_on_commit_callbacks):
        browser = admin_browser(tenant.admin)
        self.connect(browser, fake_providers)
        integration = Integration.unscoped_objects.get()
        token = integration.refresh_token
        response = browser.post(f"/admin/integrations/integration/{integration.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302 and not Integration.unscoped_objects.exists()
        assert fake_providers.revoked == [token]

    def test_connect_and_reconnect_take_posts_only(self, tenant, fake_providers):
        browser = admin_browser(tenant.admin)
        assert browser.get(f"{CONNECT}google_drive/").status_code == 405
        assert not OAuthState.unscoped_objects.exists()

    def test_an_unknown_or_unconfigured_provider_is_said(self, tenant, fake_providers, settings):
        settings.INTEGRATION_PROVIDERS = {**settings.INTEGRATION_PROVIDERS, "notion": {}}
        browser = admin_browser(tenant.admin)
        for provider, said in [("notion", "is not configured on this server"), ("nope", "No integration provider")]:
            response = browser.post(f"{CONNECT}{provider}/")
            assert response.status_code == 302 and response["Location"] == ADD
            assert said in browser.get(ADD).content.decode()
        assert not OAuthState.unscoped_objects.exists()

    def test_another_org_s_integration_cannot_be_reconnected_or_disconnected(
        self, tenant, other_tenant, fake_providers
    ):
        theirs = Integration.objects.model(org=other_tenant.org, provider="google_drive", name="Theirs")
        theirs.save()
        browser = admin_browser(tenant.admin)
        assert browser.post(f"/admin/integrations/integration/{theirs.pk}/reconnect/").status_code == 302
        assert browser.post(f"/admin/integrations/integration/{theirs.pk}/delete/", {"post": "yes"}).status_code == 302
        assert not OAuthState.unscoped_objects.exists() and Integration.unscoped_objects.filter(pk=theirs.pk).exists()

    def test_a_member_cannot_connect(self, tenant, fake_providers):
        response = admin_browser(tenant.member).post(f"{CONNECT}google_drive/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert not OAuthState.unscoped_objects.exists()


class TestWebhookForm:
    def test_a_webhook_is_created_from_the_form(self, tenant, fake_providers):
        browser = admin_browser(tenant.admin)
        url = f"{fake_providers.url}/webhook"
        response = browser.post(ADD, {"name": "Our hook", "url": url, "secret": "s3cret-value", "extra": "ignored"})
        integration = Integration.unscoped_objects.get()
        assert response["Location"] == f"/admin/integrations/integration/{integration.pk}/change/"
        assert (integration.org_id, integration.provider, integration.name) == (tenant.org.id, "webhook", "Our hook")
        assert integration.config == {"url": url, "secret": "s3cret-value"}
        page = browser.get(response["Location"]).content.decode()
        assert "s3cret-value" not in page and 'id="reconnect"' not in page

    @pytest.mark.parametrize(
        "form, said",
        [
            ({"name": "Hook", "url": "http://10.0.0.7/hook"}, "resolves to 10.0.0.7, a private"),
            ({"name": "Hook", "url": "http://169.254.169.254/latest"}, "resolves to 169.254.169.254"),
            ({"name": "Hook", "url": "not a url"}, "Only http and https URLs can be fetched."),
            ({"name": "", "url": "https://hooks.example.com/x"}, "This field is required"),
            ({"name": "Hook\x00", "url": "https://hooks.example.com/x"}, "Null characters are not allowed"),
            ({"name": "Hook", "url": "https://hooks.example.com/x", "secret": "s" * 501}, "at most 500 characters"),
        ],
    )
    def test_bad_input_is_said_on_the_form_and_creates_nothing(self, tenant, form, said):
        response = admin_browser(tenant.admin).post(ADD, form)
        assert response.status_code == 200
        page = response.content.decode()
        assert said in page and 'class="form-row errors field-' in page
        assert not Integration.unscoped_objects.exists()
