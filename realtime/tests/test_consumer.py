"""The /ws/events/ consumer over channels-redis on the real Redis (WebsocketCommunicator)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from accounts.tokens import PrecisRefreshToken, token_pair_for
from config.asgi import application
from realtime import events
from realtime.models import StoredEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

PATH = "/ws/events/"


@pytest_asyncio.fixture(autouse=True)
async def _close_thread_connections():
    """The consumer's database work runs in asgiref's worker thread: close its
    connection after each test so the test database can be dropped at the end."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


async def connect(user=None, *, token=None, via="protocol", query="", headers=None):
    token = token or (await sync_to_async(token_pair_for)(user))["access"]
    path = PATH + (f"?token={token}" if via == "query" else "") + query
    if via == "query" and query:
        path = f"{PATH}?token={token}&{query.lstrip('?')}"
    communicator = WebsocketCommunicator(
        application,
        path,
        subprotocols=["bearer", token] if via == "protocol" else None,
        headers=headers or [(b"host", b"localhost")],
    )
    connected, subprotocol = await communicator.connect(timeout=5)
    if connected:
        # accept() is sent before the consumer finished joining its groups: a ping round
        # trip tells us it is done (messages are handled after connect() returns).
        # Whatever connect() sent first (replay, resync) is kept for the test to read.
        await communicator.send_to(text_data='{"type": "ping"}')
        communicator.pending = []
        while (message := json.loads(await communicator.receive_from(timeout=5))) != {"type": "pong"}:
            communicator.pending.append(message)
    return communicator, connected, subprotocol


async def publish(org, type, data, user_id=None) -> dict:
    event = events.build_event(org.id, type, data, user_id)
    await sync_to_async(events.send_now)([event])
    return event["envelope"]


async def receive(communicator, timeout=3) -> dict:
    pending = getattr(communicator, "pending", None)
    if pending:
        return pending.pop(0)
    return json.loads(await communicator.receive_from(timeout=timeout))


async def assert_silent(communicator):
    assert await communicator.receive_nothing(timeout=0.3)


