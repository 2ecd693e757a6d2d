"""Running untrusted-file extraction in a child process with hard limits.

A file is only bytes until it is parsed, and parsers can be made to spin (a PDF drawing
one form a million times) or to swell (a DOCX of a million paragraphs). So extraction
runs in a separate Python process (`python -m documents.sandbox_child`), one per file,
under:

- RLIMIT_AS (EXTRACTION_MEMORY_MB): an allocation past it fails (MemoryError) or the
  native parser dies: `extraction_memory`;
- RLIMIT_CPU (EXTRACTION_CPU_S): the kernel stops the child: `extraction_timeout`;
- a wall clock (EXTRACTION_TIMEOUT_S): the parent kills the child's whole process
  group (OCR tools included): `extraction_timeout`. Before OCR the child asks for
  OCR_PAGE_TIMEOUT_S more per scanned page (at most OCR_MAX_PAGES pages' worth), so a
  long scan is not cut off by a clock sized for text;
- an output cap: the child refuses text over MAX_DOCUMENT_CHARS, and the parent reads
  no more than that allows;
- a lower CPU priority (nice 10), so the web keeps answering while files are parsed.

Each process keeps one child warm (interpreter started, Django set up, parsers imported)
so a file does not wait for that start-up; a child serves exactly one file and exits,
so nothing of one tenant's file survives into the next. Requests and answers are JSON
(a compromised parser cannot hand the parent a pickle), and the child runs only the
functions listed in `documents.sandbox_child.FUNCTIONS`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
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


class _Spare:
    """One warm child per process, replaced as soon as it is taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._pid = os.getpid()

    def take(self) -> subprocess.Popen:
        with self._lock:
            child = self._child if self._pid == os.getpid() else None
            self._child, self._pid = None, os.getpid()
        if child is None or child.poll() is not None:
            child = _spawn()
        threading.Thread(target=self._refill, name="sandbox-spare", daemon=True).start()
        return child

    def warm(self) -> None:
        with self._lock:
            if self._child is not None and self._pid == os.getpid() and self._child.poll() is None:
                return
        threading.Thread(target=self._refill, name="sandbox-spare", daemon=True).start()

    def _refill(self) -> None:
        child = _spawn()
        with self._lock:
            if self._child is None and self._pid == os.getpid():
                self._child = child
                return
        _kill(child)


_spare = _Spare()


def warm() -> None:
    """Start this process's spare child now (a worker starting), not with the first file."""
    _spare.warm()


def _spawn() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "documents.sandbox_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed with whatever it starts
        cwd=settings.BASE_DIR,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def run(function: str, *args: Any, budget: Budget | None = None, alive: Callable[[], bool] = lambda: True) -> Outcome:
    """Run `function(*args)` (a name in sandbox_child.FUNCTIONS; JSON arguments and result)
    in a limited child. `alive()` turning False (the job was cancelled) stops it early.
    Returns an Outcome, or raises SandboxFailure."""
    budget = budget or Budget.from_settings()
    child = _spare.take()
    if not _ready(child):
        _kill(child)
        raise SandboxFailure("extraction_unavailable", "The file reader could not be started.")
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
    try:
        child.stdin.write(_HEADER.pack(len(request)) + request)
        child.stdin.close()
        answer = _read_answer(child, budget, started, alive)
    except (BrokenPipeError, OSError):
        answer = None
    finally:
        _kill(child)
    seconds = time.monotonic() - started
    if answer is None:
        raise _death(child.returncode, budget)
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


def _ready(child: subprocess.Popen) -> bool:
    """Wait for the child's ready byte (a spare has usually sent it long ago)."""
    ready, _, _ = select.select([child.stdout], [], [], STARTUP_TIMEOUT_S)
    return bool(ready) and os.read(child.stdout.fileno(), 1) == READY


def _read_answer(child: subprocess.Popen, budget: Budget, started: float, alive: Callable[[], bool]) -> dict | None:
    """The child's JSON answer, read within the wall clock plus what the child asked for
    (`{"extend_s": s}` frames before the answer, `extension_s` in all); None if it died first."""
    buffer = b""
    wall, extensible = budget.wall_s, budget.extension_s
    while True:
        left = wall - (time.monotonic() - started)
        if left <= 0:
            raise SandboxFailure("extraction_timeout", f"Reading the file took longer than {wall:g} s.")
        if not alive():
            raise SandboxFailure("cancelled", "The job was cancelled.")
        ready, _, _ = select.select([child.stdout], [], [], min(left, 0.25))
        if not ready:
            continue
        chunk = os.read(child.stdout.fileno(), 1024 * 1024)
        if not chunk:
            return None
        buffer += chunk
        while (frame := _frame(buffer, budget)) is not None:
            message, buffer = frame
            if "extend_s" not in message:
                return message
            try:
                grant = min(max(0.0, float(message["extend_s"])), extensible)
            except (TypeError, ValueError):
                raise SandboxFailure("extraction_failed", "The file reader answered nonsense.") from None
            wall, extensible = wall + grant, extensible - grant


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


def _kill(child: subprocess.Popen) -> None:
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        logger.warning("sandbox child %s did not exit after SIGKILL", child.pid)
    for stream in (child.stdin, child.stdout):
        if stream:
            with contextlib.suppress(OSError):
                stream.close()


def _death(returncode: int | None, budget: Budget) -> SandboxFailure:
    """What a child that did not answer died of."""
    if returncode == -signal.SIGXCPU:
        return SandboxFailure("extraction_timeout", f"Reading the file used more than {budget.cpu_s} s of CPU.")
    if returncode in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
        # Native parsers abort when an allocation past RLIMIT_AS fails.
        return SandboxFailure(
            "extraction_memory", "Reading the file needed more memory than it may use, or the parser crashed."
        )
    return SandboxFailure("extraction_failed", f"The file reader stopped unexpectedly (exit {returncode}).")
