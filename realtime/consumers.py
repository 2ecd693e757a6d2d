"""The WebSocket endpoint /ws/events/: an org's live events, filtered per user, with replay.

Protocol (README, "Realtime"):
- auth: `Sec-WebSocket-Protocol: bearer, <access token>` (answered with `bearer`) or `?token=`;
  without a token, the session cookie of a same-origin page (the admin's: `Origin` must be the
  `Host` the socket was opened on, so no other site can use the cookie); a missing/invalid/
  expired token or session, an inactive user or a user moved out of the org closes 4401;
- the socket joins its org's group and its user's group, nothing else;
- members get their own job events and the org's document/summary events, admins every job
  event of the org; the decision uses the event's data (never anything the client says);
  `summary.delta` (a job's answer as it is written) goes where the job's events go;
- `?since=<event id>` first replays what was missed (in order), then live events;
- the org's events are numbered without gaps: a jump means the socket fell behind (channel
  layer buffer full, a send lost): the missing events come from the store, or, if they are
  gone, a `resync` event tells the client to reload its state over REST; live-only events
  (events.send_live: no number) are forwarded as they come and never replayed;
- group membership lives in the channel layer (Redis), which can lose it: a Redis restarted
  empty forgets every group, and channels-redis drops a member `group_expiry` seconds after it
  joined. The socket joins its groups again every third of `group_expiry`, and whenever the
  layer says Redis may have lost them (`layer.reconnected`, realtime/layers.py), then fetches
  from the store what it missed meanwhile; if it cannot join, it closes 4503 (reconnect with
  `?since=`);
- client messages: ping → pong; subscribe {job_ids} narrows job events and deltas; anything else → error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import time
from dataclasses import dataclass
from importlib import import_module
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from .events import Event, org_group, stored_envelope, user_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_RECONNECT = 4503  # the server could not keep the socket subscribed: reconnect with ?since=
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024
MAX_SUBSCRIBED_JOBS = 1000
REPLAY_LIMIT = 5000  # more missed events than this: resync instead


@dataclass(frozen=True)
class Identity:
    user_id: str
    org_id: str
    is_admin: bool
    expires_at: float  # the access token's exp (epoch seconds)
    password_claim: str  # the token's hash of the password hash: a password change ends the socket
    session_key: str = ""  # a session's socket: logging out ends it
    api_key_id: str = ""  # an API key's socket: revoking the key ends it at once


def _authenticate(token: str) -> Identity | None:
    """The same checks as the REST API: signature, expiry, type, user active, same org; or
    an API key's (organizations.api_keys)."""
    from organizations import api_keys

    if api_keys.looks_like_key(token):
        return _key_identity(token)
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import Role, User
    from accounts.tokens import token_matches_password

    try:
        access = AccessToken(token)
    except TokenError:
        return None
    user = User.objects.select_related("org").filter(pk=access.get("user_id")).first()
    if (
        user is None
        or not user.is_active
        or user.org is None
        or not user.org.is_active
        or str(user.org_id) != access.get("org_id")
        or not token_matches_password(access, user)
    ):
        return None
    return Identity(
        str(user.id),
        str(user.org_id),
        user.role == Role.ADMIN,
        float(access["exp"]),
        str(access.get(api_settings.REVOKE_TOKEN_CLAIM, "")),
    )


def _key_identity(token: str) -> Identity | None:
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt.utils import get_md5_hash_password

    from accounts.models import Role
    from organizations import api_keys

    try:
        key, user = api_keys.authenticate_key(token)
    except AuthenticationFailed:
        return None
    return Identity(
        str(user.id),
        str(user.org_id),
        user.role == Role.ADMIN,
        key.expires_at.timestamp() if key.expires_at else float("inf"),
        get_md5_hash_password(user.password),
        api_key_id=str(key.pk),
    )