class TestAuth:
    async def test_subprotocol_auth_answers_bearer(self, org_a):
        ws, connected, subprotocol = await connect(org_a.member)
        assert connected and subprotocol == "bearer"
        await ws.send_to(text_data=json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong"}
        await ws.disconnect()

    async def test_query_token_auth(self, org_a):
        ws, connected, _ = await connect(org_a.member, via="query")
        assert connected
        await ws.send_to(text_data='{"type": "ping"}')
        assert (await receive(ws))["type"] == "pong"
        await ws.disconnect()

    @pytest.mark.parametrize("case", ["missing", "garbage", "expired", "refresh_token", "inactive", "moved"])
    async def test_bad_tokens_close_4401(self, org_a, org_b, case):
        user = org_a.member
        token = (await sync_to_async(token_pair_for)(user))["access"]
        if case == "garbage":
            token = "not-a-jwt"
        elif case == "expired":
            access = (await sync_to_async(PrecisRefreshToken.for_user)(user)).access_token
            access.set_exp(lifetime=-timedelta(seconds=1))
            token = str(access)
        elif case == "refresh_token":
            token = str(await sync_to_async(PrecisRefreshToken.for_user)(user))
        elif case == "inactive":
            await sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)
        elif case == "moved":
            await sync_to_async(User.objects.filter(pk=user.pk).update)(org=org_b.org)
        communicator = WebsocketCommunicator(
            application, PATH if case == "missing" else f"{PATH}?token={token}", headers=[(b"host", b"localhost")]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected  # accepted only so that the close code reaches the client
        output = await communicator.receive_output(timeout=3)
        assert output == {"type": "websocket.close", "code": 4401}

    async def test_foreign_origin_refused_at_handshake(self, org_a):
        _ws, connected, _ = await connect(
            org_a.member, headers=[(b"host", b"localhost"), (b"origin", b"http://evil.example")]
        )
        assert not connected

    async def test_allowed_origin_and_no_origin(self, org_a):
        for headers in ([(b"host", b"localhost"), (b"origin", b"http://localhost")], [(b"host", b"localhost")]):
            ws, connected, _ = await connect(org_a.member, headers=headers)
            assert connected
            await ws.disconnect()

    async def test_socket_closes_4401_when_the_token_expires(self, org_a):
        access = (await sync_to_async(PrecisRefreshToken.for_user)(org_a.member)).access_token
        access.set_exp(lifetime=timedelta(seconds=3))  # exp has one-second resolution
        ws, connected, _ = await connect(token=str(access))
        assert connected
        assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": 4401}

    async def test_socket_closes_when_the_user_is_deactivated(self, org_a, settings):
        settings.REALTIME_RECHECK_S = 0.2
        ws, connected, _ = await connect(org_a.member)
        assert connected
        await sync_to_async(User.objects.filter(pk=org_a.member.pk).update)(is_active=False)
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    async def test_socket_closes_after_a_password_change(self, org_a, settings):
        settings.REALTIME_RECHECK_S = 0.2
        ws, connected, _ = await connect(org_a.member)
        assert connected

        def change_password():
            user = User.objects.get(pk=org_a.member.pk)
            user.set_password("a-brand-new-passphrase-7")
            user.save()

        await sync_to_async(change_password)()
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


class TestVisibility:
    async def test_other_orgs_sockets_receive_nothing(self, org_a, org_b):
        ws_b, _, _ = await connect(org_b.admin)
        ws_a, _, _ = await connect(org_a.admin)
        sent = await publish(org_a.org, "document.created", {"id": "d1"})
        await publish(org_a.org, "job.queued", {"id": "j1"}, user_id=org_a.admin.id)
        assert await receive(ws_a) == sent
        assert (await receive(ws_a))["type"] == "job.queued"
        await assert_silent(ws_b)
        for ws in (ws_a, ws_b):
            await ws.disconnect()

    async def test_members_see_own_jobs_admins_see_all(self, org_a):
        member, _, _ = await connect(org_a.member)
        admin, _, _ = await connect(org_a.admin)
        await publish(org_a.org, "job.started", {"id": "admins-job"}, user_id=org_a.admin.id)
        await publish(org_a.org, "job.started", {"id": "members-job"}, user_id=org_a.member.id)
        await publish(org_a.org, "summary.created", {"id": "s1"})
        assert [(await receive(admin))["data"]["id"] for _ in range(3)] == ["admins-job", "members-job", "s1"]
        assert [(await receive(member))["data"]["id"] for _ in range(2)] == ["members-job", "s1"]
        await assert_silent(member)
        for ws in (member, admin):
            await ws.disconnect()

    async def test_batch_events_follow_the_job_rules(self, org_a):
        member, _, _ = await connect(org_a.member)
        admin, _, _ = await connect(org_a.admin)
        await member.send_to(text_data=json.dumps({"type": "subscribe", "job_ids": [str(uuid.uuid4())]}))
        assert (await receive(member))["type"] == "subscribed"
        await publish(org_a.org, "batch.progress", {"id": "admins-batch"}, user_id=org_a.admin.id)
        await publish(org_a.org, "batch.progress", {"id": "members-batch"}, user_id=org_a.member.id)
        assert [(await receive(admin))["data"]["id"] for _ in range(2)] == ["admins-batch", "members-batch"]
        # a member sees their own batches' events; subscribing narrows job events only
        assert (await receive(member))["data"]["id"] == "members-batch"
        await assert_silent(member)
        for ws in (member, admin):
            await ws.disconnect()

    async def test_envelope_shape(self, org_a):
        ws, _, _ = await connect(org_a.member)
        sent = await publish(org_a.org, "document.updated", {"id": "d1", "title": "T"})
        received = await receive(ws)
        assert set(received) == {"id", "type", "org_id", "created_at", "data"}
        assert received == sent and received["org_id"] == str(org_a.org.id) and received["created_at"].endswith("Z")
        await ws.disconnect()


class TestClientMessages:
    @pytest.mark.parametrize(
        "message, code",
        [
            ("not json", "invalid_json"),
            ('{"type": "dance"}', "unknown_type"),
            ("[1, 2]", "unknown_type"),
            ('{"type": "subscribe", "job_ids": "all"}', "invalid_subscribe"),
            ('{"type": "subscribe", "job_ids": ["not-a-uuid"]}', "invalid_subscribe"),
            ("x" * 70_000, "invalid_message"),
        ],
    )
    async def test_malformed_gets_an_error_and_the_socket_stays(self, org_a, message, code):
        ws, _, _ = await connect(org_a.member)
        await ws.send_to(text_data=message)
        reply = await receive(ws)
        assert reply["type"] == "error" and reply["data"]["code"] == code and reply["data"]["detail"]
        await ws.send_to(text_data='{"type": "ping"}')
        assert await receive(ws) == {"type": "pong"}
        await ws.disconnect()

    async def test_binary_frame_is_an_error(self, org_a):
        ws, _, _ = await connect(org_a.member)
        await ws.send_to(bytes_data=b"\x00\x01")
        assert (await receive(ws))["data"]["code"] == "invalid_message"
        await ws.disconnect()

    async def test_subscribe_narrows_job_events(self, org_a):
        import uuid

        wanted, other = str(uuid.uuid4()), str(uuid.uuid4())
        ws, _, _ = await connect(org_a.admin)
        await ws.send_to(text_data=json.dumps({"type": "subscribe", "job_ids": [wanted]}))
        assert await receive(ws) == {"type": "subscribed", "job_ids": [wanted]}
        await publish(org_a.org, "job.progress", {"id": other}, user_id=org_a.admin.id)
        await publish(org_a.org, "job.progress", {"id": wanted}, user_id=org_a.admin.id)
        await publish(org_a.org, "document.created", {"id": "d"})
        assert (await receive(ws))["data"]["id"] == wanted
        assert (await receive(ws))["type"] == "document.created"
        await ws.send_to(text_data=json.dumps({"type": "subscribe", "job_ids": None}))
        assert (await receive(ws))["job_ids"] is None
        await publish(org_a.org, "job.progress", {"id": other}, user_id=org_a.admin.id)
        assert (await receive(ws))["data"]["id"] == other
        await ws.disconnect()


class TestReplayAndGaps:
    async def test_replay_after_reconnect_then_live(self, org_a):
        first = await publish(org_a.org, "document.created", {"id": "1"})  # the last one the client saw
        missed = [await publish(org_a.org, "document.updated", {"id": str(i)}) for i in range(2, 5)]
        await publish(org_a.org, "job.queued", {"id": "hidden"}, user_id=org_a.admin.id)  # not for the member
        ws, _, _ = await connect(org_a.member, query=f"?since={first['id']}", via="query")
        replayed = [await receive(ws) for _ in range(3)]
        assert replayed == missed
        live = await publish(org_a.org, "document.deleted", {"id": "5"})
        assert await receive(ws) == live
        await assert_silent(ws)
        await ws.disconnect()

    async def test_unknown_since_asks_for_resync(self, org_a):
        ws, _, _ = await connect(org_a.member, query="?since=00000000-0000-0000-0000-000000000000", via="query")
        reply = await receive(ws)
        assert reply["type"] == "resync" and reply["data"]["code"] == "unknown_since"
        await ws.disconnect()

    async def test_a_missed_live_event_is_caught_up_from_the_store(self, org_a):
        ws, _, _ = await connect(org_a.member)
        dropped = events.build_event(org_a.org.id, "document.created", {"id": "dropped"})
        await sync_to_async(events.store)([dropped])  # stored, but its live message never arrives
        after = await publish(org_a.org, "document.created", {"id": "after"})
        assert await receive(ws) == dropped["envelope"]
        assert await receive(ws) == after
        await ws.disconnect()

    async def test_a_lost_event_that_is_not_stored_triggers_resync(self, org_a):
        ws, _, _ = await connect(org_a.member)
        from organizations.models import Organization

        # an event number was taken but its row is gone (e.g. purged): the socket cannot fill the gap
        await sync_to_async(Organization.objects.filter(pk=org_a.org.pk).update)(event_seq=5)
        after = await publish(org_a.org, "document.created", {"id": "after"})
        reply = await receive(ws)
        assert reply["type"] == "resync" and reply["data"]["code"] == "missed_events"
        assert await receive(ws) == after
        await ws.disconnect()


async def test_purge_events_command(org_a):
    from django.core.management import call_command
    from django.utils import timezone

    await publish(org_a.org, "document.created", {"id": "old"})
    await publish(org_a.org, "document.created", {"id": "new"})
    await sync_to_async(StoredEvent.unscoped_objects.filter(data__id="old").update)(
        created_at=timezone.now() - timedelta(hours=25)
    )
    await sync_to_async(call_command)("purge_events", "--dry-run")
    assert await sync_to_async(StoredEvent.unscoped_objects.count)() == 2
    await sync_to_async(call_command)("purge_events")
    assert [e.data["id"] for e in await sync_to_async(list)(StoredEvent.unscoped_objects.all())] == ["new"]


class TestDispatch:
    async def test_events_are_handled_without_a_thread_hop(self, org_a, monkeypatch):
        """channels' default dispatch runs close_old_connections in a worker thread before
        every message; the consumer's database calls close connections themselves."""
        import channels.consumer

        hops = []

        async def counting_close():
            hops.append(1)

        monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting_close)
        ws, connected, _ = await connect(org_a.admin)
        assert connected
        await publish(org_a.org, "document.created", {"id": "d1"})
        assert (await receive(ws))["type"] == "document.created"
        await ws.send_to(text_data='{"type": "ping"}')
        assert await receive(ws) == {"type": "pong"}
        assert hops == []
        await ws.disconnect()


