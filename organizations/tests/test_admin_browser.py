"""The tenant-scoped Django admin in a real browser: Playwright drives Debian's
headless Chromium against pytest-django's live server.

An org admin logs in through the admin's login form, opens every registered
model's changelist and sees exactly their own organization's rows; the other
organization's admin sees none of them (and the other way round). Deleting from
the browser takes the services' path: a user is deactivated, the admin's own
account is refused with a message, a document's jobs are cancelled.

Needs /usr/bin/chromium: run config/tests/system_setup.sh once. Playwright
never downloads a browser here (no `playwright install`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PASSWORD, Tenant, make_tenant
from documents.models import Document
from integrations.models import Integration
from jobs.models import Job
from organizations.models import ApiKey, Invitation
from summaries import usage
from summaries.models import Summary
from templates_app.models import Template

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Loopback only: any host name other than the live server's resolves to nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def _allow_sync_orm_beside_playwright():
    """Playwright's sync API runs its asyncio loop in a greenlet of this thread, so
    while the browser is open Django sees a "running event loop" here and refuses
    the fixtures' ORM calls (SynchronousOnlyOperation), although nothing async
    touches the database. Allowed for this module's tests only, then restored."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def require_chromium():
    """A failure, never a skip (CI forbids skips), that says how to fix it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Run config/tests/system_setup.sh (as root) first.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def browser(_allow_sync_orm_beside_playwright):
    """One headless Chromium for the whole module; each test gets its own context.
    None without Chromium: the test itself then fails (require_chromium)."""
    if not CHROMIUM.exists():
        yield None
        return
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser):
    if browser is None:
        yield None
        return
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@dataclass
class Org:
    tenant: Tenant
    #: changelist URL -> distinctive texts of this org's rows there
    markers: dict[str, list[str]] = field(default_factory=dict)
    #: changelist URL -> how many rows this org's admin must see there
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.tenant.org.name


def populate(name: str) -> Org:
    """An organization with one distinctively named row in every admin model."""
    tenant = make_tenant(name)
    org, admin = tenant.org, tenant.admin
    content = f"The {name} quarterly numbers, in full."
    sha = hashlib.sha256(content.encode()).hexdigest()
    document = Document.unscoped_objects.create(
        org=org,
        title=f"{name} Quarterly Report",
        content=content,
        char_count=len(content),
        sha256=sha,
        created_by=admin,
    )
    job = Job.unscoped_objects.create(org=org, kind="summarize", document=document, created_by=admin)
    Summary.unscoped_objects.create(
        org=org,
        document=document,
        template_name=f"{name} Executive Brief",
        content=f"{name} did well.",
        provider="local",
        model=f"{name.lower()}-model",
        source_sha256=sha,
        prompt_sha256=hashlib.sha256(b"prompt").hexdigest(),
        created_by=admin,
    )
    Template.unscoped_objects.create(org=org, name=f"{name} Weekly Digest", body="{{ today }}", created_by=admin)
    Invitation.unscoped_objects.create(
        org=org,
        email=f"guest@{org.slug}.test",
        token_hash=hashlib.sha256(org.slug.encode()).hexdigest(),
        created_by=admin,
    )
    Integration.unscoped_objects.create(org=org, provider="slack", name=f"{name} Slack Workspace", created_by=admin)
    ApiKey.unscoped_objects.create(
        org=org, name=f"{name} Deploy Key", prefix=org.slug[:8], key_hash=sha, scopes=["read"], created_by=admin
    )
    markers = {
        "/admin/accounts/user/": [tenant.admin.email, tenant.member.email],
        "/admin/organizations/organization/": [name],
        "/admin/organizations/invitation/": [f"guest@{org.slug}.test"],
        "/admin/documents/document/": [f"{name} Quarterly Report"],
        "/admin/jobs/job/": [str(job.id), f"{name} Quarterly Report"],
        "/admin/summaries/summary/": [f"{name} Executive Brief", f"{name.lower()}-model"],
        "/admin/templates_app/template/": [f"{name} Weekly Digest"],
        "/admin/integrations/integration/": [f"{name} Slack Workspace"],
        "/admin/organizations/apikey/": [f"{name} Deploy Key"],
    }
    counts = dict.fromkeys(markers, 1) | {"/admin/accounts/user/": 2}
    return Org(tenant=tenant, markers=markers, counts=counts)


@pytest.fixture
def orgs(live_server) -> dict[str, Org]:
    return {"acme": populate("Acme"), "globex": populate("Globex")}


def log_in(page, base_url: str, email: str):
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url == f"{base_url}/admin/", f"login as {email} failed: {page.url}\n{page.inner_text('body')[:1000]}"


@pytest.mark.parametrize("me, them", [("acme", "globex"), ("globex", "acme")])
def test_org_admin_sees_only_own_rows_in_every_changelist(page, live_server, orgs, me, them):
    require_chromium()
    mine, theirs = orgs[me], orgs[them]
    log_in(page, live_server.url, mine.tenant.admin.email)
    index = page.inner_text("#content")
    for url in mine.markers:
        assert f'href="{url}"' in page.content(), f"{url} is not linked from the admin index:\n{index}"

    foreign = [theirs.name, theirs.tenant.org.slug, *(m for ms in theirs.markers.values() for m in ms)]
    for url, own in mine.markers.items():
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 200, (url, response and response.status)
        assert page.url == f"{live_server.url}{url}", f"{url} redirected to {page.url}"

        rows = page.locator("#result_list tbody tr")
        table = page.inner_text("#result_list")
        assert rows.count() == mine.counts[url], f"{url}: expected {mine.counts[url]} row(s), got:\n{table}"
        for text in own:
            assert text in table, f"{url}: own row {text!r} is missing:\n{table}"

        # Nowhere on the page (rows, filters, hidden inputs): nothing of the other org.
        html = page.content().lower()
        leaked = [text for text in foreign if text.lower() in html]
        where = [html[max(0, html.find(t.lower()) - 80) : html.find(t.lower()) + 80] for t in leaked]
        assert not leaked, f"{url}: {me}'s admin sees {them}'s data {leaked}, in: {where}"


def submit(page, selector: str):
    with page.expect_navigation():
        page.click(selector)


def messages_on(page) -> str:
    return page.inner_text(".messagelist") if page.locator(".messagelist").count() else ""


def test_deletes_in_the_browser_go_through_the_services(page, live_server, orgs):
    """Issue 15: the delete button deactivates a user, refuses the admin's own account with
    a message (not a 500), and "delete selected" on documents cancels their jobs."""
    require_chromium()
    acme = orgs["acme"].tenant
    base = live_server.url
    log_in(page, base, acme.admin.email)

    page.goto(f"{base}/admin/accounts/user/{acme.member.pk}/delete/")
    submit(page, "#content form input[type=submit]")  # "Yes, I'm sure"
    assert page.url == f"{base}/admin/accounts/user/", page.url
    assert "was deactivated" in messages_on(page), page.inner_text("body")[:2000]
    acme.member.refresh_from_db()
    assert acme.member.is_active is False

    page.goto(f"{base}/admin/accounts/user/{acme.admin.pk}/delete/")
    submit(page, "#content form input[type=submit]")
    assert page.url == f"{base}/admin/accounts/user/{acme.admin.pk}/change/", page.url
    assert "You cannot delete your own account." in page.inner_text(".messagelist li.error")
    acme.admin.refresh_from_db()
    assert acme.admin.is_active is True

    document = Document.unscoped_objects.get(org=acme.org)
    job = Job.unscoped_objects.get(document=document)
    page.goto(f"{base}/admin/documents/document/")
    page.check(f"input[name=_selected_action][value='{document.pk}']")
    page.select_option("select[name=action]", "delete_selected")
    submit(page, "button[name=index]")  # "Go": the confirmation page
    submit(page, "#content form input[type=submit]")
    assert "Successfully deleted 1 document" in messages_on(page), page.inner_text("body")[:2000]
    assert not Document.unscoped_objects.filter(pk=document.pk).exists()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_the_dashboard_shows_the_api_s_figures(page, live_server, orgs):
    """Issue 17: the admin's index is the organization's dashboard; its figures are the API's
    (the other organization's rows in the same tables are not counted)."""
    require_chromium()
    acme = orgs["acme"].tenant
    for title in ("Board minutes", "Supplier contract"):
        Document.unscoped_objects.create(
            org=acme.org, title=title, source="upload", content=title, char_count=len(title), created_by=acme.admin
        )
    Job.unscoped_objects.create(
        org=acme.org,
        kind="summarize",
        status="failed",
        error={"code": "llm_timeout", "detail": "The LLM did not answer in time."},
        created_by=acme.admin,
    )
    Integration.unscoped_objects.create(
        org=acme.org, provider="google_drive", name="Acme Drive", status="needs_reauth", created_by=acme.admin
    )
    for tenant, tokens in ((acme, (1000, 500)), (orgs["globex"].tenant, (7000, 7))):  # two metered LLM calls
        meter = usage.Meter(org_id=tenant.org.pk, user_id=tenant.admin.pk, job_id=None, provider="openai")
        meter.record(
            meter.reserve(sum(tokens), "gpt-4o-mini"),
            model="gpt-4o-mini",
            stage="single",
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_ms=900,
        )
    log_in(page, live_server.url, acme.admin.email)
    assert page.inner_text("#site-name") == "Precis administration · Acme"
    assert page.title() == "Dashboard | Precis"
    assert page.locator(".precis-dashboard svg.precis-chart").count() == 5

    api = acme.client()
    documents = api.get("/api/v1/documents/").json()["results"]
    by_source: dict[str, int] = {}
    for row in documents:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    shown = {
        cell.get_attribute("data-source"): int(cell.inner_text())
        for cell in page.locator("#dashboard-documents td[data-source]").all()
    }
    assert shown == by_source == {"manual": 1, "upload": 2}

    jobs = api.get("/api/v1/jobs/", {"all": "true"}).json()["results"]
    shown_jobs = {
        cell.get_attribute("data-status"): int(cell.inner_text())
        for cell in page.locator("#dashboard-jobs td[data-status]").all()
    }
    assert shown_jobs == {s: sum(1 for j in jobs if j["status"] == s) for s in ("failed", "queued")}
    assert int(page.inner_text("#dashboard-failures td[data-code=llm_timeout]")) == 1
    assert "Acme Drive" in page.inner_text("#dashboard-integrations")
    assert "Globex" not in page.inner_text("#content")

    metered = api.get("/api/v1/org/usage/", {"group_by": "provider"}).json()["results"]
    shown_usage = {
        cell.get_attribute("data-tokens"): int(cell.inner_text())
        for cell in page.locator("#dashboard-usage td[data-tokens]").all()
    }
    assert shown_usage == {row["provider"]: row["total_tokens"] for row in metered} == {"openai": 1500}
    screenshot(page, "admin-dashboard")


def screenshot(page, name: str) -> None:
    """docs/admin.md's pictures, when PRECIS_SCREENSHOTS names their folder."""
    if os.environ.get("PRECIS_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(Path(os.environ["PRECIS_SCREENSHOTS"]) / f"{name}.png"), full_page=True)


def test_a_pdf_uploaded_and_summarized_in_the_admin_is_followed_live(page, daphne_pair, fake_llm):
    """Issue 17: upload a PDF from the add page, watch its ingestion finish on its page, then
    summarize it from the action and watch that job reach `succeeded` without reloading
    (over /ws/events/ with the admin's session, through daphne and a real worker); read the
    summary inline."""
    from documents.tests import hostile_files

    require_chromium()
    fake_llm.latency = 2.0  # the LLM takes its time: the page is rendered long before the answer
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    Document.unscoped_objects.create(org=globex.org, title="Globex memo", content="x", created_by=globex.admin)
    base = daphne_pair[0].http
    log_in(page, base, acme.admin.email)

    page.goto(f"{base}/admin/documents/document/")
    assert "Globex memo" not in page.inner_text("#content")
    page.click("text=Upload documents")
    page.wait_for_load_state()
    pdf = {"name": "annual-report.pdf", "mimeType": "application/pdf", "buffer": hostile_files.report_pdf(pages=2)}
    page.set_input_files("input[name=files]", files=[pdf])
    screenshot(page, "admin-upload")
    submit(page, "#upload-form input[type=submit]")
    document = Document.unscoped_objects.get(org=acme.org)
    assert page.url == f"{base}/admin/documents/document/{document.pk}/change/", page.url
    assert "its text is being extracted" in messages_on(page)
    ingest = Job.unscoped_objects.get(document=document, kind="ingest")
    page.locator(f'[data-job-id="{ingest.pk}"][data-field="status"]').filter(has_text="succeeded").wait_for(
        timeout=60_000
    )
    page.reload()
    assert "Revenue rose to 4.2 billion" in page.inner_text(".field-content")  # the PDF's text, extracted

    page.goto(f"{base}/admin/documents/document/")
    page.check(f"input[name=_selected_action][value='{document.pk}']")
    page.select_option("select[name=action]", "summarize")
    submit(page, "button[name=index]")  # "Go": the options page
    document.refresh_from_db()
    assert document.title == "ACME Corporation — Annual Report 2025"  # the title the PDF gives itself
    assert document.title in page.inner_text("#content")
    page.select_option("select[name=template]", label="Executive summary")
    page.select_option("select[name=provider]", "openai")
    screenshot(page, "admin-summarize")
    submit(page, "#summarize-form input[type=submit]")

    assert page.url == f"{base}/admin/documents/document/{document.pk}/change/", page.url
    job = Job.unscoped_objects.get(document=document, kind="summarize")
    status = page.locator(f'[data-job-id="{job.pk}"][data-field="status"]')
    assert status.inner_text() in ("queued", "running")
    page.evaluate("window.precisNotReloaded = true")
    status.filter(has_text="succeeded").wait_for(timeout=30_000)
    page.locator("#precis-live-notice").wait_for()  # summary.created came over the socket too
    assert page.evaluate("window.precisNotReloaded") is True  # the same page all along
    page.click("#precis-live-notice a")
    page.wait_for_load_state()
    inline = page.inner_text("#summaries-group")
    summary = Summary.unscoped_objects.get(document=document)
    assert summary.content.startswith("Summary: ") and summary.content[:60] in inline  # the loopback LLM's answer
    assert "openai" in inline and "succeeded" in page.inner_text("#jobs-group")
    screenshot(page, "admin-document")


def test_a_webhook_is_connected_and_a_template_previewed(page, live_server, orgs, fake_providers):
    """Issue 17: create a webhook integration from the connect page's form; preview a
    template against a document before saving it."""
    require_chromium()
    acme = orgs["acme"].tenant
    base = live_server.url
    log_in(page, base, acme.admin.email)

    page.goto(f"{base}/admin/integrations/integration/")
    page.click("text=Connect an integration")
    page.wait_for_load_state()
    assert page.locator("#connect-google_drive").count() == 1
    page.fill("#webhook-form input[name=name]", "Release notes hook")
    page.fill("#webhook-form input[name=url]", "http://10.1.2.3/hook")  # refused by its address, never called
    submit(page, "#webhook-form input[type=submit]")
    assert "a private, loopback, link-local" in page.inner_text("#webhook-form")
    page.fill("#webhook-form input[name=url]", f"{fake_providers.url}/webhook")
    page.fill("#webhook-form input[name=secret]", "hook-signing-secret")
    screenshot(page, "admin-connect")
    submit(page, "#webhook-form input[type=submit]")
    integration = Integration.unscoped_objects.get(provider="webhook")
    assert page.url == f"{base}/admin/integrations/integration/{integration.pk}/change/", page.url
    assert "Webhook “Release notes hook” created." in messages_on(page)
    assert integration.org_id == acme.org.id and integration.config["url"] == f"{fake_providers.url}/webhook"
    assert "hook-signing-secret" not in page.content()

    page.goto(f"{base}/admin/templates_app/template/add/")
    page.fill("input[name=name]", "Board brief")
    page.fill("textarea[name=body]", "Brief the board on “{{ document.title }}”:\n{{ document.content }}")
    page.select_option("select[name=preview_document]", label="Acme Quarterly Report")
    page.select_option("select[name=preview_provider]", "local")
    submit(page, "#preview")
    result = page.inner_text("#preview-result")
    assert "Brief the board on “Acme Quarterly Report”:\nThe Acme quarterly numbers, in full." in result
    assert "one call" in result and "tokens" in result
    assert page.input_value("input[name=name]") == "Board brief"
    assert not Template.unscoped_objects.filter(name="Board brief").exists()
    screenshot(page, "admin-template-preview")


def test_no_object_of_another_organization_is_reachable_by_url(page, live_server, orgs):
    """Issue 17: every page of the other organization's objects (change, delete, history and
    the console's own: reconnect, resend) answers as if they did not exist."""
    require_chromium()
    acme, globex = orgs["acme"], orgs["globex"]
    base = live_server.url
    log_in(page, base, acme.tenant.admin.email)
    g = globex.tenant.org
    rows = {
        "accounts/user": [globex.tenant.admin.pk, globex.tenant.member.pk],
        "organizations/organization": [g.pk],
        "organizations/invitation": [Invitation.unscoped_objects.get(org=g).pk],
        "documents/document": [Document.unscoped_objects.get(org=g).pk],
        "jobs/job": [Job.unscoped_objects.get(org=g).pk],
        "summaries/summary": [Summary.unscoped_objects.get(org=g).pk],
        "templates_app/template": [Template.unscoped_objects.get(org=g).pk],
        "integrations/integration": [Integration.unscoped_objects.get(org=g).pk],
        "organizations/apikey": [ApiKey.unscoped_objects.get(org=g).pk],
    }
    foreign = [globex.name, *(m for ms in globex.markers.values() for m in ms)]
    for model, pks in rows.items():
        for pk in pks:
            for view in ("change", "delete", "history"):
                response = page.goto(f"{base}/admin/{model}/{pk}/{view}/")
                assert response is not None and response.status in (200, 403, 404), (model, view, response.status)
                html = page.content()
                leaked = [text for text in foreign if text in html and text != str(pk)]  # (the URL's own id)
                assert not leaked, f"{model} {view}: {leaked}"
                assert page.url in (f"{base}/admin/", f"{base}/admin/{model}/{pk}/{view}/") and (
                    "doesn’t exist" in html or response.status in (403, 404)
                ), (model, view, page.url)
    integration = rows["integrations/integration"][0]
    # The console's POSTs, sent from the admin's own page with its CSRF token.
    page.goto(f"{base}/admin/")
    token = page.evaluate("document.cookie.match(/csrftoken=([^;]+)/)[1]")
    for url, body in [
        (f"/admin/integrations/integration/{integration}/reconnect/", ""),
        ("/admin/organizations/invitation/", f"action=resend&_selected_action={rows['organizations/invitation'][0]}"),
    ]:
        status = page.evaluate(
            """async ([url, body, token]) => (await fetch(url, {method: "POST", body: body,
                headers: {"X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded"}})).status""",
            [url, body, token],
        )
        assert status in (200, 302, 404), (url, status)
    invitation = Invitation.unscoped_objects.get(org=g)
    assert invitation.token_hash == hashlib.sha256(g.slug.encode()).hexdigest()  # not resent
    from integrations.models import OAuthState

    assert not OAuthState.unscoped_objects.exists()  # no flow started for their integration