def _session_identity(scope) -> Identity | None:
    """The user of a same-origin page's session, as Django's session authentication checks it
    (the session's user, active, in an active org, its auth hash still the password's); the
    socket lives until the session expires, and the recheck ends it on a password change."""
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.http.cookie import parse_cookie
    from django.utils.crypto import constant_time_compare
    from rest_framework_simplejwt.utils import get_md5_hash_password

    from accounts.models import Role, User

    headers = dict(scope.get("headers") or [])
    origin, host = headers.get(b"origin", b"").decode("latin-1"), headers.get(b"host", b"").decode("latin-1")
    if not origin or not host or urlsplit(origin).netloc != host:
        return None
    key = parse_cookie(headers.get(b"cookie", b"").decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = User.objects.select_related("org").filter(pk=session.get(SESSION_KEY)).first()
    if (
        user is None
        or not user.is_active
        or user.org is None
        or not user.org.is_active
        or not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())
    ):
        return None
    return Identity(
        str(user.id),
        str(user.org_id),
        user.role == Role.ADMIN,
        session.get_expiry_date().timestamp(),
        get_md5_hash_password(user.password),
        key,
    )


def _recheck(identity: Identity) -> Identity | None:
    """Is the socket's user still allowed (active, same org, same password)? With the current role."""
    from rest_framework_simplejwt.utils import get_md5_hash_password

    from accounts.models import Role, User

    user = User.objects.select_related("org").filter(pk=identity.user_id).first()
    if (
        user is None
        or not user.is_active
        or str(user.org_id) != identity.org_id
        or not user.org.is_active
        or get_md5_hash_password(user.password) != identity.password_claim
        or (identity.session_key and not _session_exists(identity.session_key))
    ):
        return None
    if identity.api_key_id:
        from organizations import api_keys
        from organizations.models import ApiKey

        key = ApiKey.unscoped_objects.filter(pk=identity.api_key_id).first()
        if key is None or not key.is_usable:
            return None
        return dataclasses.replace(identity, is_admin=api_keys.effective_role(key, user) == Role.ADMIN)
    return dataclasses.replace(identity, is_admin=user.role == Role.ADMIN)


def _session_exists(key: str) -> bool:
    return import_module(settings.SESSION_ENGINE).SessionStore().exists(key)


def _current_seq(org_id: str) -> int:
    from organizations.models import Organization

    return Organization.objects.filter(pk=org_id).values_list("event_seq", flat=True).first() or 0


def _events_after(org_id: str, after_seq: int, up_to: int | None = None) -> list[Event]:
    from organizations.tenancy import org_scope

    from .models import StoredEvent

    with org_scope(org_id):
        rows = StoredEvent.objects.filter(seq__gt=after_seq)
        if up_to is not None:
            rows = rows.filter(seq__lte=up_to)
        return [stored_envelope(row) for row in rows.order_by("seq")[: REPLAY_LIMIT + 1]]


def _seq_of(org_id: str, event_id: str) -> int | None:
    from organizations.tenancy import org_scope

    from .models import StoredEvent

    with org_scope(org_id):
        return StoredEvent.objects.filter(event_id=event_id).values_list("seq", flat=True).first()


def _token_from(scope) -> tuple[str | None, bool]:
    """(token, came in the subprotocol header)."""
    protocols = scope.get("subprotocols") or []
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], True
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    token = (query.get("token") or [None])[0]
    return token, False


class _Failed:
    def __init__(self, error: Exception):
        self.error = error


async def _dispatch_in_order(sources, dispatch) -> None:
    """channels' `await_many_dispatch` without a new task and an `asyncio.wait` for every
    message (about a quarter of daphne's CPU in fan-out): one pump task per source feeds a
    one-slot inbox, and messages are dispatched one at a time in arrival order. A source's
    error ends the consumer as it would in channels."""
    inbox: asyncio.Queue = asyncio.Queue(maxsize=1)

    async def pump(source) -> None:
        try:
            while True:
                await inbox.put(await source())
        except Exception as error:
            await inbox.put(_Failed(error))

    pumps = [asyncio.ensure_future(pump(source)) for source in sources]
    try:
        while True:
            message = await inbox.get()
            if isinstance(message, _Failed):
                raise message.error
            await dispatch(message)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