class TestEventsPublishedTogether:
    async def test_numbered_in_order_stored_and_delivered_per_visibility(self, org_a):
        """publish_together: one statement numbers and stores the group, one channel message
        carries it, and each socket still applies visibility per event."""
        from realtime.models import StoredEvent

        admin_ws, _, _ = await connect(org_a.admin)
        member_ws, _, _ = await connect(org_a.member)
        group = [
            events.build_event(org_a.org.id, "job.succeeded", {"id": "j1"}, org_a.admin.id),  # the admin's job
            events.build_event(org_a.org.id, "summary.created", {"id": "s1"}),
        ]
        await sync_to_async(events.send_now)(group)
        assert [(await receive(admin_ws))["type"] for _ in range(2)] == ["job.succeeded", "summary.created"]
        assert (await receive(member_ws))["type"] == "summary.created"  # not someone else's job event
        await assert_silent(member_ws)
        rows = await sync_to_async(
            lambda: list(
                StoredEvent.unscoped_objects.filter(org=org_a.org.id).order_by("seq").values_list("seq", "type")
            )
        )()
        assert [kind for _, kind in rows][-2:] == ["job.succeeded", "summary.created"]
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
        # a socket that reconnects after the group's first event replays the second
        replay_ws, _, _ = await connect(org_a.admin, query=f"?since={group[0]['envelope']['id']}")
        assert (await receive(replay_ws))["data"] == {"id": "s1"}
        await replay_ws.disconnect()
        await admin_ws.disconnect()
        await member_ws.disconnect()


