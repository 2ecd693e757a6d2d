"""A worker rides out a broker outage of any length (its own redis-server, stopped and
started by the test)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery

from config.tests.process_fixtures import OwnRedis, Worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

OLD_GIVE_UP_S = 12  # CELERY_BROKER_CONNECTION_MAX_RETRIES = 3 ended the worker after about this


def retried_after(worker: Worker, moment: datetime) -> bool:
    """Has the worker logged a reconnection attempt stamped after `moment`?"""
    for line in worker.log_path.read_text().splitlines():
        if "Trying again" in line and line.startswith("{"):
            stamp = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00"))
            if stamp > moment:
                return True
    return False


def logged_since(worker: Worker, offset: int, text: bytes) -> bool:
    with open(worker.log_path, "rb") as log:
        log.seek(offset)
        return text in log.read()


def test_a_worker_survives_a_long_broker_outage_and_consumes_again(fake_llm_server, fake_providers_server):
    broker = OwnRedis().start()
    worker = Worker(
        fake_llm_server.url,
        fake_providers_server.url,
        name="outage",
        queues="default",
        extra_env={"REDIS_URL": broker.url},
    )
    try:
        worker.start()
        outage = datetime.now(UTC)
        broker.stop()
        # still trying to reconnect after the point where the old limit gave up for good
        wait_until(lambda: retried_after(worker, outage + timedelta(seconds=OLD_GIVE_UP_S + 3)), timeout=90)
        assert worker.process.poll() is None, "the worker gave up on the broker"
        offset = worker.log_path.stat().st_size
        broker.start()
        wait_until(lambda: logged_since(worker, offset, b"Connected to redis"), timeout=60)
        Celery(broker=broker.url).send_task("jobs.tick", queue="default")
        wait_until(lambda: logged_since(worker, offset, b"Task jobs.tick"), timeout=30)
    finally:
        worker.stop()
        broker.stop()
