"""Job pipeline: POST /api/v1/documents/{id}/summarize/ → `job.succeeded` on /ws/events/.

Real processes: one daphne (HTTP + WebSocket) and one Celery worker (`--pool solo`), both
against this benchmark's PostgreSQL database and Redis db 7, with the built-in offline
`local` provider as the stub LLM (it answers in well under a millisecond for the
benchmark's documents). The client (bench/_pipeline_client.py) sits in this process.

- Latency: open loop at a fixed rate (requests are sent on schedule whatever the answers),
  from just before the POST is written to the moment the `job.succeeded` frame is read.
- Throughput: a burst of N jobs posted over a few keep-alive connections, from the first
  POST to the last `job.succeeded`.
- Baseline (bench/_pipeline_baseline.py): a producer process INSERTs the job row and
  LPUSHes it; a consumer process BRPOPs it and does Precis' other writes for the job
  (running; summary + succeeded in one transaction); nothing else. Same rates, same N.

Rounds are interleaved (Precis, baseline, Precis, ...); figures are medians of rounds
(latency percentiles over all Precis jobs of the latency rounds).

    .venv/bin/python -m bench.pipeline --scale small|full
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

from bench._ws_procs import Processes
from bench.common import (
    ROOT,
    bench_env,
    figure,
    free_port,
    median,
    parse_scale,
    percentile,
    print_result,
    save_result,
    setup_django,
)

DB_NAME = "precis_bench_pipeline"
REDIS_DB = 7
USER_EMAIL = "bench-pipeline@bench.precis.test"
EXTRA_ENV = {"JWT_ACCESS_MINUTES": "120"}  # the socket must outlive the run (closed 4401 at expiry)
# Extra environment for one child only (experiments; empty: the app's defaults).
WEB_EXTRA_ENV: dict[str, str] = {}
WORKER_EXTRA_ENV: dict[str, str] = {}

CONFIG = {
    # latency: rounds × jobs at rate/s; throughput: rounds × a burst of N jobs
    "small": {
        "light_jobs": 30,
        "light_rate": 3.0,
        "latency_rounds": 2,
        "latency_jobs": 100,
        "rate": 15.0,
        "burst_rounds": 3,
        "burst_jobs": 60,
    },
    "full": {
        "light_jobs": 90,
        "light_rate": 3.0,
        "latency_rounds": 4,
        "latency_jobs": 250,
        "rate": 15.0,
        "burst_rounds": 5,
        "burst_jobs": 300,
    },
}
BURST_CONCURRENCY = 4
TARGET_P50_MS = 30.0
TARGET_P99_MS = 150.0
TARGET_RATIO = 0.25

SENTENCES = [
    "The quarterly review covered delivery, support and the migration to the new platform.",
    "Delivery times improved by eleven percent after the warehouse in Lyon switched to the new routing system.",
    "Support costs stayed flat even though the number of customers grew by a fifth.",
    "Most of the savings came from the self-service portal, which now answers half of all billing questions.",
    "The migration to the new platform is two thirds done and is expected to finish before the summer release.",
    "Three large customers asked to postpone their migration until their own audits are complete.",
    "The team recommends offering those customers a dedicated migration window in September.",
    "Hiring remained slower than planned, with four of the seven open engineering positions still vacant.",
    "The board asked for a clearer plan for the vacancies and for a risk review of the summer release.",
    "Security testing found no critical issues, and two medium findings were fixed within a week.",
    "Energy use in the data centre fell after the older storage arrays were retired.",
    "The next review will focus on customer retention and on the cost of the remaining legacy systems.",
]
DOCUMENT_TEXT = "\n\n".join(" ".join(SENTENCES[i : i + 3]) for i in range(0, len(SENTENCES), 3))


# -- processes ------------------------------------------------------------------------------------
def _venv_bin(name: str) -> str:
    candidate = ROOT / ".venv" / "bin" / name
    return str(candidate) if candidate.exists() else str(Path(sys.executable).parent / name)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_http(url: str, processes: Processes, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check()
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)  # start-up only
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


# -- fixtures ---------------------------------------------------------------------------------------
DOCUMENTS = 8  # requests go round-robin over these (identical text), as over a real library


def _fixtures() -> tuple[str, list[str], str]:
    """(org id, document ids, access token); earlier runs' jobs, events and documents are removed."""
    from django.db import connection

    from accounts.models import User
    from accounts.tokens import token_pair_for
    from documents.services import document_create
    from organizations.services import organization_create

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_job, summaries_summary, realtime_storedevent, documents_document")
    user = User.objects.select_related("org").filter(email=USER_EMAIL).first()
    if user is None:
        _org, user = organization_create(
            name="Bench pipeline", admin_email=USER_EMAIL, admin_password=secrets.token_urlsafe(24)
        )
    documents = [
        document_create(org=user.org, created_by=user, title=f"Quarterly review {i + 1}", content=DOCUMENT_TEXT)
        for i in range(DOCUMENTS)
    ]
    return str(user.org_id), [str(d.pk) for d in documents], token_pair_for(user)["access"]


