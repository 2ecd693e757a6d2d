"""Keeping a running job's lease alive while its worker is busy (e.g. in a long LLM call)."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection

from .services import job_heartbeat

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """A background thread renewing the lease every JOB_HEARTBEAT_S.

    `alive` turns False as soon as a renewal finds the attempt no longer owns a
    running job (cancelled, or reaped after a stall): the work should stop.
    """

    def __init__(self, job_id, lease_token: str):
        self.job_id = job_id
        self.lease_token = lease_token
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    @property
    def alive(self) -> bool:
        return not self._lost.is_set()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=settings.JOB_HEARTBEAT_S + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.JOB_HEARTBEAT_S):
                try:
                    if not job_heartbeat(job_id=self.job_id, lease_token=self.lease_token):
                        self._lost.set()
                        return
                except Exception:  # a database blip: try again at the next beat
                    logger.warning("lease renewal failed for job %s", self.job_id, exc_info=True)
        finally:
            connection.close()
