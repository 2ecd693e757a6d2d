"""The raw baseline of bench/pipeline.py: a Redis LPUSH/BRPOP queue with the same database
writes per job as Precis, and nothing else (no HTTP, no framework, no events).

    producer (one process per round)            consumer (one long-lived process)
    INSERT job (queued)           ── commit     BRPOP queue
    LPUSH queue {id, done}                      UPDATE job → running          ── commit
                                                INSERT summary + UPDATE job → succeeded ── commit
                                                LPUSH done {id, t}

The commits mirror Precis' own transactions for the same rows (jobs/services.py: the job
insert; job_start; summaries/services.py:_store writes the summary and marks the job
succeeded in one transaction). Timestamps are `time.perf_counter()` (CLOCK_MONOTONIC,
system-wide on Linux, so comparable across processes).

    python -m bench._pipeline_baseline consumer --dsn ... --redis ...
    python -m bench._pipeline_baseline produce --dsn ... --redis ... --n 100 --rate 15 --done KEY
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

QUEUE = "bench:pipeline:baseline:queue"
STOP = "__stop__"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_baseline_job (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    kind varchar(16) NOT NULL,
    status varchar(16) NOT NULL,
    progress smallint NOT NULL DEFAULT 0,
    payload jsonb NOT NULL,
    result jsonb NOT NULL DEFAULT '{}',
    lease_token varchar(36) NOT NULL DEFAULT '',
    attempts smallint NOT NULL DEFAULT 0,
    summary_id uuid NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    started_at timestamptz NULL,
    finished_at timestamptz NULL
);
CREATE INDEX IF NOT EXISTS bench_baseline_job_org_created ON bench_baseline_job (org_id, created_at DESC);
CREATE TABLE IF NOT EXISTS bench_baseline_summary (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    job_id uuid NOT NULL UNIQUE REFERENCES bench_baseline_job (id) DEFERRABLE INITIALLY DEFERRED,
    content text NOT NULL,
    parameters jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
"""

SUMMARY_TEXT = (
    "The quarterly review found that delivery times improved while support costs stayed flat. "
    "The team recommends moving the remaining customers to the new platform before the summer release. "
) * 4


def prepare(dsn: str) -> None:
    """Create (once) and empty the baseline tables."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("TRUNCATE bench_baseline_summary, bench_baseline_job")


def consumer(dsn: str, redis_url: str) -> None:
    import psycopg
    import redis
    from psycopg.types.json import Jsonb

    r = redis.Redis.from_url(redis_url, socket_timeout=None)  # BRPOP blocks until a job or STOP
    with psycopg.connect(dsn, autocommit=True) as conn:
        print("ready", flush=True)
        while True:
            _, raw = r.brpop([QUEUE], timeout=0)  # blocks: no polling
            if raw == STOP.encode():
                return
            message = json.loads(raw)
            job_id = message["id"]
            lease = str(uuid.uuid4())
            conn.execute(
                "UPDATE bench_baseline_job SET status = 'running', attempts = attempts + 1, lease_token = %s,"
                " started_at = now(), updated_at = now() WHERE id = %s AND status = 'queued'",
                [lease, job_id],
            )
            summary_id = uuid.uuid4()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO bench_baseline_summary (id, org_id, job_id, content, parameters, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, now())",
                    [summary_id, message["org"], job_id, SUMMARY_TEXT, Jsonb({"max_words": 150, "temperature": 0.2})],
                )
                conn.execute(
                    "UPDATE bench_baseline_job SET status = 'succeeded', progress = 100, summary_id = %s,"
                    " result = %s, finished_at = now(), updated_at = now()"
                    " WHERE id = %s AND status = 'running' AND lease_token = %s",
                    [summary_id, Jsonb({"summary_id": str(summary_id), "strategy": "single"}), job_id, lease],
                )
            r.lpush(message["done"], json.dumps({"id": job_id, "t": time.perf_counter()}))


def produce(dsn: str, redis_url: str, n: int, rate: float, done: str) -> None:
    """Insert and enqueue n jobs, at `rate` per second (open loop) or as fast as possible (0)."""
    import psycopg
    import redis
    from psycopg.types.json import Jsonb

    r = redis.Redis.from_url(redis_url)
    org = str(uuid.uuid4())
    sent: list[tuple[str, float]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        r.ping()
        cpu = time.process_time()
        start = time.perf_counter() + 0.02
        for i in range(n):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # the open-loop schedule of the load generator, not the path
            t0 = time.perf_counter()
            job_id = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO bench_baseline_job (id, org_id, kind, status, payload, created_at, updated_at)"
                " VALUES (%s, %s, 'summarize', 'queued', %s, now(), now())",
                [job_id, org, Jsonb({"template_id": None, "provider": "local", "model": None, "options": {}})],
            )
            r.lpush(QUEUE, json.dumps({"id": job_id, "org": org, "done": done}))
            sent.append((job_id, t0))
        cpu = time.process_time() - cpu
    json.dump({"sent": sent, "cpu_s": cpu}, sys.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["consumer", "produce", "prepare"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--done", default="")
    args = parser.parse_args(argv)
    if args.role == "consumer":
        consumer(args.dsn, args.redis)
    elif args.role == "produce":
        produce(args.dsn, args.redis, args.n, args.rate, args.done)
    else:
        prepare(args.dsn)


if __name__ == "__main__":
    main()
