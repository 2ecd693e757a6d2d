"""The sandboxed extraction processes (`python -m documents.sandbox_child`; see documents.sandbox).

One per web or worker process, started ahead of need, is a fork server: it sets up
Django, imports the parsers and loads the language model once, says it is ready (one
byte on its control socket), then waits. For each file the parent sends it one end of a
new socket pair; the server forks a supervisor, which starts a new session (a process
group the parent can kill whole), says `{"pgid"}`, and forks the reader. The reader
(at nice 19, SCHED_BATCH) reads one JSON request — `{function, args, cpu_s, memory_bytes,
max_chars, extension_s}` — applies the limits, runs the function and answers one JSON
frame: `{status: "ok", value, peak_rss_bytes}` or `{status: "error", error: {code,
detail}, ...}`, then exits; the supervisor then says `{"exit": code}` (how the reader
ended: a signal is negative) and exits too. A fork costs milliseconds where starting
Python, Django and the parsers costs two CPU seconds, and every reader starts from the
same clean server: nothing of one file survives into the next. Only the functions in
FUNCTIONS can be asked for.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import socket
import struct

_HEADER = struct.Struct("!I")
READY = b"R"  # written once set up

FUNCTIONS = {"extract_file": ("documents.extraction", "extract_file")}
if os.environ.get("PRECIS_SANDBOX_TESTS") == "1":  # set by config.settings.test only
    # What a hostile parser would do, on demand, for the sandbox's own tests.
    FUNCTIONS.update(
        {
            f"test.{name}": ("documents.tests.sandbox_targets", name)
            for name in (
                "echo",
                "spin",
                "sleep",
                "swell",
                "fail_with_code",
                "crash",
                "child_of_child",
                "extend_then_sleep",
                "remember",
            )
        }
    )


_channel: socket.socket | None = None  # the reader's socket to the parent


def _read_exactly(size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = _channel.recv(size - len(data))
        if not chunk:
            os._exit(0)  # the parent went away without a request
        data += chunk
    return data


def _read_request() -> dict:
    (length,) = _HEADER.unpack(_read_exactly(_HEADER.size))
    return json.loads(_read_exactly(length))


def _peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: that one survives
    exec and so reports the parent's size when the parent was larger."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _send(payload: dict, channel: socket.socket | None = None) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    (channel or _channel).sendall(_HEADER.pack(len(data)) + data)


def _answer(payload: dict) -> None:
    payload["peak_rss_bytes"] = _peak_rss_bytes()
    _send(payload)


_extension = {"left": 0.0}  # seconds the parent will still add when asked (set by main)


def request_time(seconds: float) -> None:
    """Before work whose length the file decides within known bounds (OCR of its scanned
    pages): ask the parent for that much more wall clock, and raise this process's CPU
    limit by as much (what it starts from now on inherits it). Outside the sandbox, and
    past the request's `extension_s`, nothing."""
    grant = min(float(seconds), _extension["left"]) if _channel is not None else 0.0
    if grant <= 0:
        return
    _extension["left"] -= grant
    _send({"extend_s": grant})
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft + math.ceil(grant), hard - 1), hard))


def main() -> None:
    """The fork server: set up once, then a supervisor and a reader for every file."""
    control = socket.socket(fileno=int(os.environ["PRECIS_SANDBOX_CONTROL_FD"]))
    os.nice(10)  # its start-up, and every reader it forks, yield to the web and the workers
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import importlib

    import django

    django.setup()
    importlib.import_module("documents.extraction").warm()  # the parsers are loaded before a file comes
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    control.sendall(READY)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 16, 1)
        except OSError:
            break
        if not message:
            break  # the parent went away: so does the server
        if not fds:
            continue
        if os.fork() == 0:
            try:
                control.close()
                _supervise(fds[0])
            finally:
                os._exit(1)  # never back into the server's loop
        os.close(fds[0])
    os._exit(0)


def _supervise(fd: int) -> None:
    """In a new session: report its id, run the reader, report how the reader ended."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    channel = socket.socket(fileno=fd)
    try:
        _send({"pgid": os.getpid()}, channel)
        reader = os.fork()
        if reader == 0:
            try:
                _read(channel)
            finally:
                os._exit(1)  # _read ends with its own exit; this is for what escaped it
        _, status = os.waitpid(reader, 0)
        _send({"exit": os.waitstatus_to_exitcode(status)}, channel)
    except OSError:
        pass  # the parent stopped listening
    os._exit(0)


def _read(channel: socket.socket) -> None:
    """The reader: limits, the one function, one answer."""
    global _channel
    import importlib

    _channel = channel
    # The lowest priority there is short of idle-only: a file being parsed takes what the web
    # and the workers leave (SCHED_BATCH: it never preempts them on waking either).
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    os.nice(19 - os.nice(0))
    request = _read_request()
    memory = int(request["memory_bytes"])
    extension = float(request.get("extension_s") or 0)
    _extension["left"] = extension
    cpu = int(request["cpu_s"])  # a fresh fork: its CPU time starts at zero
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + math.ceil(extension) + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        module_name, attribute = FUNCTIONS[request["function"]]
        function = getattr(importlib.import_module(module_name), attribute)
        value = function(*request.get("args", []))
        if isinstance(value, dict) and len(value.get("text") or "") > int(request["max_chars"]):
            raise _TooLong(int(request["max_chars"]))
        _answer({"status": "ok", "value": value})
    except MemoryError:
        _answer({"status": "error", "error": {"code": "extraction_memory", "detail": _MEMORY}})
    except BaseException as exc:
        code, detail = getattr(exc, "code", None), getattr(exc, "detail", None)
        if hasattr(exc, "get_codes"):  # a PrecisError
            code, detail = exc.get_codes(), str(exc.detail)
        if not (isinstance(code, str) and isinstance(detail, str)):
            code, detail = "extraction_failed", f"The file could not be read ({exc.__class__.__name__})."
        try:
            _answer({"status": "error", "error": {"code": code, "detail": detail}})
        except MemoryError:
            os._exit(3)
    os._exit(0)


_MEMORY = "Reading the file needed more memory than it may use."


class _TooLong(Exception):
    def __init__(self, limit: int):
        self.code = "document_too_long"
        self.detail = f"The extracted text exceeds {limit} characters."
        super().__init__(self.detail)


if __name__ == "__main__":
    # Run the importable module's main(), not this __main__ copy's: the readers reach its
    # state (request_time) by importing documents.sandbox_child.
    from documents.sandbox_child import main as run_child

    run_child()
