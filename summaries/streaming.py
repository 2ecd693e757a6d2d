"""`summary.delta` events: the text so far of a streamed LLM answer (see README, Streaming).

A provider streaming an answer calls the publisher with the whole text so far after every
chunk, tens of times a second. The publisher sends at most one event per MIN_INTERVAL_S: a
call inside the interval sends nothing, and the next call after it carries the newer text
anyway (the latest text wins). What the last throttled calls carried is not sent later:
`summary.created` (or `job.failed`) follows the answer at once, and a delayed delta could
arrive after it and show the client a stale text. Sends happen in the caller's thread, in
order, so a job's deltas always reach a socket before its `summary.created`.

Each event is `{"job", "document", "text", "index"}` (`index`: 0, 1, 2 … per attempt of the
job; a retried call starts its text over), sent with `realtime.events.send_live`: never
stored, never replayed after a reconnect, and seen only by the job's creator and the org's
admins (the consumer applies the job events' rule). The delta's text is the model's answer
so far without its paragraph markers (`[3]`), unless the request keeps them; the stored
summary (summary.created) is what counts.

Publishing never breaks the job: a failed send is logged and publishing pauses for
OUTAGE_PAUSE_S, so a channel layer that is down costs the stream one send timeout per pause,
not one per chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jobs.models import Job
from realtime.events import send_live

from .citations import without_markers

logger = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.1  # at most ~10 events per second per job
OUTAGE_PAUSE_S = 10.0


class _DeltaPublisher:
    """The callable `delta_publisher()` returns; safe to call from several threads."""

    def __init__(self, job: Job, clock: Callable[[], float] = time.monotonic):
        self.org_id = job.org_id
        self.user_id = job.created_by_id
        self.job_id = str(job.pk)
        self.document_id = str(job.document_id) if job.document_id else None
        self.keep_markers = bool((job.payload.get("options") or {}).get("citation_markers"))
        self._clock = clock
        self._lock = threading.Lock()  # held while sending: the deltas leave in order
        self._index = 0
        self._next_send_at = 0.0

    def __call__(self, text: str) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_send_at:
                return  # throttled: a later call carries newer text
            self._next_send_at = now + MIN_INTERVAL_S
            if self._send(text):
                self._index += 1
            else:
                self._next_send_at = now + OUTAGE_PAUSE_S

    def _send(self, text: str) -> bool:
        shown = text if self.keep_markers else without_markers(text)
        data = {"job": self.job_id, "document": self.document_id, "text": shown, "index": self._index}
        try:
            return send_live(self.org_id, "summary.delta", data, user_id=self.user_id)
        except Exception:  # send_live does not raise; this is the job's last line of defence
            logger.warning("could not send summary.delta of job %s", self.job_id, exc_info=True)
            return False


def delta_publisher(job: Job) -> Callable[[str], None]:
    """A callable taking the answer's text so far, for `SummarizeOptions.on_delta`."""
    return _DeltaPublisher(job)
