"""Shared fixtures: organizations, users, authenticated API clients.

Tests run against the real PostgreSQL and Redis (config/settings/test.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from model_bakery import baker
from rest_framework.test import APIClient

from accounts.models import Role, User
from accounts.tokens import token_pair_for
from documents.models import Document
from organizations.models import Organization

pytest_plugins = ["config.tests.process_fixtures", "config.tests.mailbox"]

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached values must not leak between tests.

    Only our own keys go (the `precis` prefix): the same Redis database holds
    the Celery broker's queues and bindings, which a running worker needs.
    """
    if settings.EMBEDDED:
        cache.clear()
    else:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match="precis:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    yield


@pytest.fixture(autouse=True)
def _system_templates(request):
    """Transactional tests flush every table, data migrations included: put the
    system templates back for tests that use the database."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    from django.apps import apps as django_apps

    migration = importlib.import_module("templates_app.migrations.0003_system_templates_language")
    migration.create(django_apps, None)
    yield


@dataclass
class Tenant:
    org: Organization
    admin: User
    member: User

    def client(self, user: User | None = None) -> APIClient:
        return auth_client(user or self.admin)


def auth_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    return client


def make_user(org: Organization | None, role: str = Role.MEMBER, email: str | None = None, **extra) -> User:
    email = email or f"{baker.random_gen.gen_string(10).lower()}@example.test"
    extra.setdefault("email_verified_at", timezone.now())
    return User.objects.create_user(email=email, password=PASSWORD, org=org, role=role, **extra)


def admin_client(user: User):
    """Django's test client, signed in to the admin as `user`."""
    from django.test import Client

    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def make_tenant(name: str) -> Tenant:
    org = baker.make(Organization, name=name, slug=name.lower().replace(" ", "-"))
    admin = make_user(org, Role.ADMIN, email=f"admin@{org.slug}.test")
    member = make_user(org, Role.MEMBER, email=f"member@{org.slug}.test")
    return Tenant(org=org, admin=admin, member=member)


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant("Globex")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def mail_token(message) -> str:
    """The token a Precis mail carries: the `token` of its link, or the code on its own line."""
    import re
    from urllib.parse import parse_qs, urlsplit

    from config.tests.mailbox import text_of

    text = text_of(message)
    link = re.search(r"https?://\S+", text)
    if link:
        return parse_qs(urlsplit(link.group(0)).query)["token"][0]
    return re.search(r"^\s*(\S{30,})\s*$", text, re.M).group(1)


@pytest.fixture
def sent_mail(mailbox, celery_worker, django_capture_on_commit_callbacks):
    """`with sent_mail(to) as got: <request>` → `got.message`, `got.token`: the mail the
    request sent (through the real worker and SMTP), waited for after the block."""
    import contextlib
    from types import SimpleNamespace

    @contextlib.contextmanager
    def expect(to: str):
        got = SimpleNamespace(message=None, token=None)
        before = len(mailbox.to(to))
        with django_capture_on_commit_callbacks(execute=True):
            yield got
        got.message = mailbox.wait_for(to=to, count=before + 1)
        got.token = mail_token(got.message)

    return expect


@pytest.fixture
def invite(sent_mail):
    """`invite(client, email, role)` → the invitation token, read from the mail it sent."""

    def make(client, email: str, role: str = "member") -> str:
        with sent_mail(email.lower()) as got:
            response = client.post("/api/v1/org/invitations/", {"email": email, "role": role})
            assert response.status_code == 201, response.content
        return got.token

    return make


def assert_error_shape(response, status: int, code: str | None = None, attr: str | None = "__any__") -> dict:
    """The contract's error body: {type, errors: [{code, detail, attr}]}."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["type"] in {"validation_error", "client_error", "server_error"}, body
    assert isinstance(body["errors"], list) and body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
        assert isinstance(error["detail"], str) and error["detail"], error
    if code is not None:
        assert code in {e["code"] for e in body["errors"]}, body
    if attr != "__any__":
        assert attr in {e["attr"] for e in body["errors"]}, body
    return body


@pytest.fixture
def broker_down():
    """A context manager: inside it, Celery's broker is a loopback port nobody listens on."""
    import contextlib
    import socket

    from config.celery import app as celery_app

    @contextlib.contextmanager
    def down():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
        original = celery_app.conf.broker_url
        celery_app.conf.broker_url = closed
        celery_app.amqp._producer_pool = None  # producers are pooled per broker URL
        try:
            yield
        finally:
            celery_app.conf.broker_url = original
            celery_app.amqp._producer_pool = None

    return down


class Ingest:
    """Runs ingest jobs here, in the test's transaction (the sandboxed extraction child is
    real; only Celery is skipped): `ingest(upload_response_or_job_id)` → the document after
    it; `ingest.pending(org)` runs every queued ingest job of the org (after an import)."""

    def __call__(self, accepted) -> Document:
        from jobs.models import Job

        job_id = accepted.json()["job"]["id"] if hasattr(accepted, "json") else accepted
        job = Job.unscoped_objects.get(pk=job_id)
        self._run(job)
        return Document.unscoped_objects.get(pk=job.document_id)

    def pending(self, org: Organization) -> int:
        from jobs.models import Job

        jobs = list(Job.unscoped_objects.filter(org=org, kind=Job.Kind.INGEST, status=Job.Status.QUEUED))
        for job in jobs:
            self._run(job)
        return len(jobs)

    @staticmethod
    def _run(job) -> None:
        from documents import ingestion
        from organizations.tenancy import org_scope

        with org_scope(job.org_id):
            ingestion.ingest_job_run(job_id=job.pk)


@pytest.fixture
def ingest(settings, monkeypatch) -> Ingest:
    from jobs import scheduler

    settings.JOB_HEARTBEAT_S = 3600  # the lease renewer's own connection cannot see this test's rows
    # No scheduler round thread: its own connection cannot see this test's rows either.
    monkeypatch.setattr(scheduler._rounds, "request", lambda: None)
    return Ingest()
