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
"""

from __future__ import annotations

import logging
import uuid
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
    "summary.created",
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
    seq: int | None  # the org's event number; None if it could not be stored
    user_id: str | None  # job events: the job's creator (admins see all); None: the whole org


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


def publish(org_id, type: EventType, data: dict[str, Any], user_id=None) -> Event:
    """Queue an event for the org's sockets; stored and sent when the transaction commits."""
    event = build_event(org_id, type, data, user_id)
    transaction.on_commit(lambda: send_now(event))
    return event


# PostgreSQL: number and store the event in one statement (one round trip, atomic on its own).
# The UPDATE's row lock orders concurrent publishers of one org until the statement commits.
_STORE_SQL = """
WITH numbered AS (
    UPDATE organizations_organization SET event_seq = event_seq + 1 WHERE id = %(org_id)s RETURNING event_seq
)
INSERT INTO realtime_storedevent (created_at, updated_at, org_id, seq, event_id, type, data, user_id)
SELECT %(created_at)s, %(created_at)s, %(org_id)s, numbered.event_seq, %(event_id)s, %(type)s, %(data)s, %(user_id)s
FROM numbered
RETURNING seq
"""


def store(event: Event) -> Event:
    """Give the event its org sequence number and keep it for replay."""
    from organizations.models import Organization

    from .models import StoredEvent

    envelope = event["envelope"]
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        with connection.cursor() as cursor:
            cursor.execute(
                _STORE_SQL,
                {
                    "org_id": envelope["org_id"],
                    "created_at": parse_datetime(envelope["created_at"]),
                    "event_id": envelope["id"],
                    "type": envelope["type"],
                    "data": Jsonb(envelope["data"]),
                    "user_id": event["user_id"],
                },
            )
            row = cursor.fetchone()
        if row is None:
            raise Organization.DoesNotExist(f"organization {envelope['org_id']} is gone")
        return {**event, "seq": row[0]}
    with transaction.atomic():
        # The row lock orders concurrent publishers of one org: numbers follow commit order.
        Organization.objects.filter(pk=envelope["org_id"]).update(event_seq=F("event_seq") + 1)
        seq = Organization.objects.filter(pk=envelope["org_id"]).values_list("event_seq", flat=True).get()
        StoredEvent.unscoped_objects.create(
            org_id=envelope["org_id"],
            seq=seq,
            event_id=envelope["id"],
            type=envelope["type"],
            data=envelope["data"],
            user_id=event["user_id"],
            created_at=parse_datetime(envelope["created_at"]),
        )
    return {**event, "seq": seq}


def send_now(event: Event) -> None:
    try:
        event = store(event)
    except Exception:  # keep going: live sockets still get it, replay will not
        logger.warning("could not store %s event %s", event["envelope"]["type"], event["envelope"]["id"], exc_info=True)
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        sender.run(layer.group_send, org_group(event["envelope"]["org_id"]), {"type": "event.message", "event": event})
    except Exception:  # the channel layer is down: sockets will see the gap and catch up
        logger.warning("could not send %s event %s", event["envelope"]["type"], event["envelope"]["id"], exc_info=True)


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
