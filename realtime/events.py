"""The one way events leave the server: `publish(org_id, type, data, user_id=None)`.

After the surrounding transaction commits (never for work that rolls back),
the event is
1. stored (realtime.models.StoredEvent) with the next number of its org's
   gap-free sequence — taken with a row lock on the organization, so numbers
   follow commit order — for replay after a reconnect (`?since=`), and
2. sent to the org's channel group, where each connected socket decides by
   the event's data whether its user may see it (realtime.consumers).
A socket that sees a jump in the sequence fetches what it missed from the
store, or is told to resync. Publishing never breaks the caller: an outage
is logged, and the job/document rows stay the source of truth.

`send_live()` is the other way out, for what is only worth seeing while it
happens and tells of nothing the database holds (`summary.delta`: the text so
far of an answer being written): sent at once, never stored, no sequence
number, so never replayed and never a gap.

Inside `stored_in_transaction()` events are numbered and stored as they are
published, in the caller's transaction, and only sent after commit: they commit
with the rows they tell of, so a database failure right after the commit
cannot leave them out of replay (the request that creates a job: jobs.views).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Literal, TypedDict

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import sender

logger = logging.getLogger(__name__)

EventType = Literal[
    "job.queued",
    "job.started",
    "job.progress",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "document.created",
    "document.updated",
    "document.deleted",
    "document.processing",
    "document.ready",
    "document.failed",
    "summary.created",
    "summary.delta",
    "batch.created",
    "batch.progress",
    "batch.completed",
    "batch.cancelled",
    "budget.threshold",
]


class Envelope(TypedDict):
    """What a client receives (API.md)."""

    id: str
    type: str
    org_id: str
    created_at: str
    data: dict[str, Any]


class Event(TypedDict):
    """What travels through the channel layer: the envelope plus routing facts."""

    envelope: Envelope
    seq: int | None  # the org's event number; None: not stored (send_live, or the store failed)
    # job and batch events, summary.delta: their job's/batch's creator (admins see all); None: the whole org
    user_id: str | None


def org_group(org_id) -> str:
    return f"org.{org_id}"


def user_group(user_id) -> str:
    return f"user.{user_id}"


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def build_event(org_id, type: str, data: dict[str, Any], user_id=None) -> Event:
    return Event(
        envelope=Envelope(
            id=str(uuid.uuid4()), type=type, org_id=str(org_id), created_at=_iso(timezone.now()), data=data
        ),
        seq=None,
        user_id=str(user_id) if user_id else None,
    )


_store_at_once: ContextVar[bool] = ContextVar("precis_events_store_at_once", default=False)


@contextmanager
def stored_in_transaction() -> Iterator[None]:
    """Events published in this block are stored at once, in the caller's transaction (they
    commit or roll back with it), and sent after its commit. Their organization's row stays
    locked until then (the numbers follow commit order): for short transactions only."""
    token = _store_at_once.set(True)
    try:
        yield
    finally:
        _store_at_once.reset(token)


def publish(org_id, type: EventType, data: dict[str, Any], user_id=None) -> Event:
    """Queue an event for the org's sockets; stored and sent when the transaction commits."""
    return _queue([build_event(org_id, type, data, user_id)])[0]


def publish_together(org_id, items: list[tuple[EventType, dict[str, Any], Any]]) -> list[Event]:
    """Queue several events of one org that one transaction produces — `(type, data, user_id)`
    each, in order. At commit they are numbered and stored in one statement and reach each
    socket as one channel message."""
    return _queue([build_event(org_id, type, data, user_id) for type, data, user_id in items])


def _queue(group: list[Event]) -> list[Event]:
    from integrations import event_webhooks

    # The subscribers' deliveries commit with the events (or roll back with them).
    if group:
        event_webhooks.record(group[0]["envelope"]["org_id"], [event["envelope"] for event in group])
    if _store_at_once.get():
        stored = store(group)
        transaction.on_commit(lambda: send(stored))
        return stored
    transaction.on_commit(lambda: send_now(group))
    return group


# PostgreSQL: number and store a group of events in one statement (one round trip, atomic on
# its own). The UPDATE's row lock orders concurrent publishers of one org until it commits.
# Parameters: count, org id, count, org id, then six per event (_STORE_ROW).
_STORE_SQL = """
WITH numbered AS (
    UPDATE organizations_organization SET event_seq = event_seq + %s::int WHERE id = %s::uuid RETURNING event_seq
)
INSERT INTO realtime_storedevent (created_at, updated_at, org_id, seq, event_id, type, data, user_id)
SELECT e.created_at, e.created_at, %s::uuid, numbered.event_seq - %s::int + e.position, e.event_id, e.type,
       e.data, e.user_id
FROM numbered, (VALUES {rows}) AS e(position, created_at, event_id, type, data, user_id)
RETURNING event_id, seq
"""
_STORE_ROW = "(%s::int, %s::timestamptz, %s::uuid, %s::text, %s::jsonb, %s::uuid)"