class TestDispatchLoop:
    async def test_client_and_layer_messages_are_all_handled_in_order(self, org_a):
        ws, _, _ = await connect(org_a.admin)
        for n in range(20):
            await publish(org_a.org, "document.created", {"id": f"d{n}"})
            await ws.send_to(text_data='{"type": "ping"}')
        seen = [await receive(ws) for _ in range(40)]
        assert [m["data"]["id"] for m in seen if m.get("type") == "document.created"] == [f"d{n}" for n in range(20)]
        assert sum(m == {"type": "pong"} for m in seen) == 20
        await ws.disconnect()

    async def test_a_failing_channel_receive_ends_the_consumer(self, org_a, monkeypatch):
        """As in channels: an error from a message source ends the application (daphne then
        closes the socket with 1011), instead of leaving a socket that silently gets nothing."""
        import asyncio

        from realtime.layers import PrecisRedisChannelLayer

        redis_gone = asyncio.Event()

        async def receive_until_redis_is_gone(self, channel):
            await redis_gone.wait()
            raise ConnectionError("redis is gone")

        monkeypatch.setattr(PrecisRedisChannelLayer, "receive", receive_until_redis_is_gone)
        ws, connected, _ = await connect(org_a.admin)
        assert connected
        redis_gone.set()
        with pytest.raises(ConnectionError):
            await ws.receive_output(timeout=3)