def _job_times(job_ids: list[str]) -> dict[str, tuple[datetime, datetime, datetime]]:
    from jobs.models import Job

    rows = Job.unscoped_objects.filter(pk__in=job_ids).values_list("pk", "created_at", "started_at", "finished_at")
    return {str(pk): (created, started, finished) for pk, created, started, finished in rows}


class ConnectionMonitor:
    """Samples how many PostgreSQL connections this benchmark's database has (4 Hz, own connection)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pg-monitor", daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(0.25):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                self.samples.append((time.monotonic(), count))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def peak_since(self, since: float) -> int:
        return max((c for t, c in self.samples if t >= since), default=0)


# -- the client's event loop, kept running in a thread (the socket stays served between rounds) ---
class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 600.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# -- baseline -------------------------------------------------------------------------------------
class Baseline:
    def __init__(self, processes: Processes, dsn: str, redis_url: str, env: dict[str, str]):
        import redis

        self.dsn, self.redis_url, self.env = dsn, redis_url, env
        self.processes = processes
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=90)  # > the 60 s BRPOP below
        self.python = _venv_bin("python")
        subprocess.run(
            [self.python, "-m", "bench._pipeline_baseline", "prepare", "--dsn", dsn, "--redis", redis_url],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        self.consumer = processes.start(
            "baseline-consumer",
            [self.python, "-m", "bench._pipeline_baseline", "consumer", "--dsn", dsn, "--redis", redis_url],
            env,
            stdout=subprocess.PIPE,
        )
        if self.consumer.stdout.readline().strip() != b"ready":
            raise RuntimeError("the baseline consumer did not start")

    def round(self, n: int, rate: float) -> tuple[list[float], float, dict[str, float]]:
        """(per-job latencies in s, throughput in jobs/s, CPU ms per job by process) of one producer run."""
        from bench._pipeline_baseline import QUEUE

        done_key = f"bench:pipeline:baseline:done:{uuid.uuid4()}"
        producer = subprocess.Popen(
            [
                self.python, "-m", "bench._pipeline_baseline", "produce", "--dsn", self.dsn, "--redis",
                self.redis_url, "--n", str(n), "--rate", str(rate), "--done", done_key,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        consumer_cpu = proc_cpu_s(self.consumer.pid)
        try:
            finished: dict[str, float] = {}
            while len(finished) < n:
                item = self.redis.brpop([done_key], timeout=60)
                if item is None:
                    raise RuntimeError(f"baseline: only {len(finished)} of {n} jobs finished within 60 s")
                record = json.loads(item[1])
                finished[record["id"]] = record["t"]
            out, _ = producer.communicate(timeout=60)
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.wait(timeout=10)
            self.redis.delete(done_key, QUEUE)
        consumer_cpu = proc_cpu_s(self.consumer.pid) - consumer_cpu
        report = json.loads(out)
        sent = dict(report["sent"])
        latencies = [finished[job_id] - t0 for job_id, t0 in sent.items()]
        throughput = n / (max(finished.values()) - min(sent.values()))
        cpu = {"producer": report["cpu_s"] * 1000 / n, "consumer": consumer_cpu * 1000 / n}
        return latencies, throughput, cpu

    def stop(self) -> None:
        from bench._pipeline_baseline import QUEUE, STOP

        if self.consumer.poll() is None:
            self.redis.lpush(QUEUE, STOP)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.consumer.wait(timeout=10)  # else Processes.stop_all() ends it


# -- Precis rounds ----------------------------------------------------------------------------------
def _precis_latency_round(loop: LoopThread, client, n: int, rate: float) -> list[dict]:
    loop.run(client.ensure_open())
    posted, missing = loop.run(client.open_loop(n, rate, timeout=45))
    return _records(client, posted, missing)


def _precis_burst_round(loop: LoopThread, client, n: int) -> tuple[float, list[dict]]:
    loop.run(client.ensure_open())
    posted, missing = loop.run(client.burst(n, BURST_CONCURRENCY, timeout=60))
    records = _records(client, posted, missing)
    ok = [r for r in records if r["ok"]]
    first = min(p.t_post for p in posted)
    last = max(client.done[r["job_id"]][0] for r in ok)
    return len(ok) / (last - first), records


def _records(client, posted, missing) -> list[dict]:
    """One record per request; failed requests/jobs are kept (ok=False) and counted, not timed."""
    records = []
    for p in posted:
        done = client.done.get(p.job_id) if p.job_id else None
        error = p.error
        if p.job_id and done is None:
            error = (
                json.dumps(client.failed.get(p.job_id, {}).get("error")) if p.job_id in client.failed else "no event"
            )
        records.append(
            {
                "job_id": p.job_id,
                "status": p.status,
                "ok": done is not None,
                "error": error,
                "latency": (done[0] - p.t_post) if done else None,
                "post_rtt": p.t_answer - p.t_post,
                "wall_post": p.wall_post,
                "wall_done": done[1] if done else None,
            }
        )
    bad = [r for r in records if not r["ok"]]
    if len(bad) > len(records) // 5:
        raise RuntimeError(f"{len(bad)} of {len(records)} jobs did not succeed: {[r['error'] for r in bad[:3]]}")
    return records


PG_LOGS = "/var/log/postgresql"


def _pg_log_sizes() -> dict[Path, int]:
    """Sizes of the local PostgreSQL server logs (best effort: empty when not readable)."""
    sizes = {}
    for path in Path(PG_LOGS).glob("postgresql-*.log"):
        with contextlib.suppress(OSError):
            sizes[path] = path.stat().st_size
    return sizes


def _pg_deadlocks_since(sizes: dict[Path, int]) -> int | None:
    """'deadlock detected' errors in this benchmark's database since `sizes` (None: logs unreadable)."""
    if not sizes:
        return None
    count = 0
    for path, offset in sizes.items():
        try:
            with path.open("rb") as log:
                log.seek(offset)
                for line in log:
                    if f"@{DB_NAME} ERROR:  deadlock detected".encode() in line:
                        count += 1
        except OSError:
            return None
    return count


