"""Keeping running jobs' leases alive while their worker is busy (e.g. in a long LLM call).

One renewer thread per process renews the leases of every job the process is running,
in one UPDATE every JOB_HEARTBEAT_S: a worker with 32 jobs in flight needs one thread
and one database connection for it, not 32.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import connection

from .services import job_heartbeat_many

logger = logging.getLogger(__name__)


class _Renewer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, LeaseKeeper] = {}  # lease token → its keeper
        self._wake = threading.Event()
        self._pid: int | None = None

    def add(self, keeper: LeaseKeeper) -> None:
        with self._lock:
            self._held[keeper.lease_token] = keeper
            if self._pid != os.getpid():  # first use in this process (or a forked child)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-renewer", daemon=True).start()

    def remove(self, keeper: LeaseKeeper) -> None:
        with self._lock:
            self._held.pop(keeper.lease_token, None)

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.JOB_HEARTBEAT_S)
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                renewed = job_heartbeat_many({keeper.job_id: token for token, keeper in held.items()})
            except Exception:  # a database blip: try again at the next beat
                logger.warning("lease renewal failed for %d job(s)", len(held), exc_info=True)
                continue
            finally:
                connection.close()
            for token, keeper in held.items():
                if token not in renewed:
                    keeper.lost()


_renewer = _Renewer()


class LeaseKeeper:
    """Holds a running attempt's lease for the duration of a `with` block.

    `alive` turns False as soon as a renewal finds the attempt no longer owns a
    running job (cancelled, or reaped after a stall): the work should stop.
    """

    def __init__(self, job_id, lease_token: str):
        self.job_id = job_id
        self.lease_token = lease_token
        self._lost = threading.Event()

    @property
    def alive(self) -> bool:
        return not self._lost.is_set()

    def lost(self) -> None:
        self._lost.set()

    def __enter__(self) -> LeaseKeeper:
        _renewer.add(self)
        return self

    def __exit__(self, *exc) -> None:
        _renewer.remove(self)
