"""Streamed answers end to end across real processes: daphne (two of them), a Celery worker,
channels-redis, the loopback LLM server streaming server-sent events, and a real WebSocket
client library (`websockets`) on every socket."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise

import pytest
import requests

from accounts.tokens import token_pair_for
from config.tests.process_fixtures import wait_until
from conftest import make_tenant, make_user
from jobs.models import Job
from realtime.tests.test_e2e import open_socket, read_until
from summaries.models import Summary
from summaries.tests.fake_llm import FakeLLM

pytestmark = pytest.mark.django_db(transaction=True)

ARTICLE = (
    "The city council approved a new budget for public libraries on Monday. The budget adds funding for longer "
    "opening hours and new digital services. Library visits have risen every year since the renovation."
)


def access(user) -> str:
    return token_pair_for(user)["access"]


def ready(*sockets) -> None:
    """A socket has joined its groups once it answers a ping."""
    for ws in sockets:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def summary_of(job_id: str) -> Callable[[dict], bool]:
    return lambda event: event["type"] == "summary.created" and event["data"]["job"] == job_id


def start_streamed_job(server, token: str) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    document = requests.post(
        f"{server.http}/api/v1/documents/", json={"title": "Budget", "content": ARTICLE}, headers=headers, timeout=10
    ).json()
    job = requests.post(
        f"{server.http}/api/v1/documents/{document['id']}/summarize/",
        json={"provider": "openai", "options": {"stream": True}},
        headers=headers,
        timeout=10,
    )
    assert job.status_code == 202, job.content
    return document, job.json()


def deltas(seen: list[dict]) -> list[dict]:
    return [event for event in seen if event["type"] == "summary.delta"]


def test_a_streamed_answer_reaches_its_owner_and_the_admins_live(daphne_pair, fake_llm, tenant):
    server_a, server_b = daphne_pair
    fake_llm.stream_pace = 0.08  # about a second for the answer: several deltas at ≤ 10 a second
    peer = make_user(tenant.org)
    outsider = make_tenant("Outsiders")
    with (
        open_socket(server_a, access(tenant.member)) as ws_member,
        open_socket(server_b, access(tenant.admin)) as ws_admin,
        open_socket(server_a, access(peer)) as ws_peer,
        open_socket(server_b, access(outsider.member)) as ws_outsider,
    ):
        ready(ws_member, ws_admin, ws_peer, ws_outsider)
        document, job = start_streamed_job(server_a, access(tenant.member))

        seen = read_until(ws_member, summary_of(job["id"]))
        live = deltas(seen)
        assert len(live) >= 3, [e["type"] for e in seen]
        assert all(e["data"]["job"] == job["id"] and e["data"]["document"] == document["id"] for e in live)
        assert [e["data"]["index"] for e in live] == list(range(len(live)))
        texts = [e["data"]["text"] for e in live]
        assert all(len(later) > len(earlier) and later.startswith(earlier) for earlier, later in pairwise(texts))
        (request,) = fake_llm.requests
        assert request["stream"] is True
        assert all(FakeLLM.answer(request).startswith(text) for text in texts)  # the answer so far, each time
        types = [e["type"] for e in seen]
        assert types.index("job.succeeded") > types.index("summary.delta") and types[-1] == "summary.created"
        summary = Summary.unscoped_objects.get(job_id=job["id"])
        assert seen[-1]["data"]["content"] == summary.content and summary.content.startswith("Summary:")

        # the admin (on the other daphne process) sees the very same deltas
        texts = [(e["data"]["index"], e["data"]["text"]) for e in live]
        assert [
            (e["data"]["index"], e["data"]["text"]) for e in deltas(read_until(ws_admin, summary_of(job["id"])))
        ] == texts
        assert all(e["id"] is None for e in live)  # never a place to resume from
        # another member sees the org's document and summary, not someone else's job or its deltas
        peer_seen = read_until(ws_peer, summary_of(job["id"]))
        assert {e["type"] for e in peer_seen} == {"document.created", "summary.created"}
        with pytest.raises(TimeoutError):  # another organization: nothing at all
            ws_outsider.recv(timeout=0.5)

    # reconnecting with ?since= replays what was stored: the job's events, never its deltas
    with open_socket(server_b, access(tenant.member), f"?since={seen[0]['id']}") as ws_again:
        replayed = read_until(ws_again, summary_of(job["id"]), timeout=10)
    assert "job.succeeded" in {e["type"] for e in replayed} and not deltas(replayed)


def test_a_stream_that_always_breaks_off_fails_the_job_and_stores_nothing(daphne_pair, fake_llm, tenant):
    fake_llm.break_streams_after = 3  # every answer stops after three pieces
    with open_socket(daphne_pair[0], access(tenant.member)) as ws:
        ready(ws)
        _document, job = start_streamed_job(daphne_pair[0], access(tenant.member))
        seen = read_until(ws, lambda e: e["type"] == "job.failed" and e["data"]["id"] == job["id"])
    failed = seen[-1]["data"]
    assert failed["error"]["code"] == "llm_bad_response" and "Traceback" not in failed["error"]["detail"]
    assert "summary.created" not in {e["type"] for e in seen}
    row = wait_until(lambda: (j := Job.unscoped_objects.get(pk=job["id"])).status == "failed" and j)
    assert row.error["code"] == "llm_bad_response" and "Gave up after 1 retry" in row.error["detail"]
    assert len(fake_llm.requests) == 2  # LLM_MAX_RETRIES=1 in the worker: the call and its retry
    assert not Summary.unscoped_objects.filter(job_id=job["id"]).exists()
