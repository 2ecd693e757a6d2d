"""The load generator of bench/pipeline.py: POSTs summarize requests over HTTP (requests, a
keep-alive session per thread) and listens on /ws/events/ (websockets) for `job.succeeded`.

Every timestamp is taken the moment it happens: `t_post` right before the request is
written, `t_done` as soon as the WebSocket frame is read (before it is parsed), both
`time.perf_counter()`; wall-clock twins (`time.time()`) line them up with the server's
`created_at`/`started_at`/`finished_at` for the breakdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State


@dataclass
class Posted:
    t_post: float
    wall_post: float
    t_answer: float
    status: int
    job_id: str | None
    error: str = ""


class PipelineClient:
    def __init__(self, http: str, ws: str, token: str, document_ids: list[str], post_threads: int = 8):
        # Requests go round-robin over the documents (no single hot document row).
        self.urls = itertools.cycle([f"{http}/api/v1/documents/{d}/summarize/" for d in document_ids])
        self._urls_lock = threading.Lock()
        self.ws_url = f"{ws}/ws/events/"
        self.token = token
        self.pool = ThreadPoolExecutor(max_workers=post_threads, thread_name_prefix="bench-post")
        self.local = threading.local()
        self.done: dict[str, tuple[float, float, str]] = {}  # job id → (t, wall, event created_at)
        self.failed: dict[str, dict] = {}
        self.event_counts: dict[str, int] = {}
        self._arrived: asyncio.Event | None = None
        self._pong: asyncio.Event | None = None
        self._reader: asyncio.Task | None = None
        self.ws = None
        self.closed_by_server: list[str] = []  # close code/reason of every socket the server ended

    # -- WebSocket -------------------------------------------------------------------------
    async def open(self) -> None:
        self._arrived = self._arrived or asyncio.Event()
        self._pong = asyncio.Event()
        self.ws = await connect(
            self.ws_url,
            subprotocols=["bearer", self.token],
            max_size=None,
            open_timeout=30,
            close_timeout=5,
            ping_interval=None,  # daphne pings us; our own keepalive is not needed on loopback
        )
        if self.ws.subprotocol != "bearer":
            raise RuntimeError(f"unexpected subprotocol {self.ws.subprotocol!r}")
        self._reader = asyncio.create_task(self._read())
        # The consumer handles messages only after connect() (groups joined): a pong proves it.
        await self.ws.send(json.dumps({"type": "ping"}))
        await asyncio.wait_for(self._pong.wait(), 30)

    async def ensure_open(self) -> bool:
        """Reconnect if the server closed the socket; True when it had to."""
        if self.ws is not None and self.ws.state is State.OPEN and self._reader and not self._reader.done():
            return False
        if self.ws is not None:
            self.closed_by_server.append(f"{self.ws.close_code} {self.ws.close_reason or ''}".strip())
        await self.open()
        return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await self._reader
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                t, wall = time.perf_counter(), time.time()
                event = json.loads(message)
                kind = event.get("type", "?")
                self.event_counts[kind] = self.event_counts.get(kind, 0) + 1
                if kind == "job.succeeded":
                    self.done[event["data"]["id"]] = (t, wall, event.get("created_at", ""))
                    self._arrived.set()
                elif kind in ("job.failed", "job.cancelled"):
                    self.failed[event["data"]["id"]] = event["data"]
                    self._arrived.set()
                elif kind == "pong":
                    self._pong.set()
        except ConnectionClosed:
            pass
        finally:
            self._arrived.set()  # wake waiters: the socket is gone

    async def wait_all(self, job_ids: list[str], timeout: float) -> list[str]:
        """Wait (woken by each arriving event) until every job finished; returns the missing ids."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [j for j in job_ids if j not in self.done and j not in self.failed]
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0 or self._reader is None or self._reader.done():
                return missing
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    # -- HTTP ------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            self.local.session = session
        return session

    def post_sync(self) -> Posted:
        session = self._session()
        with self._urls_lock:
            url = next(self.urls)
        t_post, wall = time.perf_counter(), time.time()
        response = session.post(url, data=b"{}", timeout=30)
        t_answer = time.perf_counter()
        if response.status_code == 202:
            return Posted(t_post, wall, t_answer, 202, response.json().get("id"))
        return Posted(t_post, wall, t_answer, response.status_code, None, response.text[:500])

    async def post(self) -> Posted:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.post_sync)

    # -- load shapes -----------------------------------------------------------------------
    async def open_loop(self, n: int, rate: float, timeout: float = 120.0) -> tuple[list[Posted], list[str]]:
        """n requests at `rate`/s on a fixed schedule (not waiting for answers); then all results."""
        start = time.perf_counter() + 0.02
        pending = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the load schedule, not part of the measured path
            pending.append(asyncio.ensure_future(self.post()))
        posted = await asyncio.gather(*pending)
        missing = await self.wait_all([p.job_id for p in posted if p.job_id], timeout)
        return posted, missing

    async def burst(self, n: int, concurrency: int, timeout: float = 300.0) -> tuple[list[Posted], list[str]]:
        """n requests as fast as `concurrency` connections allow; then wait for every job."""
        queue = list(range(n))
        posted: list[Posted] = []

        async def sender() -> None:
            while queue:
                queue.pop()
                posted.append(await self.post())

        await asyncio.gather(*(sender() for _ in range(concurrency)))
        missing = await self.wait_all([p.job_id for p in posted if p.job_id], timeout)
        return posted, missing
