"""Operations: readiness, metrics, structured logs, security headers, CORS, deploy checks, ops commands."""

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import tracemalloc

import pytest
import structlog
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from conftest import PASSWORD
from documents.models import Document
from jobs.models import Job

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


READY_PROBE = (
    "import django, json; django.setup(); from django.test import Client; "
    "r = Client().get('/health/ready'); print(r.status_code, r.content.decode())"
)


def run_probe(env_overrides: dict[str, str]) -> tuple[int, dict]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env_overrides}
    result = subprocess.run(
        [sys.executable, "-c", READY_PROBE], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )
    status, _, body = result.stdout.strip().partition(" ")
    assert status, result.stderr[-2000:]
    return int(status), json.loads(body)


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples) -> set[str]:
    return {name for name, _ in samples}


def current_database_url() -> str:
    """The URL of the database this test run uses (a probe process must not assume any other exists)."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class TestReadiness:
    def test_database_down_then_back(self):
        status, body = run_probe({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/x"})
        assert status == 503 and body["checks"]["database"].startswith("error:")
        assert body["checks"]["cache"] == "ok"
        status, body = run_probe({"DATABASE_URL": current_database_url()})
        assert status == 200 and set(body["checks"].values()) == {"ok"}

    def test_redis_down_names_cache_broker_and_channel_layer(self):
        status, body = run_probe(
            {"DATABASE_URL": current_database_url(), "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
        )
        assert status == 503
        assert body["checks"]["database"] == "ok"
        for component in ("cache", "broker", "channel_layer"):
            assert body["checks"][component].startswith("error:"), body


class TestMetrics:
    def test_worker_metrics_are_added_up_and_written_in_batches(self):
        import uuid

        import redis

        from config.metrics import _SharedStore

        store = _SharedStore()
        store.prefix = f"precis:metrics:test-{uuid.uuid4().hex}:"
        store._flusher_pid = os.getpid()  # no background thread: this test flushes by hand
        client = redis.Redis.from_url(settings.REDIS_URL)
        store.add("jobs", {"ok": 1.0})
        store.add("jobs", {"ok": 2.0, "failed": 1.0})
        assert client.hgetall(store.prefix + "jobs") == {}  # nothing written on the hot path
        store._client = redis.Redis(port=closed_port(), socket_connect_timeout=0.5)
        store.flush()  # Redis down: nothing raised, nothing lost
        store._client = None
        assert store.read("jobs") == {"ok": 3.0, "failed": 1.0}
        client.delete(store.prefix + "jobs")

    def test_token_required(self, client, settings):
        settings.METRICS_TOKEN = "scrape-me"
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200

    def test_loopback_only_without_token_and_only_in_debug(self, client, settings):
        settings.METRICS_TOKEN = ""
        settings.DEBUG = True  # `make run`
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
        # a proxy on the same host: every client looks like loopback
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
        settings.DEBUG = False  # a deployment: the token is the only way in
        refused = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
        assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content

    def test_a_scrape_while_redis_is_down_reports_it_instead_of_failing(self, client, settings, monkeypatch):
        import redis

        from config.metrics import STORE
        from jobs import capacity

        settings.METRICS_TOKEN = "t"
        down = redis.Redis(port=closed_port(), socket_connect_timeout=0.5)
        monkeypatch.setattr(STORE, "_client", down)
        monkeypatch.setattr(capacity, "broker_redis", lambda: down)
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
        text = response.content.decode()
        assert 'precis_dependency_up{dependency="redis"} 0.0' in text
        assert 'precis_dependency_up{dependency="database"} 1.0' in text
        for name in (
            "precis_jobs_active",
            "precis_jobs_oldest_queued_seconds",
            "precis_realtime_events_oldest_seconds",
        ):
            assert name in text  # what PostgreSQL answers is still there
        assert "precis_realtime_backlog_messages" not in text and "precis_workers_alive" not in text

    def test_a_scrape_while_postgres_is_down_reports_it_instead_of_failing(self):
        probe = (
            "import django; django.setup(); from prometheus_client import generate_latest; "
            "from config.metrics import REGISTRY; print(generate_latest(REGISTRY).decode())"
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/x",
        }
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        text = result.stdout
        assert 'precis_dependency_up{dependency="database"} 0.0' in text
        assert 'precis_dependency_up{dependency="redis"} 1.0' in text
        for name in ("precis_workers_alive", "precis_queue_depth", "precis_realtime_backlog_messages"):
            assert name in text  # what Redis answers is still there
        for name in (
            "precis_jobs_active",
            "precis_jobs_waiting",
            "precis_jobs_oldest_queued_seconds",
            "precis_jobs_finished_recent",
            "precis_realtime_event_retention_seconds",
            "precis_realtime_events_oldest_seconds",
            "precis_integrations",
        ):
            assert name not in text

    def test_oldest_queued_job_is_how_long_it_has_been_ready_to_run(self, tenant, client, settings):
        from datetime import timedelta

        from django.utils import timezone

        from jobs.services import job_create, job_start

        settings.METRICS_TOKEN = "t"
        now = timezone.now()

        def queued(queue: str, *, waiting_s: float, **changes) -> Job:
            job = job_create(org=tenant.org, kind="summarize", created_by=None, payload={}, queue=queue)
            Job.unscoped_objects.filter(pk=job.pk).update(updated_at=now - timedelta(seconds=waiting_s), **changes)
            return job

        queued("llm", waiting_s=300)
        queued("llm", waiting_s=60)
        queued("llm", waiting_s=1000, priority=Job.Priority.BATCH)
        queued("llm", waiting_s=1000, dispatched_at=now)  # handed to a worker that has not started it
        # retried: ready since its delay ended / still inside its delay (not waiting yet)
        queued("ingest", waiting_s=4000, not_before=now - timedelta(seconds=120))
        queued("ingest", waiting_s=5000, not_before=now + timedelta(seconds=60))
        started = queued("summaries", waiting_s=9000)
        job_start(job_id=started.pk)

        samples = scrape(client)
        elapsed = (timezone.now() - now).total_seconds()

        def age(queue: str, priority: str) -> float:
            return series(samples, "precis_jobs_oldest_queued_seconds", queue=queue, priority=priority)

        assert 1000 <= age("llm", "interactive") <= 1000 + elapsed
        assert 1000 <= age("llm", "batch") <= 1000 + elapsed
        assert 120 <= age("ingest", "interactive") <= 120 + elapsed
        assert age("ingest", "batch") == age("summaries", "interactive") == age("integrations", "batch") == 0

    def test_jobs_finished_recently_by_error_code(self, tenant, client, settings, django_capture_on_commit_callbacks):
        from datetime import timedelta

        from django.utils import timezone

        from config.metrics import RECENT_WINDOW_S
        from jobs.services import job_cancel, job_create, job_fail, job_start, job_succeed
        from realtime.models import StoredEvent

        settings.METRICS_TOKEN = "t"
        settings.REALTIME_EVENT_RETENTION_HOURS = 2

        def finished(end, kind: str = "summarize") -> Job:
            with django_capture_on_commit_callbacks(execute=True):  # the events are stored at commit
                job = job_create(org=tenant.org, kind=kind, created_by=None, payload={}, queue="llm")
                job = job_start(job_id=job.pk)
                return end(job)

        def failing(code: str):
            return lambda job: job_fail(job_id=job.pk, lease_token=job.lease_token, code=code, detail="d")

        for _ in range(2):
            finished(failing("llm_unavailable"))
        finished(failing("timeout"))
        finished(failing("provider_unauthorized"), kind="import")
        finished(lambda job: job_succeed(job_id=job.pk, lease_token=job.lease_token, result={}))
        finished(lambda job: job_cancel(job=job))
        before = finished(failing("llm_unavailable"))  # finished before the window
        now = timezone.now()
        StoredEvent.unscoped_objects.filter(data__id=str(before.pk)).update(
            created_at=now - timedelta(seconds=RECENT_WINDOW_S + 60)
        )
        StoredEvent.unscoped_objects.filter(data__id=str(before.pk), type="job.queued").update(
            created_at=now - timedelta(hours=3)
        )

        samples = scrape(client)
        elapsed = (timezone.now() - now).total_seconds()
        recent = {labels: value for (name, labels), value in samples.items() if name == "precis_jobs_finished_recent"}
        assert recent == {
            (("code", "llm_unavailable"), ("kind", "summarize"), ("status", "failed")): 2,
            (("code", "timeout"), ("kind", "summarize"), ("status", "failed")): 1,
            (("code", "provider_unauthorized"), ("kind", "import"), ("status", "failed")): 1,
            (("code", ""), ("kind", "summarize"), ("status", "succeeded")): 1,
            (("code", ""), ("kind", "summarize"), ("status", "cancelled")): 1,
        }
        assert series(samples, "precis_realtime_event_retention_seconds") == 7200
        assert 3 * 3600 <= series(samples, "precis_realtime_events_oldest_seconds") <= 3 * 3600 + elapsed

    def test_integrations_by_provider_and_status(self, tenant, other_tenant, client, settings):
        from model_bakery import baker

        from integrations.models import Integration
        from integrations.services import integration_mark

        settings.METRICS_TOKEN = "t"
        for org in (tenant.org, other_tenant.org):
            refused = baker.make(Integration, org=org, provider="notion")
            integration_mark(refused, Integration.Status.NEEDS_REAUTH, "The refresh token was refused.")
        baker.make(Integration, org=tenant.org, provider="notion")
        baker.make(Integration, org=tenant.org, provider="slack", status=Integration.Status.REVOKED)

        samples = scrape(client)
        assert series(samples, "precis_integrations", provider="notion", status="needs_reauth") == 2
        assert series(samples, "precis_integrations", provider="notion", status="active") == 1
        assert series(samples, "precis_integrations", provider="slack", status="revoked") == 1
        assert series(samples, "precis_integrations", provider="slack", status="needs_reauth") == 0
        assert {labels for name, labels in samples if name == "precis_integrations"} == {
            (("provider", provider), ("status", status))
            for provider in ("notion", "slack")
            for status in Integration.Status.values
        }

    def test_realtime_messages_no_web_process_has_taken(self, client, settings):
        import redis
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        settings.METRICS_TOKEN = "t"
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()  # a socket of a process that does not read
        key = layer.prefix + layer.non_local_name(channel)
        client_redis = redis.Redis.from_url(settings.REDIS_URL)
        try:
            assert series(scrape(client), "precis_realtime_backlog_messages") == 0
            for n in range(3):
                async_to_sync(layer.send)(channel, {"type": "event.message", "n": n})
            sent_at = client_redis.zrange(key, 0, 0, withscores=True)[0][1]
            before = time.time()
            samples = scrape(client)
            after = time.time()
            assert series(samples, "precis_realtime_backlog_messages") == 3
            assert before - sent_at <= series(samples, "precis_realtime_backlog_oldest_seconds") <= after - sent_at

            # a web process takes them (as the layer's reader does: ZPOPMIN on the channel's key)
            taken = [layer.deserialize(message)["n"] for message, _score in client_redis.zpopmin(key, 3)]
            assert taken == [0, 1, 2]
            samples = scrape(client)
            assert series(samples, "precis_realtime_backlog_messages") == 0
            assert series(samples, "precis_realtime_backlog_oldest_seconds") == 0
        finally:
            client_redis.delete(key)
            client_redis.close()

    def test_content_after_requests_and_a_job(self, tenant, client, settings):
        from organizations.tenancy import org_scope
        from summaries.services import summarize_job_run, summary_request

        settings.METRICS_TOKEN = "t"
        api = tenant.client()
        document = api.post("/api/v1/documents/", {"title": "T", "content": "One. Two. Three."}, format="json").json()
        api.get("/api/v1/documents/")
        with org_scope(tenant.org.id):
            job = summary_request(org=tenant.org, user=tenant.admin, document=Document.objects.get(pk=document["id"]))
            summarize_job_run(job_id=job.pk)
        assert Job.unscoped_objects.get(pk=job.pk).status == "succeeded"
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
        assert 'precis_http_requests_total{method="POST",route="api/v1/documents/$",status="201"}' in text
        assert 'precis_http_request_duration_seconds_bucket{le="0.005",method="GET",route="api/v1/documents/$"}' in text
        assert 'precis_jobs_finished_total{kind="summarize",status="succeeded"}' in text
        assert 'precis_job_duration_seconds_count{kind="summarize",status="succeeded"}' in text
        assert 'precis_llm_calls_total{outcome="ok",provider="local"}' in text
        assert 'precis_llm_tokens_total{kind="prompt",provider="local"}' in text
        assert 'precis_queue_depth{queue="summaries"}' in text
        assert 'precis_jobs_waiting{queue="llm"} 0.0' in text and 'precis_worker_slots{queue="llm"}' in text
        assert "precis_jobs_active" in text and "precis_workers_alive" in text


def test_logs_are_json_with_request_id_and_no_secrets(tenant, anon):
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        login = anon.post(
            "/api/v1/auth/login/",
            {"email": tenant.admin.email, "password": PASSWORD},
            format="json",
            HTTP_X_REQUEST_ID="req-42",
        )
        token = login.json()["access"]
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        anon.patch("/api/v1/auth/me/", {"current_password": PASSWORD, "new_password": "short"}, format="json")
        structlog.get_logger("precis.test").info("probe", password="hunter2", api_key="k-123", token=token)
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line.get("logger") == "precis.access"]
    assert access[0]["request_id"] == "req-42" and access[0]["status"] == 200 and access[0]["route"]
    assert access[1]["org_id"] == str(tenant.org.id) and access[1]["user_id"] == str(tenant.admin.id)
    output = stream.getvalue()
    for secret in (PASSWORD, token, "hunter2", "k-123", "short"):
        assert secret not in output


class TestSecurityHeaders:
    def test_api_and_admin_headers(self, tenant, client):
        for response in (tenant.client().get("/api/v1/auth/me/"), client.get("/admin/login/")):
            assert response["X-Content-Type-Options"] == "nosniff"
            assert response["Referrer-Policy"] == "same-origin"
            assert response["X-Frame-Options"] == "DENY"
            assert "script-src 'self'" in response["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in response["Content-Security-Policy"]

    def test_swagger_ui_works_under_the_csp(self, client):
        page = client.get("/api/v1/docs/")
        assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]
        assert b"<script>" not in page.content  # no inline script: the init script is a file
        assert client.get("/api/v1/docs/?script=").status_code == 200

    @override_settings(CORS_ALLOWED_ORIGINS=["https://app.precis.example"])
    def test_cors_allowed_and_foreign_origins(self, client):
        preflight = {
            "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
            "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization",
        }
        allowed = client.options("/api/v1/auth/login/", HTTP_ORIGIN="https://app.precis.example", **preflight)
        assert allowed["Access-Control-Allow-Origin"] == "https://app.precis.example"
        foreign = client.options("/api/v1/auth/login/", HTTP_ORIGIN="https://evil.example", **preflight)
        assert "Access-Control-Allow-Origin" not in foreign


def test_check_deploy_is_clean_in_production_settings():
    db = settings.DATABASES["default"]
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "false",
        "SECRET_KEY": "p" * 20 + "-Zq8!xK2#mW9$vL4&nR7*tY1@bC6^hJ3%dF5",
        "ALLOWED_HOSTS": "precis.example",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_PROXY_SSL_HEADER_ENABLED": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


class TestOpsCommands:
    def test_resummarize(self, tenant, capsys, settings):
        from documents.services import document_create
        from jobs.models import Batch
        from organizations.tenancy import org_scope

        settings.MAX_BATCH_DOCUMENTS = 2
        with org_scope(tenant.org.id):
            for i in range(3):
                document_create(org=tenant.org, created_by=None, title=f"d{i}", content="Text.")
        call_command("resummarize", "--org", "acme", "--dry-run", "--no-progress")
        assert "would queue 3" in capsys.readouterr().out and not Job.unscoped_objects.exists()
        call_command("resummarize", "--org", "acme", "--no-progress")
        out = capsys.readouterr().out
        assert "queued 3 summarize job(s) in acme in 2 batch(es)" in out
        batches = list(Batch.unscoped_objects.filter(org=tenant.org).order_by("created_at"))
        assert [b.total for b in batches] == [2, 1] and all(f"batch {b.pk}" in out for b in batches)
        assert {b.created_by_id for b in batches} == {tenant.admin.id}  # the org's first admin
        jobs = Job.unscoped_objects.filter(kind="summarize", org=tenant.org)
        assert jobs.count() == 3 and set(jobs.values_list("priority", flat=True)) == {Job.Priority.BATCH}
        with pytest.raises(CommandError):
            call_command("resummarize", "--org", "acme", "--since", "not-a-date")
        with pytest.raises(CommandError) as exc:
            call_command(
                "resummarize", "--org", "acme", "--template", "00000000-0000-0000-0000-000000000000", "--no-progress"
            )
        assert exc.value.returncode == 1

    def test_reap_dry_run(self, capsys):
        call_command("reap_stale_jobs", "--dry-run")
        assert "would reap 0" in capsys.readouterr().out

    def test_export_org_streams_in_bounded_memory(self, tenant, other_tenant, tmp_path):
        body = "word " * 2000  # 10 kB per document
        Document.unscoped_objects.bulk_create(
            [
                Document(org=tenant.org, title=f"doc {i}", content=body, char_count=len(body), sha256="0" * 64)
                for i in range(1500)
            ]
        )
        Document.unscoped_objects.create(org=other_tenant.org, title="other org", content="x", sha256="0" * 64)
        out = tmp_path / "export.jsonl"
        tracemalloc.start()
        call_command("export_org", "--org", "acme", "--output", str(out), "--no-progress")
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        documents = [line for line in lines if line["type"] == "document"]
        assert len(documents) == 1500 and documents[0]["content"] == body
        assert all(line.get("title") != "other org" for line in lines)
        assert out.stat().st_size > 15_000_000
        assert peak < 8_000_000, peak  # 15 MB exported with a few MB of memory
