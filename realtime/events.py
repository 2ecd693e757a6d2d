"""The one way events leave the server: `publish(org_id, type, data, user_id=None)`.

Events are sent after the surrounding transaction commits (never for work
that rolls back) to the organization's channel group, where each connected
socket decides by the event's data whether its user may see it (see
realtime.consumers). Publishing never breaks the caller: a channel layer
outage is logged, and the event stays recoverable from the job/document rows.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

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


class Event(TypedDict):
    id: str
    type: str
    org_id: str
    created_at: str
    data: dict[str, Any]
    # Who may see it besides org admins (job events: the job's creator); None: the whole org.
    user_id: str | None


def org_group(org_id) -> str:
    return f"org.{org_id}"


def build_event(org_id, type: EventType, data: dict[str, Any], user_id=None) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type=type,
        org_id=str(org_id),
        created_at=timezone.now().isoformat().replace("+00:00", "Z"),
        data=data,
        user_id=str(user_id) if user_id else None,
    )


def publish(org_id, type: EventType, data: dict[str, Any], user_id=None) -> Event:
    """Queue an event for the org's sockets; sent when the current transaction commits."""
    event = build_event(org_id, type, data, user_id)
    transaction.on_commit(lambda: send_now(event))
    return event


def send_now(event: Event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(org_group(event["org_id"]), {"type": "event.message", "event": event})
    except Exception:  # the channel layer is down: the job rows stay the source of truth
        logger.warning("could not publish %s event %s", event["type"], event["id"], exc_info=True)