def _application_errors(log: Path) -> dict[str, int]:
    """'Exception inside application: …' lines of daphne's log, by message."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if "Exception inside application" in line:
            try:
                message = json.loads(line)["event"]
            except (ValueError, KeyError, TypeError):
                message = line[:200]
            counts[message] = counts.get(message, 0) + 1
    return counts


def _breakdown(records: list[dict]) -> dict[str, float]:
    """Medians (ms) of the path's stages, from the client's clocks and the job's timestamps."""
    records = [r for r in records if r["ok"]]
    times = _job_times([r["job_id"] for r in records])
    stages: dict[str, list[float]] = {
        "POST answered (202)": [],
        "POST sent → job row created": [],
        "job created → started (dispatch, broker, worker pick-up)": [],
        "started → finished (worker: claim event, summarize, progress, summary + succeed)": [],
        "finished → job.succeeded read by the client (commit, store event, channel layer, daphne)": [],
    }
    names = list(stages)
    for r in records:
        created, started, finished = times[r["job_id"]]
        stages[names[0]].append(r["post_rtt"])
        stages[names[1]].append(created.timestamp() - r["wall_post"])
        stages[names[2]].append((started - created).total_seconds())
        stages[names[3]].append((finished - started).total_seconds())
        stages[names[4]].append(r["wall_done"] - finished.timestamp())
    return {name: median(values) * 1000 for name, values in stages.items()}