def store(group: list[Event]) -> list[Event]:
    """Give each event of one org its sequence number (in order) and keep them for replay."""
    from organizations.models import Organization

    from .models import StoredEvent

    org_id = group[0]["envelope"]["org_id"]
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        params: list[Any] = []
        for position, event in enumerate(group, start=1):
            envelope = event["envelope"]
            params += [
                position,
                parse_datetime(envelope["created_at"]),
                envelope["id"],
                envelope["type"],
                Jsonb(envelope["data"]),
                event["user_id"],
            ]
        sql = _STORE_SQL.format(rows=", ".join([_STORE_ROW] * len(group)))
        with connection.cursor() as cursor:
            cursor.execute(sql, [len(group), org_id, org_id, len(group), *params])
            numbers = {str(event_id): seq for event_id, seq in cursor.fetchall()}
        if not numbers:
            raise Organization.DoesNotExist(f"organization {org_id} is gone")
        return [{**event, "seq": numbers[event["envelope"]["id"]]} for event in group]
    with transaction.atomic():
        # The row lock orders concurrent publishers of one org: numbers follow commit order.
        Organization.objects.filter(pk=org_id).update(event_seq=F("event_seq") + len(group))
        last = Organization.objects.filter(pk=org_id).values_list("event_seq", flat=True).get()
        numbered = [{**event, "seq": last - len(group) + position} for position, event in enumerate(group, start=1)]
        StoredEvent.unscoped_objects.bulk_create(
            StoredEvent(
                org_id=org_id,
                seq=event["seq"],
                event_id=event["envelope"]["id"],
                type=event["envelope"]["type"],
                data=event["envelope"]["data"],
                user_id=event["user_id"],
                created_at=parse_datetime(event["envelope"]["created_at"]),
            )
            for event in numbered
        )
    return numbered


def send_now(group: list[Event]) -> None:
    """Store a group of one org's events, then send them to the org's sockets."""
    try:
        group = store(group)
    except Exception:  # keep going: live sockets still get them, replay will not
        logger.warning("could not store events %s", _names(group), exc_info=True)
    send(group)


def send_live(org_id, type: EventType, data: dict[str, Any], user_id=None) -> bool:
    """Send an event to the org's sockets now, without storing it: no sequence number, so no
    replay after a reconnect (`?since=`) and no gap for the sockets that miss it. Not tied to
    a transaction either — it tells of nothing the database holds. Its `id` is null: a client
    that reconnects with `?since=` names its last *stored* event. Never raises; False when
    the channel layer failed (logged)."""
    event = build_event(org_id, type, data, user_id)
    event["envelope"]["id"] = None  # nothing to resume from: a client keeps its last stored event's id
    return send([event])


def send(group: list[Event]) -> bool:
    """Send a group of one org's events to the org's sockets (stored or not); False (logged)
    when the channel layer failed."""
    layer = get_channel_layer()
    if layer is None:
        return True
    org = org_group(group[0]["envelope"]["org_id"])
    message = (
        {"type": "event.message", "event": group[0]} if len(group) == 1 else {"type": "event.batch", "events": group}
    )
    try:
        sender.run(layer.group_send, org, message)
    except Exception:  # the layer is down: sockets see the gap and catch up (live-only events are lost)
        logger.warning("could not send events %s", _names(group), exc_info=True)
        return False
    return True


def _names(group: list[Event]) -> str:
    """For log lines only (not built on the path that succeeds)."""
    return ", ".join(f"{event['envelope']['type']} {event['envelope']['id']}" for event in group)


def last_event_id(org_id) -> str | None:
    """The id of the org's newest stored event: a page rendered now follows from there
    (`/ws/events/?since=`), so nothing that happens before its socket opens is missed."""
    from .models import StoredEvent

    newest = StoredEvent.unscoped_objects.filter(org_id=org_id).order_by("-seq").values_list("event_id", flat=True)
    first = newest.first()
    return str(first) if first else None


def stored_envelope(row) -> Event:
    return Event(
        envelope=Envelope(
            id=str(row.event_id), type=row.type, org_id=str(row.org_id), created_at=_iso(row.created_at), data=row.data
        ),
        seq=row.seq,
        user_id=str(row.user_id) if row.user_id else None,
    )


def purge_events(*, older_than_hours: float | None = None) -> int:
    """Delete stored events past their retention (all orgs); returns how many."""
    from .models import StoredEvent

    hours = older_than_hours if older_than_hours is not None else settings.REALTIME_EVENT_RETENTION_HOURS
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted, _ = StoredEvent.unscoped_objects.filter(created_at__lt=cutoff).delete()
    return deleted