class EventsConsumer(AsyncWebsocketConsumer):
    identity: Identity | None = None

    async def __call__(self, scope, receive, send):
        """AsyncConsumer.__call__ with `_dispatch_in_order` in place of `await_many_dispatch`."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
            group_expiry = getattr(self.channel_layer, "group_expiry", None)
            if group_expiry:
                sources.append(functools.partial(_rejoin_after, group_expiry / 3))
        self.base_send = send
        with contextlib.suppress(StopConsumer):  # the consumer chose to stop
            await _dispatch_in_order(sources, self.dispatch)

    async def dispatch(self, message):
        """channels' dispatch first closes stale database connections in a worker thread —
        a thread hop for every event on every socket. Every database call of this consumer
        goes through `database_sync_to_async`, which does that itself, so skip it here."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        token, via_protocol = _token_from(self.scope)
        if token:
            identity = await database_sync_to_async(_authenticate)(token)
        else:
            identity = await database_sync_to_async(_session_identity)(self.scope)
        # Accept first: a close code only reaches the client on an open socket.
        await self.accept(subprotocol="bearer" if via_protocol else None)
        if identity is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.identity = identity
        self.job_filter: set[str] | None = None
        # The position is read *before* joining the groups, and everything stored after
        # it is delivered once joined: an event published in between is never lost, and
        # its live copy is recognised by its number and skipped.
        since = (parse_qs((self.scope.get("query_string") or b"").decode("latin-1")).get("since") or [None])[0]
        self.last_seq = await database_sync_to_async(_current_seq)(identity.org_id)
        start = await self._since_position(since) if since else self.last_seq
        self.groups_joined = [org_group(identity.org_id), user_group(identity.user_id)]
        if identity.api_key_id:
            from organizations.api_keys import socket_group

            self.groups_joined.append(socket_group(identity.api_key_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        if start is not None:
            await self._deliver_stored_after(start)
        self.watchdog = asyncio.create_task(self._watch())

    async def disconnect(self, code):
        if getattr(self, "watchdog", None):
            self.watchdog.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # -- replay and catching up ---------------------------------------------------------
    async def _since_position(self, since: str) -> int | None:
        """The sequence number of the client's last event; None (after a resync) if unknown."""
        seq = await database_sync_to_async(_seq_of)(self.identity.org_id, since) if _is_uuid(since) else None
        if seq is None:
            await self._send_resync("unknown_since", "That event is unknown or past retention; reload over REST.")
        return seq

    async def _deliver_stored_after(self, start: int) -> None:
        missed = await database_sync_to_async(_events_after)(self.identity.org_id, start)
        if len(missed) > REPLAY_LIMIT:
            await self._send_resync("too_many_missed", "Too many events were missed; reload over REST.")
            self.last_seq = max(self.last_seq, missed[-1]["seq"])
            return
        for event in missed:
            await self._deliver(event)
            self.last_seq = max(self.last_seq, event["seq"])

    async def _catch_up(self, upcoming: int) -> None:
        """Events last_seq+1 … upcoming-1 did not arrive live: take them from the store."""
        missed = await database_sync_to_async(_events_after)(self.identity.org_id, self.last_seq, upcoming - 1)
        if len(missed) != upcoming - 1 - self.last_seq:
            await self._send_resync("missed_events", "Some events could not be delivered; reload over REST.")
            self.last_seq = upcoming - 1
            return
        for event in missed:
            await self._deliver(event)
            self.last_seq = event["seq"]

    # -- keeping the group membership -----------------------------------------------------
    async def groups_rejoin(self, message):
        """Every third of group_expiry, before channels-redis drops the membership."""
        await self._rejoin()

    async def layer_reconnected(self, message):
        """Redis may have lost the groups (restarted empty, flushed) or messages (an outage)."""
        await self._rejoin()

    async def _rejoin(self) -> None:
        """Join the groups again (idempotent; it also renews their expiry), then deliver what
        was stored meanwhile: handled in order with the live events, so what arrives live
        after this is either new or recognised by its number and skipped."""
        if self.identity is None or not getattr(self, "groups_joined", None):
            return  # not (or no longer) authenticated: connect() joins
        try:
            for group in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.warning("could not rejoin the socket's groups; asking the client to reconnect", exc_info=True)
            self.watchdog.cancel()
            self.identity = None  # nothing more is sent on this socket
            await self.close(code=CLOSE_RECONNECT)
            return
        await self._deliver_stored_after(self.last_seq)

    # -- live events ----------------------------------------------------------------------
    async def event_batch(self, message):
        """Several events of one transaction (events.publish_together), in order."""
        for event in message["events"]:
            await self._live(event)

    async def event_message(self, message):
        await self._live(message["event"])

    async def _live(self, event: Event) -> None:
        if self.identity is None:
            return  # closed (could not rejoin): the client reconnects with ?since=
        seq = event.get("seq")
        if seq is not None:  # None: live-only (send_live) or unstored, outside the sequence
            if seq <= self.last_seq:
                return  # already delivered (replayed or caught up)
            if seq > self.last_seq + 1:
                await self._catch_up(seq)
            self.last_seq = seq
        await self._deliver(event)

    def _visible(self, event: Event) -> bool:
        envelope = event["envelope"]
        if envelope["org_id"] != self.identity.org_id:
            return False
        event_type = envelope["type"]
        if _creator_and_admins_only(event_type) and not (
            self.identity.is_admin or event.get("user_id") == self.identity.user_id
        ):
            return False
        if self.job_filter is None:
            return True
        job = _job_of(event_type, envelope["data"])
        return job is None or job in self.job_filter

    async def _deliver(self, event: Event) -> None:
        if self.identity is None or not self._visible(event):
            return
        if time.time() >= self.identity.expires_at:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.send(text_data=json.dumps(event["envelope"]))

    async def _send_resync(self, code: str, detail: str) -> None:
        await self.send(text_data=json.dumps({"type": "resync", "data": {"code": code, "detail": detail}}))

    # -- client messages ------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        if self.identity is None:
            return
        if text_data is None or len(text_data) > MAX_CLIENT_MESSAGE_BYTES:
            await self._send_error("invalid_message", "Send JSON text messages of at most 64 KiB.")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self._send_error("invalid_json", "The message is not valid JSON.")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
        elif kind == "subscribe":
            await self._subscribe(message.get("job_ids", None))
        else:
            await self._send_error("unknown_type", "Known message types: ping, subscribe.")

    async def _subscribe(self, job_ids) -> None:
        if job_ids is None:
            self.job_filter = None
        elif (
            isinstance(job_ids, list)
            and len(job_ids) <= MAX_SUBSCRIBED_JOBS
            and all(isinstance(j, str) and _is_uuid(j) for j in job_ids)
        ):
            self.job_filter = {str(UUID(j)) for j in job_ids}
        else:
            await self._send_error(
                "invalid_subscribe", f"job_ids must be null or a list of at most {MAX_SUBSCRIBED_JOBS} job ids."
            )
            return
        ids = sorted(self.job_filter) if self.job_filter is not None else None
        await self.send(text_data=json.dumps({"type": "subscribed", "job_ids": ids}))

    async def _send_error(self, code: str, detail: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "data": {"code": code, "detail": detail}}))

    # -- token expiry and membership changes ---------------------------------------------
    async def credential_revoked(self, message):
        """The socket's API key was revoked (organizations.api_keys): closed at once."""
        if getattr(self, "watchdog", None):
            self.watchdog.cancel()
        self.identity = None  # nothing more is sent on this socket
        await self.close(code=CLOSE_UNAUTHORIZED)

    async def _watch(self) -> None:
        try:
            while True:
                until_expiry = self.identity.expires_at - time.time()
                await asyncio.sleep(max(0.0, min(until_expiry, settings.REALTIME_RECHECK_S)))
                if time.time() >= self.identity.expires_at:
                    break
                refreshed = await database_sync_to_async(_recheck)(self.identity)
                if refreshed is None:
                    break
                self.identity = refreshed
            await self.close(code=CLOSE_UNAUTHORIZED)
        except asyncio.CancelledError:
            pass


def _creator_and_admins_only(event_type: str) -> bool:
    """Job and batch events, and the live text of a job's answer (`summary.delta`), are for
    the job's or batch's creator (the event's `user_id`) and the org's admins, and so are
    budget alerts (a user's budget: that user and the admins; the organization's: the
    admins); the rest of an org's events for all its members."""
    return event_type.partition(".")[0] in ("job", "batch", "budget") or event_type == "summary.delta"


def _job_of(event_type: str, data: dict) -> str | None:
    """The job an event is about, for `subscribe`: job events and `summary.delta`; None for
    events `subscribe` does not narrow (documents, summaries, batches)."""
    if event_type.startswith("job."):
        return str(data.get("id"))
    if event_type == "summary.delta":
        return str(data.get("job"))
    return None


async def _rejoin_after(seconds: float) -> dict:
    """A message source of the consumer: a `groups.rejoin` every `seconds`."""
    await asyncio.sleep(seconds)
    return {"type": "groups.rejoin"}


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
