"""Every API route, proven tenant-isolated.

`test_every_route_is_covered` walks every URL the project serves under
/api/v1/ and fails when one is neither in ISOLATION_CASES (tested below: a
second org can neither read, list, change nor delete the first org's object)
nor in NOT_TENANT_DATA with a reason. Adding an endpoint therefore means adding
its cross-org case here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from conftest import Tenant, make_tenant, make_user
from organizations.models import Invitation
from organizations.services import invitation_create

pytestmark = pytest.mark.django_db


@dataclass
class IsolationCase:
    """Routes serving one kind of tenant object, and how to make one in an org."""

    make: Callable[[Tenant], str]  # creates the object in that tenant, returns its id
    still_intact: Callable[[str], bool]  # the object is unchanged after the other org's attempts
    list_route: str | None = None
    detail_route: str | None = None
    # detail-level actions (route name → HTTP method) that must also answer 404 across orgs
    actions: dict[str, str] = field(default_factory=dict)
    writes: dict[str, dict] = field(default_factory=dict)  # method → payload tried on the detail route


def _make_member(tenant: Tenant) -> str:
    return str(make_user(tenant.org).id)


def _member_intact(user_id: str) -> bool:
    from accounts.models import Role, User

    user = User.objects.get(pk=user_id)
    return user.is_active and user.role == Role.MEMBER


def _make_invitation(tenant: Tenant) -> str:
    from django_scopes import scope

    with scope(org=tenant.org.id):
        invitation, _token = invitation_create(
            org=tenant.org, created_by=tenant.admin, email="someone@example.test", role="member"
        )
    return str(invitation.id)


def _make_document(tenant: Tenant) -> str:
    from django_scopes import scope

    from documents.services import document_create

    with scope(org=tenant.org.id):
        return str(document_create(org=tenant.org, created_by=tenant.member, title="Secret", content="Plans").id)


def _document_intact(pk: str) -> bool:
    from documents.models import Document

    document = Document.unscoped_objects.filter(pk=pk).first()
    return document is not None and document.title == "Secret" and document.content == "Plans"


def _make_job(tenant: Tenant) -> str:
    from jobs.models import Job

    return str(Job.unscoped_objects.create(org=tenant.org, kind="summarize", created_by=tenant.admin).id)


def _job_intact(pk: str) -> bool:
    from jobs.models import Job

    return Job.unscoped_objects.get(pk=pk).status == "queued"


def _make_batch(tenant: Tenant) -> str:
    from django_scopes import scope

    from jobs.batches import batch_create

    document_id = _make_document(tenant)
    with scope(org=tenant.org.id):
        batch = batch_create(
            org=tenant.org,
            created_by=tenant.admin,
            kind="summarize",
            payload={"provider": "local"},
            selection={},
            queue="summaries",
            document_ids=[document_id],
        )
    return str(batch.id)


def _batch_intact(pk: str) -> bool:
    from jobs.models import Batch, Job

    return Batch.unscoped_objects.get(pk=pk).status == "running" and not Job.unscoped_objects.filter(
        batch_id=pk
    ).exclude(status="queued")


def _make_summary(tenant: Tenant) -> str:
    from documents.models import Document
    from summaries.models import Summary

    document = Document.unscoped_objects.get(pk=_make_document(tenant))
    summary = Summary.unscoped_objects.create(
        org=tenant.org,
        document=document,
        content="Secret summary",
        provider="local",
        source_sha256=document.sha256,
        prompt_sha256="0" * 64,
        created_by=tenant.admin,
    )
    return str(summary.id)


def _make_template(tenant: Tenant) -> str:
    from templates_app.models import Template

    return str(Template.unscoped_objects.create(org=tenant.org, name="Secret", body="{{ document.content }}").id)


def _make_integration(tenant: Tenant) -> str:
    from integrations.models import Integration

    integration = Integration(org=tenant.org, provider="notion", name="Secret", created_by=tenant.admin)
    integration.access_token = "secret-token"
    integration.save()
    return str(integration.id)


def _integration_intact(pk: str) -> bool:
    from integrations.models import Integration

    integration = Integration.unscoped_objects.filter(pk=pk).first()
    return integration is not None and integration.access_token == "secret-token"


def _make_api_key(tenant: Tenant) -> str:
    from organizations import api_keys
    from organizations.tenancy import org_scope

    with org_scope(tenant.org.pk):
        key, _plain = api_keys.api_key_create(
            org=tenant.org, user=tenant.admin, name="Secret", role="member", scopes=["read"]
        )
    return str(key.id)


def _make_audit_entry(tenant: Tenant) -> str:
    from organizations import audit

    return str(audit.record("org.updated", org=tenant.org, actor=tenant.admin, target=tenant.org).id)


def _make_webhook(tenant: Tenant) -> str:
    from integrations.models import WebhookSubscription

    subscription = WebhookSubscription(org=tenant.org, url="https://hooks.example.com/x", event_types=["job.failed"])
    subscription.secret = "whsec_secret"
    subscription.save()
    return str(subscription.id)


ISOLATION_CASES: dict[str, IsolationCase] = {
    "webhooks": IsolationCase(
        make=_make_webhook,
        still_intact=lambda pk: (
            __import__("integrations.models").models.WebhookSubscription.unscoped_objects.get(pk=pk).event_types
            == ["job.failed"]
        ),
        list_route="webhooks:webhook-list",
        detail_route="webhooks:webhook-detail",
        writes={"patch": {"event_types": ["job.succeeded"]}, "delete": {}},
        actions={"webhooks:webhook-deliveries": "get"},
    ),
    "audit": IsolationCase(
        make=_make_audit_entry,
        still_intact=lambda pk: (
            __import__("organizations.models").models.AuditEntry.unscoped_objects.filter(pk=pk).exists()
        ),
        list_route="org:audit-list",
    ),
    "api_keys": IsolationCase(
        make=_make_api_key,
        still_intact=lambda pk: (
            __import__("organizations.models").models.ApiKey.unscoped_objects.get(pk=pk).revoked_at is None
        ),
        list_route="org:api-key-list",
        detail_route="org:api-key-detail",
        writes={"delete": {}},
    ),
    "integrations": IsolationCase(
        make=_make_integration,
        still_intact=_integration_intact,
        list_route="integrations:integration-list",
        detail_route="integrations:integration-detail",
        writes={"delete": {}},
        actions={"integrations:integration-import": "post"},
    ),
    "jobs": IsolationCase(
        make=_make_job,
        still_intact=_job_intact,
        list_route="jobs:job-list",
        detail_route="jobs:job-detail",
        actions={"jobs:job-cancel": "post"},
    ),
    "batches": IsolationCase(
        make=_make_batch,
        still_intact=_batch_intact,
        list_route="batches:batch-list",
        detail_route="batches:batch-detail",
        actions={"batches:batch-cancel": "post"},
    ),
    "summaries": IsolationCase(
        make=_make_summary,
        still_intact=lambda pk: __import__("summaries.models").models.Summary.unscoped_objects.filter(pk=pk).exists(),
        list_route="summaries:summary-list",
        detail_route="summaries:summary-detail",
        writes={"delete": {}},
        actions={"summaries:summary-publish": "post"},
    ),
    "templates": IsolationCase(
        make=_make_template,
        still_intact=lambda pk: (
            __import__("templates_app.models").models.Template.unscoped_objects.get(pk=pk).name == "Secret"
        ),
        list_route="templates:template-list",
        detail_route="templates:template-detail",
        writes={"patch": {"name": "x"}, "put": {"name": "x", "body": "y"}, "delete": {}},
    ),
    "documents": IsolationCase(
        make=_make_document,
        still_intact=_document_intact,
        list_route="documents:document-list",
        detail_route="documents:document-detail",
        writes={"patch": {"title": "x"}, "put": {"title": "x", "content": "y"}, "delete": {}},
        actions={"summaries_documents:document-summarize": "post"},
    ),
    "members": IsolationCase(
        make=_make_member,
        still_intact=_member_intact,
        list_route="org:user-list",
        detail_route="org:user-detail",
        writes={"patch": {"role": "admin"}, "delete": {}},
    ),
    "invitations": IsolationCase(
        make=_make_invitation,
        still_intact=lambda pk: Invitation.unscoped_objects.filter(pk=pk).exists(),
        list_route="org:invitation-list",
        detail_route="org:invitation-detail",
        writes={"delete": {}},
        actions={"org:invitation-resend": "post"},
    ),
}

# Routes that hold no per-object tenant data, each with the reason.
NOT_TENANT_DATA: dict[str, str] = {
    "auth:register": "public; creates a new org or joins by invitation token",
    "auth:login": "public; credentials only",
    "auth:refresh": "public; the refresh token is the credential",
    "auth:logout": "acts on the caller's own refresh token (another user's → 400, tested in accounts)",
    "auth:me": "always the caller themselves",
    "auth:register-confirm": "public; the mailed registration token is the credential",
    "auth:password-reset": "public; mails only the address given, answers the same for any",
    "auth:password-reset-confirm": "public; the signed, single-use reset token names its user",
    "auth:email-verify": "public; the signed verification token names its user",
    "auth:email-verify-resend": "always the caller themselves",
    "org:detail": "always the caller's own org (request.org); tested in organizations/tests",
    "webhooks:webhook-redeliver": "a delivery of the caller's own webhook (another org's: 404, test_event_webhooks)",
    "org:audit-export": "the caller's org's entries only, as CSV (organizations/tests/test_audit.py)",
    "org:usage": "the caller's own org's usage (another org's `user=` finds nothing: summaries/tests/test_usage.py)",
    "templates:template-placeholders": "the placeholder registry, the same for every org",
    "integrations:providers": "the provider registry, the same for every org",
    "integrations:authorize": "starts a flow in the caller's own org (foreign integration_id: see integrations)",
    "integrations:callback": "public; the single-use state names the org (tested in integrations)",
    "integrations_documents:document-import-url": "creates a job in the caller's own org; no object id",
    "summaries_documents:document-batch-summarize": (
        "creates a batch in the caller's own org; another org's document ids are 400 not_found (summaries tests)"
    ),
    "schema": "public OpenAPI schema",
    "docs": "public Swagger UI",
}


def _api_route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, prefix: str, namespace: str | None) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                ns = pattern.namespace or namespace
                if pattern.namespace and namespace:
                    ns = f"{namespace}:{pattern.namespace}"
                walk(pattern.url_patterns, route, ns)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and pattern.name:
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver().url_patterns, "", None)
    return names


def test_every_route_is_covered():
    covered = set(NOT_TENANT_DATA)
    for case in ISOLATION_CASES.values():
        covered |= {r for r in (case.list_route, case.detail_route) if r} | set(case.actions)
    uncovered = sorted(_api_route_names() - covered)
    assert not uncovered, f"API routes without a cross-org isolation case: {uncovered}"
    stale = sorted(covered - _api_route_names())
    assert not stale, f"isolation cases name routes that no longer exist: {stale}"


@pytest.mark.parametrize("case_name", sorted(ISOLATION_CASES))
def test_second_org_cannot_touch_first_orgs_objects(case_name):
    case = ISOLATION_CASES[case_name]
    owner, intruder = make_tenant("Owner Org"), make_tenant("Intruder Org")
    object_id = case.make(owner)
    client = intruder.client()  # an *admin* of the other org: roles cannot widen tenancy

    if case.list_route:
        listed = client.get(reverse(case.list_route), {"page_size": 100})
        assert listed.status_code == 200
        assert object_id not in {row["id"] for row in listed.json()["results"]}
        # and the owner does see it, so the check above is meaningful
        owned = owner.client().get(reverse(case.list_route), {"page_size": 100}).json()["results"]
        assert object_id in {row["id"] for row in owned}

    if case.detail_route:
        url = reverse(case.detail_route, kwargs={"pk": object_id})
        response = client.get(url)
        assert response.status_code == 404, response.content
        assert response.json()["errors"][0]["code"] == "not_found"
        assert owner.client().get(url).status_code == 200
        for method, payload in case.writes.items():
            response = getattr(client, method)(url, payload, format="json")
            assert response.status_code == 404, (method, response.status_code, response.content)

    for route, method in case.actions.items():
        response = getattr(client, method)(reverse(route, kwargs={"pk": object_id}), {}, format="json")
        assert response.status_code == 404, (route, response.status_code)

    assert case.still_intact(object_id)