METHOD = (
    "Real processes on loopback: one daphne (HTTP + /ws/events/) and one Celery worker (`--pool solo`), "
    "PostgreSQL and Redis db 7, default settings. Stub LLM: the built-in offline `local` provider (the default "
    "provider; extractive, well under 1 ms for this document). Latency: open loop at {rate:.0f} jobs/s "
    "(requests leave on schedule whatever the answers), from just before `POST /api/v1/documents/{{id}}/summarize/` "
    "is written to the moment the `job.succeeded` frame with that job id is read by a client on `/ws/events/` "
    '(admin token as subprotocols ["bearer", token]); p50/p99 over {latency_rounds} × {latency_jobs} jobs; '
    "also {light_jobs} jobs at {light_rate:.0f} jobs/s (no queue). Throughput: bursts of {burst_jobs} jobs "
    "POSTed over {concurrency} keep-alive connections, first POST to last job.succeeded. Baseline: a producer "
    "process INSERTs the job row (commit) and LPUSHes it; a consumer process BRPOPs it, UPDATEs it to running "
    "(commit), INSERTs the summary and UPDATEs the job to succeeded (one commit, as Precis does) and LPUSHes a "
    "done record (redis-py + psycopg), at the same rate / with the same N. Rounds interleaved Precis, baseline, "
    "Precis, …; throughput is the median of rounds. Stage breakdowns line the client's clocks up with the job's "
    "created_at/started_at/finished_at. CPU per job from /proc (user + system) of each process."
)
NOTES = (
    "Where the time goes. Throughput is bounded by the machine: in a burst every job costs daphne, the "
    "worker and the client together about 23 ms of CPU (see CPU per job; PostgreSQL and Redis come on top), "
    "and they share 2 cores, so this machine tops out at about 60-90 jobs/s on this path; the baseline "
    "spends about 0.5 ms a job. 0.25x (about 220 jobs/s here) would need the whole path, HTTP request, "
    "PostgreSQL and Redis included, under about 9 ms of CPU a job: not with Django, DRF and Celery on the "
    "path (each of the request's and the task's queries goes through the ORM; Celery's own part of a task is "
    "about 1.7 ms, see below). A py-spy profile (GIL samples, "
    "small scale, start-up excluded) of the worker: the job body 72 % (Django's ORM and the database driver "
    "61 %: the claim's UPDATE and re-SELECT, the document and template SELECTs, the summary INSERT, the "
    "succeed UPDATE and re-SELECT, two event statements, the commits; the stub LLM and the summarizer 6 %; "
    "event JSON and numbering 4 %), Celery's and kombu's loop 13 %, Celery's task wrapper 5 %, the sender "
    "thread's channel-layer sends 8 %. Of daphne: Django's sync stack and the summarize view 49 % (ORM and "
    "driver 34 %), the channel layer 22 % (reading the socket groups' messages, sending job.queued), "
    "daphne and Twisted's HTTP and WebSocket I/O 15 %, Django's async request handling 9 %, the consumer "
    "and frames 5 %. At 15 jobs/s the worker is busy a "
    "fifth of the time and queueing adds little (stage 'job created → started'); the light-load figures show "
    "the pipeline's own latency. Per summarize job the worker publishes "
    "three events in two groups: job.started after the claim, then job.succeeded and summary.created, which the "
    "transaction that stores the summary produces together (summaries/services.py:192, `job_succeed(also=...)` → "
    "`events.publish_together`, jobs/services.py:52); a single-call summary sends no job.progress "
    "(summaries/summarizer.py:102 reports progress only after a map-reduce). Each group waits for its "
    "transaction's commit (realtime/events.py:90, :99); then `send_now` numbers and stores the whole group in "
    "one SQL statement on PostgreSQL (realtime/events.py:106-116 `_STORE_SQL`: `UPDATE organizations_organization "
    "SET event_seq = event_seq + n … RETURNING event_seq` feeding one `INSERT INTO realtime_storedevent … "
    "VALUES` row per event, in autocommit, so the org row lock lasts one statement) and sends it as one channel "
    "message (`event.message`, or `event.batch` for two or more, which the consumer unpacks in order: "
    "realtime/consumers.py:210) with `realtime.sender.run(layer.group_send, …)` (realtime/events.py:182). A "
    "worker process calls `realtime.sender.use_background_loop()` at start (config/celery.py:58-63, worker_init), "
    "so each send is handed to one long-lived event loop in a daemon thread (realtime/sender.py:44-53) and "
    "channels-redis keeps its Redis connections across events. So a job costs the worker two event statements "
    "and two channel-layer sends. The rest "
    "of the task body: each job transition is a guarded UPDATE and a re-SELECT of the row with its org in one "
    "transaction (jobs/services.py `_transition`), the job's event JSON a plain dict from "
    "`jobs.serializers.job_output`, summary.created's from `summaries.serializers.summary_output` (both "
    "tested equal to the documented serializers; a ModelSerializer built its fields for every event); a "
    "LeaseKeeper "
    "thread is started and joined per job (jobs/lease.py:35, :40); metrics (`record_llm_call`, "
    "summaries/providers/local.py:139; `record_job_finished`, jobs/services.py:82) are added up in memory and "
    "written to Redis once a second by a background thread in one pipeline (config/metrics.py `_SharedStore`); "
    "Celery itself. On the request side the job is created in a transaction of its own, its job.queued event "
    "stored and sent on commit, then the task is dispatched (jobs/dispatch.py:65 UPDATEs dispatched_at and "
    "celery_task_id) and the 202 answers the job as created (jobs/views.py `job_start_response`; it re-read "
    "the row before). The HTTP side runs Django's sync middleware and the view in one thread hop "
    "(config/asgi_http.py `OneHopASGIHandler`; Django's ASGIHandler made about ten per request), which took "
    "1-2 ms off 'POST sent → job row created' and the 202. "
    "Fixed since this benchmark was first written (figures measured then, same machine): each event was stored "
    "in a transaction of its own (UPDATE organization.event_seq, SELECT it, INSERT the event) and sent with "
    "`async_to_sync(layer.group_send)`, which built a new event loop, thread, channels-redis pool and Redis "
    "connection for every event (redis-py 8 also read its package metadata per new connection); the four "
    "events per job then took about 60 % of the worker's CPU (cProfile, py-spy, /proc). In an interleaved "
    "experiment (candidate fixes monkeypatched; the harness has since been removed), sending on one "
    "persistent event loop cut the worker's CPU per job by about a third (47-50 → 30-32 ms), dropping the "
    "final progress event of a single-call summary as well to 25-30 ms; burst throughput rose from 12-13 to "
    "about 16 jobs/s and the light-load p50 from 83-88 to 62-69 ms. Both are in the app now, with the "
    "one-statement store, a transaction's events stored and sent as one group, `job_output` instead of a "
    "ModelSerializer per job event, and worker metrics buffered (they were written to Redis per LLM call and "
    "per job); the figures above measure the app as it is. Storing each event inside the job's own "
    "transaction deadlocked in that experiment: the worker's deferred foreign-key check on the document at "
    "COMMIT waits for a summarize request's SELECT … FOR UPDATE on it (summaries/services.py:50), which then "
    "waits for the organization row the worker holds; "
    "`select_for_update(no_key=True)` there (still blocks a delete, no longer blocks FK checks) or locking the "
    "organization first would be needed, so events are still stored after the commit. "
    "Found on the way, all fixed since: (1) with redis-py 8 the channel layer's default 5 s socket timeout "
    "equalled channels-redis' 5 s BZPOPMIN, so the consumer of a socket idle for 5 s crashed ('Timeout "
    "reading from 127.0.0.1:6379', close 1011); the channel layer is now `realtime.layers."
    "PrecisRedisChannelLayer` with socket_timeout 15 s (config/settings/base.py:166); the client still "
    "reconnects before each round and the count is reported. (2) Before f75f209, CONN_MAX_AGE=60 under ASGI "
    "opened a connection per request (45 open after a few hundred requests) and exhausted the shared server's "
    "max_connections: 503 database_unavailable on POSTs and worker tasks failing in job_start; Django now uses "
    "a psycopg pool per process (config/settings/base.py:115-121). (3) Such a task, failing before it claimed "
    "the job, was acked (acks_late acks failures) and the job stayed queued until the reaper re-dispatched it "
    "after JOB_REDISPATCH_AFTER_S (300 s): 25 jobs stuck in one run; `jobs.tasks.run_job_task` now retries the "
    "task on OperationalError/InterfaceError (5 s, 15 s, 45 s…, up to DATABASE_RETRIES) instead."
)

