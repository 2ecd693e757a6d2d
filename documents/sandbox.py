"""Running untrusted-file extraction in a child process with hard limits.

A file is only bytes until it is parsed, and parsers can be made to spin (a PDF drawing
one form a million times) or to swell (a DOCX of a million paragraphs). So extraction
runs in a separate process, one per file, forked from this process's fork server
(`python -m documents.sandbox_child`, started once with Django set up and the parsers
loaded), under:

- RLIMIT_AS (EXTRACTION_MEMORY_MB): an allocation past it fails (MemoryError) or the
  native parser dies: `extraction_memory`;
- RLIMIT_CPU (EXTRACTION_CPU_S): the kernel stops the child: `extraction_timeout`;
- a wall clock (EXTRACTION_TIMEOUT_S): the parent kills the child's whole process
  group (OCR tools included): `extraction_timeout`. Before OCR the child asks for
  OCR_PAGE_TIMEOUT_S more per scanned page (at most OCR_MAX_PAGES pages' worth), so a
  long scan is not cut off by a clock sized for text;
- an output cap: the child refuses text over MAX_DOCUMENT_CHARS, and the parent reads
  no more than that allows;
- the lowest CPU priority (nice 19, SCHED_BATCH), so the web keeps answering while files are parsed.

A fork costs milliseconds, where starting Python, Django and the parsers costs about two
CPU seconds: a folder of 10,000 small files is not 10,000 interpreter starts. Every
reader is a fresh fork of the same clean server and reads exactly one file, so nothing
of one tenant's file survives into the next. Requests and answers are JSON (a
compromised parser cannot hand the parent a pickle), and a reader runs only the
functions listed in `documents.sandbox_child.FUNCTIONS`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!I")
READY = b"R"


@dataclass(frozen=True)
class Budget:
    cpu_s: int
    memory_bytes: int
    wall_s: float
    max_chars: int
    extension_s: float = 0.0  # the most the child may ask to add (OCR: pages × OCR_PAGE_TIMEOUT_S)

    @classmethod
    def from_settings(cls) -> Budget:
        return cls(
            cpu_s=settings.EXTRACTION_CPU_S,
            memory_bytes=settings.EXTRACTION_MEMORY_MB * 1024 * 1024,
            wall_s=settings.EXTRACTION_TIMEOUT_S,
            max_chars=settings.MAX_DOCUMENT_CHARS,
            extension_s=settings.OCR_MAX_PAGES * settings.OCR_PAGE_TIMEOUT_S,
        )


class SandboxFailure(Exception):
    """The child produced no result: a stable code and a human detail."""

    def __init__(self, code: str, detail: str, *, peak_rss_bytes: int | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.peak_rss_bytes = peak_rss_bytes


@dataclass(frozen=True)
class Outcome:
    value: Any
    peak_rss_bytes: int
    seconds: float


class _Server:
    """This process's fork server (documents.sandbox_child): started once, ahead of need,
    and again if it dies; a reader for a file is one fork of it away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._pid = os.getpid()

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "documents.sandbox_child"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                cwd=settings.BASE_DIR,
                env={
                    **os.environ,
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "PRECIS_SANDBOX_CONTROL_FD": str(theirs.fileno()),
                    # No thread pools in a process that forks (numpy's BLAS would start one).
                    "OPENBLAS_NUM_THREADS": "1",
                    "OMP_NUM_THREADS": "1",
                },
            )
        finally:
            theirs.close()
        ready, _, _ = select.select([ours], [], [], STARTUP_TIMEOUT_S)
        if not ready or ours.recv(1) != READY:
            ours.close()
            process.kill()
            process.wait()
            raise SandboxFailure("extraction_unavailable", "The file reader could not be started.")
        self._process, self._control = process, ours

    def _running(self) -> bool:
        return self._pid == os.getpid() and self._process is not None and self._process.poll() is None

    def warm(self) -> None:
        with self._lock:
            if not self._running():
                self._pid, self._process = os.getpid(), None  # a forked copy never shares its parent's
                self._start()

    def open(self) -> socket.socket:
        """A socket to a new reader (supervised, in its own session)."""
        for attempt in (1, 2):
            self.warm()
            ours, theirs = socket.socketpair()
            try:
                with self._lock:
                    socket.send_fds(self._control, [b"F"], [theirs.fileno()])
                return ours
            except OSError:
                ours.close()
                with self._lock:
                    self._process = None  # it died since: start another, once
                if attempt == 2:
                    raise SandboxFailure("extraction_unavailable", "The file reader could not be started.") from None
            finally:
                theirs.close()
        raise AssertionError("unreachable")


_server = _Server()


def warm() -> None:
    """Start this process's fork server now (a worker starting), not with the first file."""
    _server.warm()


