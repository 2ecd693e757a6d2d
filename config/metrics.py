"""Prometheus metrics at /metrics.

- HTTP requests (count and latency by method, route, status): per web process,
  kept in process memory — scrape every web process (each daphne) directly.
- Everything workers do — job durations and outcomes, LLM calls, latency,
  errors and tokens — is added up in memory and written to Redis about once a
  second (HINCRBYFLOATs in one pipeline), so whichever web process is scraped
  reports the totals of every worker on every machine.
- Read at scrape time: active jobs by kind and status (PostgreSQL, partial
  index), jobs waiting for a slot per queue (the scheduler's queue, PostgreSQL),
  worker slots per queue (jobs.capacity), messages per Celery queue (Redis LLEN;
  small by design: the scheduler hands out only what workers can start), live
  workers (heartbeats).

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

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

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
    (jobs). A dependency that is down drops only its own series, and
    `precis_dependency_up{dependency}` says which one: a scrape never fails for it."""

    def collect(self):
        from django.db import DatabaseError
        from redis import RedisError

        from jobs.capacity import BrokerUnavailable

        up = {"redis": 1.0, "database": 1.0}
        for part in (self._stored, self._jobs, self._live):
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