def _session_cookie(user) -> bytes:
    """The admin's session cookie, as a browser signed in at /admin/ holds it."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def session_socket(cookie: bytes, origin: bytes | None = b"http://localhost", host: bytes = b"localhost"):
    headers = [(b"host", host), (b"cookie", cookie)] + ([(b"origin", origin)] if origin else [])
    communicator = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected  # accepted only so that a close code reaches the client
    return communicator


class TestSessionAuth:
    """Issue 17: the admin's pages follow jobs over /ws/events/ with the admin's session."""

    async def test_an_admin_page_s_session_gets_the_org_s_job_events(self, org_a, org_b):
        ws = await session_socket(await sync_to_async(_session_cookie)(org_a.admin))
        await ws.send_to(text_data='{"type": "ping"}')
        assert await receive(ws) == {"type": "pong"}
        job_id = str(uuid.uuid4())
        await publish(org_b.org, "job.succeeded", {"id": str(uuid.uuid4())}, user_id=str(org_b.admin.id))
        await publish(org_a.org, "job.succeeded", {"id": job_id}, user_id=str(org_a.member.id))  # a member's job
        event = await receive(ws)
        assert (event["type"], event["data"]["id"]) == ("job.succeeded", job_id)
        await assert_silent(ws)
        await ws.disconnect()

    async def test_a_member_s_session_follows_the_token_rules(self, org_a):
        ws = await session_socket(await sync_to_async(_session_cookie)(org_a.member))
        await publish(org_a.org, "job.succeeded", {"id": str(uuid.uuid4())}, user_id=str(org_a.admin.id))
        own = str(uuid.uuid4())
        await publish(org_a.org, "job.succeeded", {"id": own}, user_id=str(org_a.member.id))
        assert (await receive(ws))["data"]["id"] == own  # the admin's job was not shown
        await ws.disconnect()

    @pytest.mark.parametrize(
        "origin, host",
        [
            (None, b"localhost"),  # no Origin: not a page, and a cookie alone proves nothing
            (b"http://localhost:8001", b"localhost"),  # another origin the validator lets through
            (b"http://localhost", b"127.0.0.1"),
        ],
    )
    async def test_only_a_same_origin_page_s_session_counts(self, org_a, origin, host, settings):
        settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
        ws = await session_socket(await sync_to_async(_session_cookie)(org_a.admin), origin=origin, host=host)
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}

    @pytest.mark.parametrize("case", ["garbage", "logged_out", "inactive", "password_changed"])
    async def test_a_session_that_is_no_longer_valid_closes_4401(self, org_a, case):
        cookie = await sync_to_async(_session_cookie)(org_a.admin)

        def spoil():
            from django.contrib.sessions.models import Session

            user = User.objects.get(pk=org_a.admin.pk)
            if case == "logged_out":
                Session.objects.all().delete()
            elif case == "inactive":
                User.objects.filter(pk=user.pk).update(is_active=False)
            elif case == "password_changed":
                user.set_password("a-brand-new-passphrase-7")
                user.save()

        await sync_to_async(spoil)()
        ws = await session_socket(b"sessionid=not-a-session" if case == "garbage" else cookie)
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}

    async def test_logging_out_ends_the_socket(self, org_a, settings):
        from django.contrib.sessions.models import Session

        settings.REALTIME_RECHECK_S = 0.2
        ws = await session_socket(await sync_to_async(_session_cookie)(org_a.admin))
        await ws.send_to(text_data='{"type": "ping"}')
        assert await receive(ws) == {"type": "pong"}
        await sync_to_async(Session.objects.all().delete)()
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


class TestApiKeys:
    """Issue 18: an API key opens a socket as its creator; revoking it closes the socket at
    once (through the channel layer, not the periodic recheck)."""

    @staticmethod
    def make_key(user, **fields):
        from organizations import api_keys

        def make():
            return api_keys.api_key_create(
                org=user.org, user=user, name="socket", role=user.role, scopes=["read"], **fields
            )

        return sync_to_async(make)()

    async def test_a_key_opens_a_socket_and_revoking_it_closes_the_socket_at_once(self, org_a, settings):
        from organizations import api_keys

        settings.REALTIME_RECHECK_S = 3600  # the close below cannot come from the recheck
        key, plain = await self.make_key(org_a.admin)
        ws, connected, subprotocol = await connect(token=plain)
        assert connected and subprotocol == "bearer"
        sent = await publish(org_a.org, "document.created", {"id": "d1"})
        assert (await receive(ws))["id"] == sent["id"]

        def revoke():
            from django.db import transaction

            with transaction.atomic():
                api_keys.api_key_revoke(key=key)

        await sync_to_async(revoke)()
        assert await ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}

    @pytest.mark.parametrize("case", ["revoked", "expired", "garbage"])
    async def test_an_unusable_key_closes_4401(self, org_a, case):
        from django.utils import timezone

        from organizations.models import ApiKey

        key, plain = await self.make_key(org_a.member)
        if case == "revoked":
            await sync_to_async(ApiKey.unscoped_objects.filter(pk=key.pk).update)(revoked_at=timezone.now())
        elif case == "expired":
            past = timezone.now() - timedelta(seconds=1)
            await sync_to_async(ApiKey.unscoped_objects.filter(pk=key.pk).update)(expires_at=past)
        else:
            plain = "pk_garbage_key"
        communicator = WebsocketCommunicator(
            application, PATH, subprotocols=["bearer", plain], headers=[(b"host", b"localhost")]
        )
        await communicator.connect(timeout=5)
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    async def test_a_member_key_gets_only_its_creator_s_job_events(self, org_a):
        _key, plain = await self.make_key(org_a.member)
        ws, connected, _ = await connect(token=plain)
        assert connected
        await publish(org_a.org, "job.queued", {"id": "admin-job"}, user_id=str(org_a.admin.pk))
        mine = await publish(org_a.org, "job.queued", {"id": "member-job"}, user_id=str(org_a.member.pk))
        assert (await receive(ws))["id"] == mine["id"]
        await assert_silent(ws)