# -- no polling on the path -----------------------------------------------------------------------
POLLING_NOTES = [
    "Broker → worker: kombu's Redis transport blocks in BRPOP on the queue sockets inside the worker's "
    "event loop (kombu/transport/redis.py `_brpop_start`, `MultiChannelPoller.on_poll_start`; Celery sets "
    "`polling_interval = None`, 'disable sleep between unsuccessful polls'). Its only sleep "
    "(redis.py `get`: `sleep(min(timeout, 1))`) runs when BRPOP is paused and no socket is registered, "
    "i.e. in drain_events without an event loop — not in the worker, which runs the hub.",
    "Worker → channel layer: realtime/events.py:90/:99 defer to commit; :182 `realtime.sender.run(layer.group_send, "
    "…)` schedules the send on the worker's sender loop and waits for it with `future.result(timeout=5)` "
    "(realtime/sender.py:48-50, a wait ended by the send finishing); group_send writes each connected socket's "
    "channel key (channels_redis core.py `group_send`: ZREMRANGEBYSCORE, ZRANGE, a pipeline and one Lua EVAL); "
    "no waiting.",
    "Channel layer → socket: daphne's consumer receives with BZPOPMIN (channels_redis core.py `receive` → "
    "`_brpop_with_clean`, `brpop_timeout = 5` is the server-side block timeout, re-issued at once; "
    "realtime/layers.py:38 only wraps it in an inner task so a cancellation is not swallowed).",
    "Sleeps seen, none on the path: realtime/consumers.py:295 (`_watch`, per-socket token/membership "
    "recheck every REALTIME_RECHECK_S); jobs/lease.py:44 (`Event.wait(JOB_HEARTBEAT_S)` in the lease thread: "
    "an event wait ended by `__exit__`, so it adds no latency, but a thread is started and joined per job); "
    "config/metrics.py:93 (the metrics flusher thread, every 1 s; nothing waits for it); config/celery.py:85 "
    "(worker heartbeat every 15 s); summaries/providers/ratelimit.py:93 (only when a rate limit is configured "
    "and reached; off by default, and only the openai provider calls it); daphne server.py:130-131 "
    "(`application_checker` 1 s / `timeout_checker` 2 s housekeeping timers).",
    "The benchmark's own sleeps are the open-loop schedule of the load generator and start-up checks only.",
]


