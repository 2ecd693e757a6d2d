"""Prometheus metrics at /metrics.

- HTTP requests (count and latency by method, route, status): per web process,
  kept in process memory — scrape every web process (each daphne) directly.
- Everything workers do — job durations and outcomes, LLM calls, latency,
  errors and tokens — is added up in memory and written to Redis about once a
  second (HINCRBYFLOATs in one pipeline), so whichever web process is scraped
  reports the totals of every worker on every machine.
- Read at scrape time: active jobs by kind and status (PostgreSQL, partial
  index), jobs waiting for a slot per queue (the scheduler's queue, PostgreSQL),
  how long the oldest queued job has been ready to run, worker slots per queue
  (jobs.capacity), messages per Celery queue (Redis LLEN; small by design: the
  scheduler hands out only what workers can start), live workers (heartbeats),
  jobs finished in the last RECENT_WINDOW_S by error code and the age of the oldest
  stored realtime event (the event store, by its created_at index), events the
  channel layer holds for web processes that have not taken them yet (Redis), and
  integrations by provider and status.

deploy/prometheus/alerts.yml alerts on these series (docs/deployment.md, "Alerts").

Access: `Authorization: Bearer $METRICS_TOKEN`. Without METRICS_TOKEN, only with DEBUG
on (`make run`) and only a loopback client that no proxy forwarded: behind a proxy on the
same host every request comes from 127.0.0.1.
"""

from __future__ import annotations

import atexit
import hmac
import json
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# precis_jobs_finished_recent counts the jobs that finished this long ago at most.
RECENT_WINDOW_S = 600

REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter("precis_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "precis_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


# -- shared (Redis) counters and histograms for worker-side metrics ---------------------------
class _SharedStore:
    """Counters/histograms in Redis hashes (in process memory in the embedded mode).

    Increments are added up in memory and written by a background thread every
    FLUSH_INTERVAL_S (one pipeline for everything), so recording a job or an LLM call
    costs no Redis round trip on the worker's hot path. A process that dies loses at
    most its last interval of increments; `read` flushes this process's own first.
    """

    prefix = "precis:metrics:"
    FLUSH_INTERVAL_S = 1.0

    def __init__(self) -> None:
        self._local: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._pending: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._lock = threading.Lock()
        self._client = None
        self._flusher_pid: int | None = None

    def _redis(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        return self._client

    def add(self, name: str, fields: dict[str, float]) -> None:
        target = self._local if settings.EMBEDDED else self._pending
        with self._lock:
            for field, value in fields.items():
                target[name][field] += value
        if not settings.EMBEDDED and self._flusher_pid != os.getpid():
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()  # a forked child starts its own (threads do not survive fork)
            self._client = None
        threading.Thread(target=self._flush_forever, name="precis-metrics", daemon=True).start()
        atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
        if not pending:
            return
        try:
            pipe = self._redis().pipeline(transaction=False)
            for name, fields in pending.items():
                for field, value in fields.items():
                    pipe.hincrbyfloat(self.prefix + name, field, value)
            pipe.execute()
        except Exception as exc:  # metrics never break the work they measure; keep them for the next try
            logging.getLogger(__name__).debug("metrics write failed: %s", exc.__class__.__name__)
            with self._lock:
                for name, fields in pending.items():
                    for field, value in fields.items():
                        self._pending[name][field] += value

    def read(self, name: str) -> dict[str, float]:
        if settings.EMBEDDED:
            with self._lock:
                return dict(self._local[name])
        self.flush()
        raw = self._redis().hgetall(self.prefix + name)
        return {k.decode(): float(v) for k, v in raw.items()}


STORE = _SharedStore()


def _labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _histogram_fields(labels: dict[str, str], value: float, buckets) -> dict[str, float]:
    key = _labels_key(labels)
    fields = {f"{key}|count": 1.0, f"{key}|sum": value}
    for bound in buckets:
        if value <= bound:
            fields[f"{key}|le={bound}"] = 1.0
    return fields


def record_job_finished(*, kind: str, status: str, duration_s: float | None) -> None:
    STORE.add("jobs_finished", {_labels_key({"kind": kind, "status": status}): 1.0})
    if duration_s is not None:
        STORE.add("job_duration", _histogram_fields({"kind": kind, "status": status}, duration_s, JOB_BUCKETS))


def record_llm_call(
    *, provider: str, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0, error: str | None = None
) -> None:
    labels = {"provider": provider}
    STORE.add("llm_calls", {_labels_key({**labels, "outcome": error or "ok"}): 1.0})
    STORE.add("llm_latency", _histogram_fields(labels, seconds, LLM_BUCKETS))
    if prompt_tokens or completion_tokens:
        STORE.add(
            "llm_tokens",
            {
                _labels_key({**labels, "kind": "prompt"}): float(prompt_tokens),
                _labels_key({**labels, "kind": "completion"}): float(completion_tokens),
            },
        )


def worker_heartbeat(hostname: str) -> None:
    """Called by each worker every few seconds (config.celery)."""
    if not settings.EMBEDDED:
        STORE._redis().set(f"precis:worker-alive:{hostname}", str(time.time()), ex=60)


def workers_alive() -> int:
    if settings.EMBEDDED:
        return 0
    return sum(1 for _ in STORE._redis().scan_iter(match="precis:worker-alive:*", count=100))


class _ScrapeTimeCollector:
    """Metrics computed when scraped: from Redis (counters, queues, workers) and PostgreSQL
    (jobs, events, integrations). A dependency that is down drops only its own series, and
    `precis_dependency_up{dependency}` says which one: a scrape never fails for it. Once a
    part finds its dependency down, the parts after it that need it are skipped: each
    would wait out the same connection timeout, and the scrape would outlast Prometheus'."""

    def collect(self):
        from django.db import DatabaseError
        from redis import RedisError

        from jobs.capacity import BrokerUnavailable

        up = {"redis": 1.0, "database": 1.0}
        parts = {
            "redis": (self._stored, self._live, self._channel_backlog),
            "database": (self._jobs, self._finished_recent, self._event_store, self._integrations),
        }
        for dependency, group in parts.items():
            for part in group:
                if not up[dependency]:
                    break
                try:
                    yield from part()
                except (RedisError, BrokerUnavailable, OSError):
                    up["redis"] = 0.0
                except DatabaseError:
                    up["database"] = 0.0
        family = GaugeMetricFamily(
            "precis_dependency_up", "1 when the scrape could read the dependency", labels=["dependency"]
        )
        for name, value in up.items():
            family.add_metric([name], value)
        yield family

    def _stored(self):
        yield from self._counter("precis_jobs_finished", "Jobs that reached a final status", "jobs_finished")
        yield from self._counter("precis_llm_calls", "LLM calls by outcome (ok or error code)", "llm_calls")
        yield from self._counter("precis_llm_tokens", "LLM tokens", "llm_tokens")
        yield from self._histogram("precis_job_duration_seconds", "Job run time", "job_duration", ["kind", "status"])
        yield from self._histogram("precis_llm_call_duration_seconds", "LLM call latency", "llm_latency", ["provider"])

    def _jobs(self):
        from django.db.models import Count

        from jobs import scheduler
        from jobs.models import Job

        active = GaugeMetricFamily("precis_jobs_active", "Queued and running jobs", labels=["kind", "status"])
        rows = Job.unscoped_objects.filter(status__in=["queued", "running"]).values("kind", "status")
        for row in rows.annotate(n=Count("pk")).order_by():
            active.add_metric([row["kind"], row["status"]], row["n"])
        waiting = GaugeMetricFamily(
            "precis_jobs_waiting", "Jobs waiting for a worker's slot (the fair queue)", labels=["queue"]
        )
        counts = scheduler.waiting_counts()
        for queue in scheduler.JOB_QUEUES:
            waiting.add_metric([queue], counts.get(queue, 0))
        yield active
        yield waiting
        yield self._oldest_queued()

    def _oldest_queued(self) -> GaugeMetricFamily:
        """Per queue and priority, how long the longest-waiting queued job has been ready to
        run: since it entered `queued` (created, or put back by job_retry_later: the only writes
        that set a queued job's `updated_at`) or since its retry delay ended (`not_before`).
        A job still inside its delay is not waiting yet. Dispatched jobs a worker has not
        started count too: for the alert, both are a job nobody runs."""
        from django.db.models import Min, Q
        from django.db.models.functions import Coalesce
        from django.utils import timezone

        from jobs import scheduler
        from jobs.models import Job

        now = timezone.now()
        rows = (
            Job.unscoped_objects.filter(status=Job.Status.QUEUED)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .values("queue", "priority")
            .annotate(since=Min(Coalesce("not_before", "updated_at")))
            .order_by()
        )
        priorities = {priority.value: priority.label.lower() for priority in Job.Priority}
        ages = {(queue, priority): 0.0 for queue in scheduler.JOB_QUEUES for priority in priorities.values()}
        for row in rows:
            key = (row["queue"], priorities.get(row["priority"], str(row["priority"])))
            ages[key] = max(ages.get(key, 0.0), (now - row["since"]).total_seconds())
        family = GaugeMetricFamily(
            "precis_jobs_oldest_queued_seconds",
            "How long the oldest queued job has been ready to run (0: none queued)",
            labels=["queue", "priority"],
        )
        for (queue, priority), age in sorted(ages.items()):
            family.add_metric([queue, priority], max(age, 0.0))
        return family

    def _finished_recent(self):
        """Jobs finished in the last RECENT_WINDOW_S by kind, status and error code, counted from
        the job events of the event store (one job.succeeded/failed/cancelled per job, stored at
        commit; a range of its created_at index). Jobs are not indexed by when they finished."""
        from django.db.models import Count
        from django.db.models.fields.json import KT
        from django.utils import timezone

        from realtime.models import StoredEvent

        since = timezone.now() - timedelta(seconds=RECENT_WINDOW_S)
        rows = (
            StoredEvent.unscoped_objects.filter(
                created_at__gte=since, type__in=["job.succeeded", "job.failed", "job.cancelled"]
            )
            .values(kind=KT("data__kind"), status=KT("data__status"), code=KT("data__error__code"))
            .annotate(n=Count("pk"))
            .order_by()
        )
        family = GaugeMetricFamily(
            "precis_jobs_finished_recent",
            f"Jobs finished in the last {RECENT_WINDOW_S} s by kind, status and error code (empty: none)",
            labels=["kind", "status", "code"],
        )
        for row in rows:
            family.add_metric([row["kind"] or "", row["status"] or "", row["code"] or ""], row["n"])
        yield family

    def _event_store(self):
        from django.db.models import Min
        from django.utils import timezone

        from realtime.models import StoredEvent

        yield GaugeMetricFamily(
            "precis_realtime_event_retention_seconds",
            "How long stored realtime events are kept (REALTIME_EVENT_RETENTION_HOURS)",
            value=settings.REALTIME_EVENT_RETENTION_HOURS * 3600,
        )
        oldest = StoredEvent.unscoped_objects.aggregate(oldest=Min("created_at"))["oldest"]
        yield GaugeMetricFamily(
            "precis_realtime_events_oldest_seconds",
            "Age of the oldest stored realtime event (beat purges them past retention; 0: none)",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )

    def _integrations(self):
        from django.db.models import Count

        from integrations.models import Integration

        counts: dict[tuple[str, str], int] = {}
        for row in Integration.unscoped_objects.values("provider", "status").annotate(n=Count("pk")).order_by():
            counts[(row["provider"], row["status"])] = row["n"]
        family = GaugeMetricFamily(
            "precis_integrations",
            "Integrations by provider and status (needs_reauth: its organization must reconnect it)",
            labels=["provider", "status"],
        )
        # Every status of every provider in use, zeros included: a change shows even from 0.
        for provider in sorted({provider for provider, _ in counts}):
            for status in Integration.Status.values:
                family.add_metric([provider, status], counts.get((provider, status), 0))
        yield family

    def _live(self):
        from jobs import capacity, scheduler

        depth = GaugeMetricFamily("precis_queue_depth", "Messages waiting per Celery queue", labels=["queue"])
        if not settings.EMBEDDED:
            client = STORE._redis()
            for queue in settings.CELERY_TASK_QUEUES:
                depth.add_metric([queue], client.llen(queue))
        slots = GaugeMetricFamily("precis_worker_slots", "Job slots of the live workers per queue", labels=["queue"])
        for queue, count in capacity.capacity(list(scheduler.JOB_QUEUES)).items():
            slots.add_metric([queue], count)
        alive = GaugeMetricFamily(
            "precis_workers_alive", "Celery workers with a recent heartbeat", value=workers_alive()
        )
        yield depth
        yield slots
        yield alive

    def _channel_backlog(self):
        """Realtime events the channel layer holds for web processes that have not taken them:
        every daphne process pops its sockets' messages from one sorted set of its own,
        `<prefix>specific.<process>!` (channels-redis), scored by the time they were sent. A
        live process empties it within milliseconds; messages past CHANNEL_EXPIRY_S are
        dropped and their sockets catch up from the store. The layer runs on REDIS_URL."""
        if settings.EMBEDDED:
            return
        prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "asgi")
        client = STORE._redis()
        keys = list(client.scan_iter(match=f"{prefix}specific.*", count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.zcard(key)
        replies = pipe.execute()
        now = time.time()
        sent_at = [oldest[0][1] for oldest in replies[0::2] if oldest]
        yield GaugeMetricFamily(
            "precis_realtime_backlog_messages",
            "Realtime messages sent to web processes and not taken by them yet",
            value=sum(replies[1::2]),
        )
        yield GaugeMetricFamily(
            "precis_realtime_backlog_oldest_seconds",
            "Age of the oldest realtime message a web process has not taken yet (0: none)",
            value=max(0.0, now - min(sent_at)) if sent_at else 0.0,
        )

    def _counter(self, name, documentation, store_name):
        values = STORE.read(store_name)
        labelnames = sorted(json.loads(next(iter(values)))) if values else []
        family = CounterMetricFamily(name, documentation, labels=labelnames)
        for key, value in values.items():
            labels = json.loads(key)
            family.add_metric([labels[n] for n in labelnames], value)
        yield family

    def _histogram(self, name, documentation, store_name, labelnames):
        values = STORE.read(store_name)
        series: dict[str, dict[str, float]] = defaultdict(dict)
        for field, value in values.items():
            key, _, part = field.rpartition("|")
            series[key][part] = value
        family = HistogramMetricFamily(name, documentation, labels=labelnames)
        buckets = JOB_BUCKETS if store_name == "job_duration" else LLM_BUCKETS
        for key, parts in series.items():
            labels = json.loads(key)
            cumulative = [(str(b), parts.get(f"le={b}", 0.0)) for b in buckets] + [("+Inf", parts.get("count", 0.0))]
            family.add_metric([labels[n] for n in labelnames], cumulative, sum_value=parts.get("sum", 0.0))
        yield family


REGISTRY.register(_ScrapeTimeCollector())


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
    return settings.DEBUG and not forwarded and request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")


def metrics_view(request):
    if not _allowed(request):
        return HttpResponse(
            "Forbidden: send Authorization: Bearer $METRICS_TOKEN (set METRICS_TOKEN on the server).\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
