"""End to end across real processes: two daphne servers, a Celery worker, channels-redis,
and a real WebSocket client library (`websockets`) watching a summarize job."""

from __future__ import annotations

import json
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.tokens import token_pair_for
from conftest import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


def read_until(ws, stop, timeout: float = 30) -> list[dict]:
    """Every event up to the first that `stop(event)` accepts (which is the last one returned)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        seen.append(event)
        if stop(event):
            return seen
    raise AssertionError(f"the awaited event never came; got {[e['type'] for e in seen]}")


def events_until(ws, stop_type: str, job_id: str, timeout: float = 30) -> list[dict]:
    """Read events until `stop_type` for `job_id` arrives (or the deadline passes)."""
    return read_until(ws, lambda event: event["type"] == stop_type and event["data"].get("id") == job_id, timeout)


def open_socket(server, token: str, query: str = ""):
    return connect(f"{server.ws}/ws/events/{query}", subprotocols=["bearer", token], open_timeout=10)


def test_watch_a_job_live_on_two_servers(daphne_pair, tenant):
    server_a, server_b = daphne_pair
    token = token_pair_for(tenant.member)["access"]
    outsider = make_tenant("Outsiders")
    headers = {"Authorization": f"Bearer {token}"}

    with (
        open_socket(server_a, token) as ws_a,
        open_socket(server_b, token) as ws_b,
        open_socket(server_b, token_pair_for(outsider.admin)["access"]) as ws_other_org,
    ):
        assert ws_a.subprotocol == "bearer"
        for ws in (ws_a, ws_b, ws_other_org):  # each socket is set up once it answers
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}

        document = requests.post(
            f"{server_a.http}/api/v1/documents/",
            json={"title": "Budget", "content": "The council approved the library budget. It funds longer hours."},
            headers=headers,
            timeout=10,
        ).json()
        job = requests.post(
            f"{server_a.http}/api/v1/documents/{document['id']}/summarize/", json={}, headers=headers, timeout=10
        ).json()
        assert job["status"] == "queued"

        for ws in (ws_a, ws_b):  # a worker's events reach every daphne process
            seen = events_until(ws, "job.succeeded", job["id"])
            job_events = [e for e in seen if e["type"].startswith("job.") and e["data"]["id"] == job["id"]]
            statuses = [e["data"]["status"] for e in job_events]
            assert statuses[0] == "queued" and statuses[-1] == "succeeded"
            assert "running" in statuses
            assert seen[0]["type"] == "document.created"
            assert job_events[-1]["data"]["summary"]  # the job as the REST API shows it
            assert set(job_events[-1]) == {"id", "type", "org_id", "created_at", "data"}
            ids = [e["id"] for e in seen]
            assert len(ids) == len(set(ids))

        with pytest.raises(TimeoutError):  # the other organization saw nothing
            ws_other_org.recv(timeout=0.5)


def test_reconnect_with_since_misses_nothing(daphne_pair, tenant):
    server_a, server_b = daphne_pair
    token = token_pair_for(tenant.admin)["access"]
    headers = {"Authorization": f"Bearer {token}"}

    def create(title):
        response = requests.post(
            f"{server_a.http}/api/v1/documents/", json={"title": title, "content": "text"}, headers=headers, timeout=10
        )
        assert response.status_code == 201

    with open_socket(server_a, token) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
        create("one")
        last = json.loads(ws.recv(timeout=10))
        assert last["data"]["title"] == "one"
    for title in ("two", "three", "four"):  # published while the client is away
        create(title)
    url = f"{server_b.ws}/ws/events/?token={token}&since={last['id']}"
    with connect(url, open_timeout=10) as ws:
        replayed = [json.loads(ws.recv(timeout=10))["data"]["title"] for _ in range(3)]
        assert replayed == ["two", "three", "four"]
        create("five")
        assert json.loads(ws.recv(timeout=10))["data"]["title"] == "five"


def test_bad_token_closes_4401_over_a_real_socket(daphne_pair):
    with (
        connect(f"{daphne_pair[0].ws}/ws/events/?token=nope", open_timeout=10) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401


def test_foreign_origin_refused_over_a_real_socket(daphne_pair, tenant):
    from websockets.exceptions import InvalidStatus

    token = token_pair_for(tenant.member)["access"]
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"{daphne_pair[0].ws}/ws/events/?token={token}",
            additional_headers={"Origin": "http://evil.example"},
            open_timeout=10,
        )
    assert refused.value.response.status_code == 403
