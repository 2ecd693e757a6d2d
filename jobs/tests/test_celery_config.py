"""The Celery configuration the issue asks for, checked on the real app object."""

import subprocess
import sys

from django.conf import settings

from config.celery import app
from jobs.scheduler import JOB_QUEUES, TASKS


def test_worker_without_q_consumes_every_queue_we_use():
    declared = set(app.amqp.queues)
    assert set(JOB_QUEUES) | {"default"} <= declared


def test_reliability_settings():
    conf = app.conf
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"] and conf.result_serializer == "json"
    assert conf.result_backend == "django-db"
    transport = conf.broker_transport_options
    assert transport["socket_timeout"] and transport["socket_connect_timeout"]
    assert settings.LLM_TIMEOUT_S < conf.task_soft_time_limit < conf.task_time_limit < transport["visibility_timeout"]
    assert conf.beat_schedule["reap-stale-jobs"]["task"] == "jobs.reap_stale_jobs"
    assert conf.beat_schedule["tick"]["task"] == "jobs.tick"
    assert conf.beat_schedule["tick"]["schedule"] == settings.SCHEDULER_TICK_S


def test_tasks_are_registered():
    app.loader.import_default_modules()
    assert {*TASKS.values(), "jobs.reap_stale_jobs", "jobs.tick"} <= set(app.tasks)


def test_misordered_timeouts_refuse_to_start():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        env={"DEBUG": "true", "LLM_TIMEOUT_S": "120", "JOB_SOFT_TIME_LIMIT_S": "60", "PATH": "/usr/bin:/bin"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Timeouts must be ordered" in result.stderr
