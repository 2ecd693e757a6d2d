"""Live-only events (`events.send_live`, e.g. `summary.delta`) through the real consumer over
channels-redis: not stored, no sequence number, never replayed, and seen only by the job's
creator and the org's admins."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from conftest import make_user
from organizations.models import Organization
from realtime import events
from realtime.models import StoredEvent
from realtime.tests.test_consumer import (
    _close_thread_connections,  # noqa: F401 (an autouse fixture)
    assert_silent,
    connect,
    publish,
    receive,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def delta(org, owner, text: str, job: str | None = None) -> bool:
    data = {"job": job or str(uuid.uuid4()), "document": str(uuid.uuid4()), "text": text, "index": 0}
    return await sync_to_async(events.send_live)(org.id, "summary.delta", data, user_id=owner.id if owner else None)


def stored_count(org) -> int:
    return StoredEvent.unscoped_objects.filter(org=org).count()


def org_seq(org) -> int:
    return Organization.objects.values_list("event_seq", flat=True).get(pk=org.pk)


async def test_a_delta_reaches_its_jobs_creator_and_the_admins_only(org_a, org_b):
    peer = await sync_to_async(make_user)(org_a.org)
    member, _, _ = await connect(org_a.member)
    admin, _, _ = await connect(org_a.admin)
    other_member, _, _ = await connect(peer)
    other_org, _, _ = await connect(org_b.admin)

    assert await delta(org_a.org, org_a.member, "The council")
    for ws in (member, admin):
        received = await receive(ws)
        assert received["type"] == "summary.delta" and received["data"]["text"] == "The council"
        assert set(received) == {"id", "type", "org_id", "created_at", "data"}
    for ws in (other_member, other_org):
        await assert_silent(ws)
    assert await delta(org_a.org, None, "a job nobody owns")  # e.g. an operator's: admins only
    assert (await receive(admin))["data"]["text"] == "a job nobody owns"
    await assert_silent(member)
    for ws in (member, admin, other_member, other_org):
        await ws.disconnect()


async def test_a_delta_is_not_stored_and_leaves_no_gap(org_a):
    ws, _, _ = await connect(org_a.member)
    before = await sync_to_async(stored_count)(org_a.org), await sync_to_async(org_seq)(org_a.org)
    await delta(org_a.org, org_a.member, "first words")
    assert (await receive(ws))["type"] == "summary.delta"
    assert (await sync_to_async(stored_count)(org_a.org), await sync_to_async(org_seq)(org_a.org)) == before
    stored = await publish(org_a.org, "document.created", {"id": "d1"})
    assert await receive(ws) == stored  # the next stored event arrives as usual: no resync, no catch-up
    await delta(org_a.org, org_a.member, "first words and more")
    assert (await receive(ws))["data"]["text"] == "first words and more"
    await assert_silent(ws)
    await ws.disconnect()


async def test_a_reconnect_with_since_replays_no_deltas(org_a):
    ws, _, _ = await connect(org_a.member)
    seen = await publish(org_a.org, "document.created", {"id": "seen"})
    assert await receive(ws) == seen
    await ws.disconnect()
    await delta(org_a.org, org_a.member, "while away")
    missed = await publish(org_a.org, "summary.created", {"id": "s1"})
    again, _, _ = await connect(org_a.member, query=f"?since={seen['id']}")
    assert again.pending == [missed]  # the stored event, not the delta
    await assert_silent(again)
    await again.disconnect()


async def test_subscribe_narrows_deltas_to_the_jobs_asked_for(org_a):
    wanted, other = str(uuid.uuid4()), str(uuid.uuid4())
    ws, _, _ = await connect(org_a.member)
    await ws.send_to(text_data=json.dumps({"type": "subscribe", "job_ids": [wanted]}))
    assert (await receive(ws))["type"] == "subscribed"
    await delta(org_a.org, org_a.member, "not this one", job=other)
    await delta(org_a.org, org_a.member, "this one", job=wanted)
    assert (await receive(ws))["data"]["text"] == "this one"
    await assert_silent(ws)
    await ws.disconnect()


async def test_send_live_reports_a_channel_layer_outage_without_raising(org_a, monkeypatch):
    from realtime import sender

    def down(*args):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(sender, "run", down)
    assert await delta(org_a.org, org_a.member, "lost") is False
