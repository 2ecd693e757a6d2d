"""Connecting a provider in a real browser (issue 15): Chromium enforces what the test client
does not (HttpOnly, Path, SameSite=Lax on the provider's cross-site redirect back).

The admin's page calls authorize with its JWT, the browser goes to the loopback provider
(127.0.0.1, another site than the live server's localhost), which approves at once and
redirects back to the callback. The same link opened in another browser connects nothing.
Needs /usr/bin/chromium (config/tests/system_setup.sh); never a skip.
"""

from __future__ import annotations

import json

import pytest

from accounts.tokens import token_pair_for
from integrations.models import Integration, OAuthState
from organizations.tests import test_admin_browser as chromium

pytestmark = pytest.mark.django_db(transaction=True)

# The admin browser tests' Chromium fixtures, shared rather than copied.
_allow_sync_orm_beside_playwright = chromium._allow_sync_orm_beside_playwright
browser = chromium.browser
page = chromium.page

AUTHORIZE = """async (token) => {
    const response = await fetch("/api/v1/integrations/google_drive/authorize/", {
        method: "POST",
        credentials: "include",
        headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"},
        body: "{}",
    });
    return {status: response.status, body: await response.json(), cookies: document.cookie};
}"""


def start_connecting(tab, base: str, user) -> str:
    """What the front end does: POST authorize with the JWT; returns the provider's URL."""
    tab.goto(f"{base}/health/live")  # any page of the origin
    result = tab.evaluate(AUTHORIZE, token_pair_for(user)["access"])
    assert result["status"] == 200, result
    assert "precis_oauth_nonce" not in result["cookies"]  # HttpOnly: no script reads it
    return result["body"]["authorization_url"]


def test_only_the_browser_that_asked_can_connect(browser, page, live_server, tenant, fake_providers):
    chromium.require_chromium()
    base = live_server.url

    # The attack: the admin's link, opened in someone else's browser.
    link = start_connecting(page, base, tenant.admin)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "precis_oauth_nonce"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["secure"]
    assert cookie["path"] == "/api/v1/integrations/google_drive/callback/"
    victim = browser.new_context()
    victim.set_default_timeout(chromium.TIMEOUT_MS)
    try:
        response = victim.new_page().goto(link)
        assert response is not None and response.status == 400, response and response.text()
        assert json.loads(response.text())["errors"][0]["code"] == "state_browser_mismatch"
    finally:
        victim.close()
    assert not Integration.unscoped_objects.exists()

    # The admin's own browser: the cookie comes back on the provider's redirect.
    response = page.goto(start_connecting(page, base, tenant.admin))
    assert response is not None and response.status == 201, response and response.text()
    assert response.url.startswith(f"{base}/api/v1/integrations/google_drive/callback/?code=")
    integration = Integration.unscoped_objects.get()
    assert integration.org == tenant.org and json.loads(response.text())["id"] == str(integration.pk)
    assert OAuthState.unscoped_objects.filter(used_at__isnull=True).count() == 0
    assert [c for c in page.context.cookies() if c["name"] == "precis_oauth_nonce"] == []  # cleared
