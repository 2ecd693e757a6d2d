"""The Celery application.

Workers start with `celery -A config worker`; beat with `celery -A config beat`.
Settings come from Django's settings (the CELERY_ namespace). Task start,
finish and failure are logged with the task and job ids bound; each worker
process reports a heartbeat (seen in /metrics and /health/ready).
"""

import itertools
import os
import threading
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("precis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_task_started: dict[str, float] = {}
HEARTBEAT_S = 15.0  # the metrics' worker-alive beat; the capacity registration is refreshed more often


def _log():
    import structlog

    return structlog.get_logger("precis.tasks")


@signals.task_prerun.connect
def _task_prerun(task_id=None, task=None, kwargs=None, **_):
    import structlog

    kwargs = kwargs or {}
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=task.name if task else None, job_id=kwargs.get("job_id"), org_id=kwargs.get("org_id")
    )
    _task_started[task_id] = time.perf_counter()
    _log().info("task started")


@signals.task_postrun.connect
def _task_postrun(task_id=None, state=None, **_):
    import structlog

    started = _task_started.pop(task_id, None)
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    _log().info("task finished", state=state, duration_ms=duration)
    structlog.contextvars.clear_contextvars()


@signals.task_failure.connect
def _task_failure(task_id=None, exception=None, **_):
    _log().error("task failed", error=exception.__class__.__name__ if exception else None, exc_info=exception)


@signals.celeryd_init.connect
def _io_threads(conf=None, options=None, **_):
    """A threads-pool worker (the `io` one) runs as many threads as its queues have slots
    (LLM_CONCURRENCY for `llm`, INGEST_CONCURRENCY for `ingest`) unless its command line says
    `--concurrency`: the settings are the one place those numbers live."""
    from jobs.scheduler import io_slots

    options = options or {}
    pool = options.get("pool") or options.get("pool_cls") or conf.worker_pool
    if "thread" in str(pool) and not options.get("concurrency"):
        queues = options.get("queues") or ["llm", "ingest"]
        if isinstance(queues, str):
            queues = queues.split(",")
        conf.worker_concurrency = max(1, sum(io_slots(queue.strip()) or 1 for queue in queues))


@signals.worker_init.connect
def _send_events_through_one_loop(**_):
    """Events go to the channel layer through one loop per worker process (realtime.sender)."""
    from realtime import sender

    sender.use_background_loop()


@signals.worker_ready.connect
def _register_capacity(sender=None, **_):
    """The worker's slots, for the scheduler (jobs.runtime); refreshed by the heartbeat."""
    from jobs import runtime

    try:
        runtime.worker_ready(sender)
    except Exception as exc:  # Redis down at start: the heartbeat registers it later
        _log().warning("capacity registration failed", error=exc.__class__.__name__)


@signals.worker_shutdown.connect
def _unregister_capacity(**_):
    from jobs import runtime

    try:
        runtime.worker_stopped()
    except Exception as exc:  # its entry expires by itself
        _log().info("capacity unregistration failed", error=exc.__class__.__name__)


@signals.worker_process_init.connect
@signals.worker_ready.connect
def _start_heartbeat(sender=None, signal=None, **_):
    from django.conf import settings

    if settings.EMBEDDED:
        return
    import socket

    from config.metrics import worker_heartbeat
    from jobs import capacity, runtime

    name = f"{socket.gethostname()}:{os.getpid()}"
    main = signal is signals.worker_ready  # the main process holds the capacity registration

    interval = capacity.REFRESH_S if main else HEARTBEAT_S
    every = max(1, round(HEARTBEAT_S / interval))

    def beat() -> None:
        failing = False
        for count in itertools.count():
            try:
                if count % every == 0:
                    worker_heartbeat(name)
                if main:
                    runtime.worker_refresh()
                failing = False
            except Exception as exc:  # Redis blip: try again next beat
                if not failing:  # once per outage
                    _log().warning("heartbeat failed", error=exc.__class__.__name__)
                failing = True
            time.sleep(interval)

    threading.Thread(target=beat, name="precis-heartbeat", daemon=True).start()