# -- main -----------------------------------------------------------------------------------------
def run(scale: str) -> dict:
    cfg = CONFIG[scale]
    started = time.monotonic()
    setup_django(DB_NAME, REDIS_DB, **EXTRA_ENV)
    import redis

    redis_url = os.environ["REDIS_URL"]
    redis.Redis.from_url(redis_url).flushdb()  # this benchmark's own Redis db
    _org_id, document_ids, token = _fixtures()
    env = bench_env(DB_NAME, REDIS_DB, **EXTRA_ENV)
    dsn = env["DATABASE_URL"]
    log_dir = Path(tempfile.mkdtemp(prefix="precis-bench-pipeline-"))
    processes = Processes(log_dir)
    loop = LoopThread()
    monitor = ConnectionMonitor(dsn).__enter__()
    connections: dict[str, int] = {}
    pg_logs = _pg_log_sizes()
    client = baseline = None
    try:
        port = free_port()
        daphne = processes.start(
            "daphne",
            [_venv_bin("daphne"), "--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port),
             "config.asgi:application"],
            {**env, **WEB_EXTRA_ENV},
        )  # fmt: skip
        worker = processes.start(
            "worker",
            [
                _venv_bin("python"), "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"bench-pipeline-{os.getpid()}@%h",
            ],
            {**env, **WORKER_EXTRA_ENV},
        )  # fmt: skip
        baseline = Baseline(processes, dsn, redis_url, env)
        _wait_http(f"http://127.0.0.1:{port}/health/live", processes)

        from bench._pipeline_client import PipelineClient

        client = PipelineClient(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", token, document_ids)
        loop.run(client.open())
        # Warm-up (also proves the worker consumes): imports, connections, caches on both sides.
        first = loop.run(client.post())
        if first.status != 202:
            raise RuntimeError(f"summarize answered {first.status}: {first.error}")
        if loop.run(client.wait_all([first.job_id], timeout=90)):
            processes.check()
            raise RuntimeError(f"the first job did not finish within 90 s; logs in {log_dir}")
        _precis_latency_round(loop, client, 20, 20.0)
        baseline.round(50, 0)
        time.sleep(0.5)
        connections["after warm-up"] = monitor.peak_since(started)

        # Light load first: the pipeline's own latency, without a queue in front of the worker.
        light = _precis_latency_round(loop, client, cfg["light_jobs"], cfg["light_rate"])
        time.sleep(0.5)

        phase = time.monotonic()
        precis_latency: list[dict] = []
        baseline_latency: list[float] = []
        latency_round_p50: dict[str, list[float]] = {"precis": [], "baseline": []}
        for _ in range(cfg["latency_rounds"]):
            records = _precis_latency_round(loop, client, cfg["latency_jobs"], cfg["rate"])
            precis_latency += records
            latency_round_p50["precis"].append(median(r["latency"] for r in records if r["ok"]) * 1000)
            time.sleep(0.5)
            latencies, _, _ = baseline.round(cfg["latency_jobs"], cfg["rate"])
            baseline_latency += latencies
            latency_round_p50["baseline"].append(median(latencies) * 1000)
            time.sleep(0.5)
        connections["latency rounds"] = monitor.peak_since(phase)

        phase = time.monotonic()
        precis_tp: list[float] = []
        baseline_tp: list[float] = []
        burst_records: list[dict] = []
        cpu: dict[str, list[float]] = {"daphne": [], "worker": [], "client": [], "producer": [], "consumer": []}
        for _ in range(cfg["burst_rounds"]):
            before = proc_cpu_s(daphne.pid), proc_cpu_s(worker.pid), time.process_time()
            tp, records = _precis_burst_round(loop, client, cfg["burst_jobs"])
            after = proc_cpu_s(daphne.pid), proc_cpu_s(worker.pid), time.process_time()
            n_ok = sum(r["ok"] for r in records)
            for name, b, a in zip(("daphne", "worker", "client"), before, after, strict=True):
                cpu[name].append((a - b) * 1000 / n_ok)
            precis_tp.append(tp)
            burst_records += records
            time.sleep(0.5)
            _, tp, base_cpu = baseline.round(cfg["burst_jobs"], 0)
            baseline_tp.append(tp)
            for name, value in base_cpu.items():
                cpu[name].append(value)
            time.sleep(0.5)
        connections["burst rounds"] = monitor.peak_since(phase)
        processes.check()
        event_counts = dict(client.event_counts)
        closed_by_server = list(client.closed_by_server)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):  # stopping anyway
                loop.run(client.close(), timeout=30)
        loop.stop()
        if baseline is not None:
            baseline.stop()
        processes.stop_all()
        monitor.__exit__()
    daphne_errors = _application_errors(log_dir / "daphne.log")
    deadlocks = _pg_deadlocks_since(pg_logs)

    lat_ms = [r["latency"] * 1000 for r in precis_latency if r["ok"]]
    light_ms = [r["latency"] * 1000 for r in light if r["ok"]]
    failures = [r for r in light + precis_latency + burst_records if not r["ok"]]
    failure_kinds: dict[str, int] = {}
    for r in failures:
        kind = f"HTTP {r['status']}: {r['error'][:160]}"
        failure_kinds[kind] = failure_kinds.get(kind, 0) + 1
    p50, p99 = percentile(lat_ms, 50), percentile(lat_ms, 99)
    base_ms = [v * 1000 for v in baseline_latency]
    tp_precis, tp_base = median(precis_tp), median(baseline_tp)
    ratio = tp_precis / tp_base
    cpu_ms = {name: median(values) for name, values in cpu.items()}
    jobs_total = event_counts.get("job.succeeded", 0)
    runtime = time.monotonic() - started

    details = {
        "Precis latency p50 / p90 / p99 / max": (
            f"{p50:.1f} / {percentile(lat_ms, 90):.1f} / {p99:.1f} / {max(lat_ms):.1f} ms"
        ),
        "Precis latency p50 per round": ", ".join(f"{v:.1f}" for v in latency_round_p50["precis"]) + " ms",
        f"Precis latency at light load ({cfg['light_rate']:.0f} jobs/s, {cfg['light_jobs']} jobs) p50 / p99": (
            f"{percentile(light_ms, 50):.1f} / {percentile(light_ms, 99):.1f} ms"
        ),
        f"baseline latency p50 / p99 ({cfg['rate']:.0f} jobs/s)": (
            f"{percentile(base_ms, 50):.2f} / {percentile(base_ms, 99):.2f} ms"
        ),
        "Precis throughput (median, rounds)": f"{tp_precis:.1f} jobs/s ({', '.join(f'{v:.1f}' for v in precis_tp)})",
        "baseline throughput (median, rounds)": f"{tp_base:.0f} jobs/s ({', '.join(f'{v:.0f}' for v in baseline_tp)})",
        "wall time per job in a burst": f"Precis {1000 / tp_precis:.1f} ms, baseline {1000 / tp_base:.2f} ms",
        "CPU per job in a burst (median of rounds)": (
            f"Precis: worker {cpu_ms['worker']:.1f} ms, daphne {cpu_ms['daphne']:.1f} ms, "
            f"client {cpu_ms['client']:.1f} ms; "
            f"baseline: consumer {cpu_ms['consumer']:.2f} ms, producer {cpu_ms['producer']:.2f} ms "
            "(PostgreSQL and Redis server CPU not included)"
        ),
        **{f"light-load stage (median): {k}": f"{v:.1f} ms" for k, v in _breakdown(light).items()},
        **{f"{cfg['rate']:.0f}/s stage (median): {k}": f"{v:.1f} ms" for k, v in _breakdown(precis_latency).items()},
        **{f"burst stage (median): {k}": f"{v:.1f} ms" for k, v in _breakdown(burst_records).items()},
        "failed requests or jobs (not timed)": (
            f"{len(failures)} of {len(light) + len(precis_latency) + len(burst_records)}"
            + ("" if not failures else ": " + "; ".join(f"{n} × {k}" for k, n in failure_kinds.items()))
        ),
        "WebSockets closed by the server between Precis rounds (the client reconnects before each round)": (
            f"{len(closed_by_server)} ({', '.join(sorted(set(closed_by_server))) or '-'})"
        ),
        "daphne 'Exception inside application' log lines": (
            "; ".join(f"{n} × {m}" for m, n in daphne_errors.items()) or "none"
        ),
        "PostgreSQL deadlocks in the benchmark database during the run": (
            "server log not readable" if deadlocks is None else str(deadlocks)
        ),
        "peak PostgreSQL connections to the benchmark database (all its processes)": ", ".join(
            f"{k} {v}" for k, v in connections.items()
        ),
        "events received per job": ", ".join(
            f"{k} {v / max(jobs_total, 1):.2f}" for k, v in sorted(event_counts.items()) if k != "pong"
        ),
        "clients": "HTTP: requests, WebSocket: websockets — the installed pins; nothing added",
        "runtime": f"{runtime:.0f} s",
    }
    result = {
        "title": "Job pipeline",
        "method": METHOD.format(**cfg, concurrency=BURST_CONCURRENCY),
        "data": (
            f"{DOCUMENTS} documents of {len(DOCUMENT_TEXT)} characters ({len(SENTENCES)} sentences), requests "
            "round-robin over them, summarized with the default system template; one organization, one admin; "
            "summarize requests with an empty body (default template and provider)."
        ),
        "figures": [
            figure("p50 latency POST → job.succeeded", p50, f"≤ {TARGET_P50_MS:.0f} ms", p50 <= TARGET_P50_MS, "ms"),
            figure("p99 latency POST → job.succeeded", p99, f"≤ {TARGET_P99_MS:.0f} ms", p99 <= TARGET_P99_MS, "ms"),
            figure(
                "throughput, one worker / raw Redis baseline", ratio, f"≥ {TARGET_RATIO}×", ratio >= TARGET_RATIO, "×"
            ),
        ],
        "details": details,
        "notes": NOTES + " No polling on the path: " + " ".join(POLLING_NOTES),
    }
    save_result("pipeline", scale, result)
    return result


def main() -> None:
    scale = parse_scale()
    result = run(scale)
    print_result(result)
    print(f"→ bench/results/pipeline.{scale}.json")


if __name__ == "__main__":
    main()
