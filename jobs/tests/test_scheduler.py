"""The scheduler's decisions (jobs/scheduler.py) and the capacity registry (jobs/capacity.py).

The rounds here stop short of sending (`_pick`: choose and mark), on a capacity the test
sets; tests/test_fairness.py runs the whole loop through real worker processes.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import make_tenant
from jobs import capacity, scheduler
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def slots(monkeypatch, settings):
    settings.LLM_RATE_LIMIT_RPM = 60_000  # a known, generous limit: the LLM gate admits what fits
    values = {queue: 0 for queue in scheduler.JOB_QUEUES}
    monkeypatch.setattr(scheduler.capacity, "capacity", lambda queues: {q: values[q] for q in queues})
    return values


@pytest.fixture
def orgs(db):
    return {name: make_tenant(name) for name in ("Alpha", "Beta", "Gamma")}


def waiting(tenant, n=1, queue="llm", kind="summarize", **fields):
    now = timezone.now()
    return [
        Job.unscoped_objects.create(
            org=tenant.org,
            kind=kind,
            queue=queue,
            created_by=tenant.member,
            payload={"provider": "openai"},
            created_at=now + timedelta(milliseconds=i),
            **fields,
        )
        for i in range(n)
    ]


def picked_orgs(picked, orgs):
    names = {tenant.org.id: name for name, tenant in orgs.items()}
    return [names[job.org_id] for job in picked]


def test_free_slots_go_round_the_organizations(slots, orgs):
    slots["llm"] = 4
    waiting(orgs["Alpha"], 10)
    waiting(orgs["Beta"], 1)
    waiting(orgs["Gamma"], 2)
    picked = scheduler._pick()
    assert sorted(picked_orgs(picked, orgs)) == ["Alpha", "Alpha", "Beta", "Gamma"]
    assert Job.unscoped_objects.filter(dispatched_at__isnull=False).count() == 4
    assert scheduler._pick() == []  # the handed-out jobs now hold the slots


def test_the_next_slot_goes_to_whoever_has_fewest_in_flight(slots, orgs):
    slots["llm"] = 4
    for job in waiting(orgs["Alpha"], 3):
        Job.unscoped_objects.filter(pk=job.pk).update(status="running")
    waiting(orgs["Alpha"], 200)
    (beta,) = waiting(orgs["Beta"], 1)
    picked = scheduler._pick()
    assert [job.id for job in picked] == [beta.id]  # Alpha's backlog does not matter


def test_interactive_before_batch_within_an_organization(slots, orgs):
    slots["llm"] = 1
    waiting(orgs["Alpha"], 5, priority=Job.Priority.BATCH)
    (interactive,) = waiting(orgs["Alpha"], 1)  # the newest
    assert [job.id for job in scheduler._pick()] == [interactive.id]


def test_a_delayed_retry_waits_until_its_time(slots, orgs):
    slots["llm"] = 2
    (later,) = waiting(orgs["Alpha"], 1, not_before=timezone.now() + timedelta(seconds=30))
    (due,) = waiting(orgs["Beta"], 1, not_before=timezone.now() - timedelta(seconds=1))
    assert [job.id for job in scheduler._pick()] == [due.id]
    Job.unscoped_objects.filter(pk=later.pk).update(not_before=timezone.now())
    assert [job.id for job in scheduler._pick()] == [later.id]


def test_org_cap_counts_every_queue(slots, orgs, settings):
    settings.ORG_MAX_CONCURRENT_JOBS = 2
    slots.update(llm=10, summaries=10)
    (cpu,) = waiting(orgs["Alpha"], 1, queue="summaries")
    Job.unscoped_objects.filter(pk=cpu.pk).update(status="running")
    waiting(orgs["Alpha"], 5)
    waiting(orgs["Beta"], 5)
    counts = {}
    for name in picked_orgs(scheduler._pick(), orgs):
        counts[name] = counts.get(name, 0) + 1
    assert counts == {"Alpha": 1, "Beta": 2}


def test_each_queue_has_its_own_slots(slots, orgs):
    slots.update(llm=0, summaries=1)
    waiting(orgs["Alpha"], 2)
    (cpu,) = waiting(orgs["Alpha"], 1, queue="summaries")
    assert [job.id for job in scheduler._pick()] == [cpu.id]


def test_cpu_queues_keep_one_job_ready_behind_each_slot(slots, orgs):
    slots.update(llm=1, summaries=1)
    waiting(orgs["Alpha"], 3)
    waiting(orgs["Alpha"], 3, queue="summaries")
    picked = scheduler._pick()
    assert sorted(job.queue for job in picked) == ["llm", "summaries", "summaries"]


def test_one_organization_never_holds_every_ingest_slot(slots, orgs):
    slots["ingest"] = 3
    waiting(orgs["Alpha"], 50, queue="ingest", kind="ingest")
    assert picked_orgs(scheduler._pick(), orgs) == ["Alpha", "Alpha"]  # one slot stays free
    assert scheduler._pick() == []
    (beta,) = waiting(orgs["Beta"], 1, queue="ingest", kind="ingest")
    assert [job.id for job in scheduler._pick()] == [beta.id]  # at once, whatever Alpha's backlog


def test_no_worker_no_handing_out(slots, orgs):
    waiting(orgs["Alpha"], 3)
    assert scheduler._pick() == []
    assert not Job.unscoped_objects.filter(dispatched_at__isnull=False).exists()


def test_a_gate_holds_jobs_back(slots, orgs, monkeypatch):
    slots["llm"] = 5
    waiting(orgs["Alpha"], 3)
    (beta,) = waiting(orgs["Beta"], 1)
    monkeypatch.setitem(scheduler._gates, "llm", [lambda jobs: lambda job: job.org_id == beta.org_id])
    assert [job.id for job in scheduler._pick()] == [beta.id]


def test_a_failing_gate_holds_its_queue_back(slots, orgs, monkeypatch):
    slots.update(llm=5, summaries=5)
    waiting(orgs["Alpha"], 2)
    (cpu,) = waiting(orgs["Alpha"], 1, queue="summaries")

    def broken(jobs):
        raise ConnectionError("redis down")

    monkeypatch.setitem(scheduler._gates, "llm", [broken])
    assert [job.id for job in scheduler._pick()] == [cpu.id]


def test_the_llm_gate_keeps_work_in_the_fair_queue_when_the_limiter_is_booked(slots, orgs, settings):
    settings.LLM_RATE_LIMIT_RPM = 120  # room for 2 + 1 calls within the next second
    slots["llm"] = 32
    waiting(orgs["Alpha"], 10)
    assert len(scheduler._pick()) == 3


class TestCapacityRegistry:
    """On the broker's real Redis, under queue names of the test's own."""

    def test_register_refresh_expire_unregister(self):
        queues = ["test-cap-a", "test-cap-b"]
        client = capacity.broker_redis()
        client.delete(*(f"precis-capacity:{q}" for q in queues))
        capacity.register("w1@host", {"test-cap-a": 32, "test-cap-b": 32})
        capacity.register("w2@host", {"test-cap-a": 2})
        assert capacity.capacity(queues) == {"test-cap-a": 34, "test-cap-b": 32}
        seconds, _ = client.time()  # entries are stamped by Redis's clock
        for queue in queues:  # as if neither had been refreshed for longer than the TTL
            for worker in client.hkeys(f"precis-capacity:{queue}"):
                slots = client.hget(f"precis-capacity:{queue}", worker).decode().partition("|")[0]
                stale = seconds - capacity.REGISTRATION_TTL_S - 1
                client.hset(f"precis-capacity:{queue}", worker, f"{slots}|{stale}")
        assert capacity.capacity(queues) == {"test-cap-a": 0, "test-cap-b": 0}  # not refreshed: gone
        capacity.register("w1@host", {"test-cap-a": 32, "test-cap-b": 32})  # its heartbeat comes back
        assert capacity.capacity(queues) == {"test-cap-a": 32, "test-cap-b": 32}
        capacity.unregister("w1@host", queues)
        assert capacity.capacity(queues) == {"test-cap-a": 0, "test-cap-b": 0}
        client.delete(*(f"precis-capacity:{q}" for q in queues))

    def test_an_unreachable_broker_is_broker_unavailable(self, settings):
        import socket

        from config.celery import app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
        original = app.conf.broker_url
        app.conf.broker_url = closed
        try:
            with pytest.raises(capacity.BrokerUnavailable):
                capacity.capacity(["llm"])
        finally:
            app.conf.broker_url = original