def run(function: str, *args: Any, budget: Budget | None = None, alive: Callable[[], bool] = lambda: True) -> Outcome:
    """Run `function(*args)` (a name in sandbox_child.FUNCTIONS; JSON arguments and result)
    in a limited reader. `alive()` turning False (the job was cancelled) stops it early.
    Returns an Outcome, or raises SandboxFailure."""
    budget = budget or Budget.from_settings()
    channel = _server.open()
    started = time.monotonic()
    request = json.dumps(
        {
            "function": function,
            "args": list(args),
            "cpu_s": budget.cpu_s,
            "memory_bytes": budget.memory_bytes,
            "max_chars": budget.max_chars,
            "extension_s": budget.extension_s,
        }
    ).encode()
    reader = _Reader(channel)
    try:
        channel.sendall(_HEADER.pack(len(request)) + request)
        answer = _read_answer(reader, budget, started, alive)
    except OSError:
        answer = None
    finally:
        reader.kill()
    seconds = time.monotonic() - started
    if answer is None:
        raise _death(reader.exit_code, budget)
    peak = int(answer.get("peak_rss_bytes") or 0)
    if answer.get("status") == "ok":
        return Outcome(answer.get("value"), peak, seconds)
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    raise SandboxFailure(
        str(error.get("code") or "extraction_failed")[:64],
        str(error.get("detail") or "The file could not be read.")[:1000],
        peak_rss_bytes=peak,
    )


STARTUP_TIMEOUT_S = 60.0


class _Reader:
    """The parent's end of one reader: its socket, its process group, how it ended."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.pgid: int | None = None
        self.exit_code: int | None = None
        self.buffer = b""

    def kill(self) -> None:
        """The reader, its supervisor and whatever they started (OCR tools) are stopped."""
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.channel.close()


def _read_answer(reader: _Reader, budget: Budget, started: float, alive: Callable[[], bool]) -> dict | None:
    """The reader's JSON answer, read within the wall clock plus what it asked for
    (`{"extend_s": s}` frames, `extension_s` in all); None if it ended first (then
    `reader.exit_code` says how, when its supervisor could tell)."""
    wall, extensible = budget.wall_s, budget.extension_s
    while True:
        left = wall - (time.monotonic() - started)
        if left <= 0:
            raise SandboxFailure("extraction_timeout", f"Reading the file took longer than {wall:g} s.")
        if not alive():
            raise SandboxFailure("cancelled", "The job was cancelled.")
        ready, _, _ = select.select([reader.channel], [], [], min(left, 0.25))
        if not ready:
            continue
        chunk = reader.channel.recv(1024 * 1024)
        if not chunk:
            return None
        reader.buffer += chunk
        while (frame := _frame(reader.buffer, budget)) is not None:
            message, reader.buffer = frame
            if "pgid" in message:
                reader.pgid = int(message["pgid"])
            elif "exit" in message:
                reader.exit_code = int(message["exit"])
                return None
            elif "extend_s" in message:
                try:
                    grant = min(max(0.0, float(message["extend_s"])), extensible)
                except (TypeError, ValueError):
                    raise SandboxFailure("extraction_failed", "The file reader answered nonsense.") from None
                wall, extensible = wall + grant, extensible - grant
            else:
                return message


def _frame(buffer: bytes, budget: Budget) -> tuple[dict, bytes] | None:
    """The first complete message in `buffer` and what follows it, or None for not yet."""
    if len(buffer) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(buffer[: _HEADER.size])
    if size > budget.max_chars * 4 + 1024 * 1024:  # UTF-8 and JSON escaping of the largest text
        raise SandboxFailure("document_too_long", f"The extracted text exceeds {budget.max_chars} characters.")
    if len(buffer) < _HEADER.size + size:
        return None
    try:
        message = json.loads(buffer[_HEADER.size : _HEADER.size + size])
    except ValueError:
        raise SandboxFailure("extraction_failed", "The file reader answered nonsense.") from None
    if not isinstance(message, dict):
        raise SandboxFailure("extraction_failed", "The file reader answered nonsense.")
    return message, buffer[_HEADER.size + size :]


def _death(returncode: int | None, budget: Budget) -> SandboxFailure:
    """What a reader that did not answer died of."""
    if returncode == -signal.SIGXCPU:
        return SandboxFailure("extraction_timeout", f"Reading the file used more than {budget.cpu_s} s of CPU.")
    if returncode in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
        # Native parsers abort when an allocation past RLIMIT_AS fails.
        return SandboxFailure(
            "extraction_memory", "Reading the file needed more memory than it may use, or the parser crashed."
        )
    return SandboxFailure("extraction_failed", f"The file reader stopped unexpectedly (exit {returncode}).")
