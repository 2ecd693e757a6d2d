"""What-if experiment for bench/pipeline.py: the same daphne + worker + client, with candidate
fixes applied by monkeypatching at start-up — evidence for the recommendations, never part of
`run()` and never imported by the app. Interleaves variants and prints CPU per job (from /proc,
robust to a noisy machine), burst throughput and light-load latency.

    .venv/bin/python -m bench._pipeline_whatif "" "loop" "loop,noprogress,inlinestore,sockettimeout"

Fixes (comma-separated, PIPELINE_WHATIF in the children's environment):
- loop: the worker sends channel-layer messages on one persistent event loop instead of
  `async_to_sync(layer.group_send)` per event (realtime/events.py), which builds a new loop,
  thread, Redis connection pool and connection for every event;
- noprogress: no `job.progress` update + event for the final on_progress(99) of a single-call
  summary (summaries/summarizer.py), one transaction and one event less per job;
- inlinestore: an event published inside a transaction is stored (org row lock, seq, insert) in
  that transaction, not in a transaction of its own after commit; only the channel-layer send
  waits for the commit (realtime/events.py publish/send_now). As is, this deadlocks: the worker's
  deferred FK check on the document at COMMIT against summary_request's SELECT ... FOR UPDATE
  (summaries/services.py), which then waits for the organization row the worker holds;
- sockettimeout: the channel layer's Redis connections get socket_timeout=15 s (> channels_redis'
  5 s BZPOPMIN), so an idle socket's consumer does not crash (in the app itself since 45180e9).

Entry points used by the children: `bench._pipeline_whatif:application` (daphne) and
`-A bench._pipeline_whatif` (celery).
"""

from __future__ import annotations

import contextlib
import os
import sys

FIXES = set(filter(None, os.environ.get("PIPELINE_WHATIF", "").split(",")))
_applied: set[str] = set()


def _once(name: str) -> bool:
    if name in _applied:
        return False
    _applied.add(name)
    return True


def _patch_settings() -> None:
    from django.conf import settings

    if "sockettimeout" in FIXES and not settings.EMBEDDED and _once("sockettimeout"):
        config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
        config["hosts"] = [{"address": settings.REDIS_URL, "socket_timeout": 15}]


def _patch_events() -> None:
    if "inlinestore" not in FIXES or not _once("inlinestore"):
        return
    import logging

    from django.db import transaction

    from realtime import events

    logger = logging.getLogger("bench.whatif")
    original_store = events.store

    def send_only(event) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        try:
            events.async_to_sync(layer.group_send)(
                events.org_group(event["envelope"]["org_id"]), {"type": "event.message", "event": event}
            )
        except Exception:
            logger.warning("could not send event", exc_info=True)

    def publish(org_id, type, data, user_id=None):
        event = events.build_event(org_id, type, data, user_id)
        if transaction.get_connection().in_atomic_block:
            event = original_store(event)  # a savepoint inside the caller's transaction
            transaction.on_commit(lambda: send_only(event))
        else:
            events.send_now(event)
        return event

    events.publish = publish


def _patch_worker() -> None:
    if not _once("worker"):
        return
    if "loop" in FIXES:
        import asyncio
        import threading

        from realtime import events

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="events-loop", daemon=True).start()

        def on_loop(fn):
            return lambda *a, **k: asyncio.run_coroutine_threadsafe(fn(*a, **k), loop).result(10)

        events.async_to_sync = on_loop
    if "noprogress" in FIXES:
        from summaries import services

        original = services.summarize_document

        def summarize_document(**kwargs):
            progress = kwargs.get("on_progress")
            if progress is not None:
                kwargs["on_progress"] = lambda percent: True if percent == 99 else progress(percent)
            return original(**kwargs)

        services.summarize_document = summarize_document


# -- entry points for the children --------------------------------------------------------------
def __getattr__(name: str):
    if name == "application":  # daphne
        from config.asgi import application

        _patch_settings()
        _patch_events()
        return application
    if name == "app":  # celery -A bench._pipeline_whatif
        from celery import signals

        from config.celery import app

        @signals.worker_ready.connect(weak=False)
        def _ready(**_):
            _patch_settings()
            _patch_events()
            _patch_worker()

        return app
    raise AttributeError(name)


# -- the experiment -------------------------------------------------------------------------------
def _variant(fixes: str, token: str, document_ids: list[str], bursts: int, burst_jobs: int, light_jobs: int) -> dict:
    import tempfile
    from pathlib import Path

    from bench import pipeline as bp
    from bench._pipeline_client import PipelineClient
    from bench.common import bench_env

    env = {**bench_env(bp.DB_NAME, bp.REDIS_DB, **bp.EXTRA_ENV), "PIPELINE_WHATIF": fixes}
    processes = bp.Processes(Path(tempfile.mkdtemp(prefix="precis-bench-pipeline-whatif-")))
    loop = bp.LoopThread()
    client = None
    out: dict = {"tp": [], "worker": [], "daphne": [], "light": [], "failed": 0}
    try:
        port = bp._free_port()
        daphne = processes.start(
            "daphne",
            [bp._venv_bin("daphne"), "--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port),
             "bench._pipeline_whatif:application"],
            env,
        )  # fmt: skip
        worker = processes.start(
            "worker",
            [bp._venv_bin("python"), "-m", "celery", "-A", "bench._pipeline_whatif", "worker", "--pool", "solo",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"bench-pipeline-whatif-{os.getpid()}@%h"],
            env,
        )  # fmt: skip
        bp._wait_http(f"http://127.0.0.1:{port}/health/live", processes)
        client = PipelineClient(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", token, document_ids)
        loop.run(client.open())
        bp._precis_latency_round(loop, client, 30, 20.0)  # warm-up
        for _ in range(bursts):
            light = bp._precis_latency_round(loop, client, light_jobs, 4.0)
            out["light"] += [r["latency"] * 1000 for r in light if r["ok"]]
            before = bp.proc_cpu_s(daphne.pid), bp.proc_cpu_s(worker.pid)
            tp, records = bp._precis_burst_round(loop, client, burst_jobs)
            after = bp.proc_cpu_s(daphne.pid), bp.proc_cpu_s(worker.pid)
            ok = sum(r["ok"] for r in records)
            out["failed"] += len(records) - ok
            out["tp"].append(tp)
            out["daphne"].append((after[0] - before[0]) * 1000 / ok)
            out["worker"].append((after[1] - before[1]) * 1000 / ok)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):  # stopping anyway
                loop.run(client.close(), timeout=30)
        loop.stop()
        processes.stop()
    return out


def main(argv: list[str]) -> None:
    import redis

    from bench import pipeline as bp
    from bench.common import median, percentile, setup_django

    variants = argv or ["", "loop,noprogress,inlinestore,sockettimeout"]
    setup_django(bp.DB_NAME, bp.REDIS_DB, **bp.EXTRA_ENV)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    _org, document_ids, token = bp._fixtures()
    for _repeat in range(2):
        for fixes in variants:
            o = _variant(fixes, token, document_ids, bursts=2, burst_jobs=100, light_jobs=20)
            print(
                f"[{fixes or 'as is'}] CPU/job worker {median(o['worker']):.1f} ms,"
                f" daphne {median(o['daphne']):.1f} ms;"
                f" burst {median(o['tp']):.1f} jobs/s; light load p50 {percentile(o['light'], 50):.1f} ms,"
                f" p99 {percentile(o['light'], 99):.1f} ms; failed {o['failed']}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
