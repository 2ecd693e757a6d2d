"""The sandboxed extraction process (`python -m documents.sandbox_child`; see documents.sandbox).

Started ahead of need: it sets up Django and imports the parsers, lowers its priority,
says it is ready (one byte), then waits for one JSON request on stdin — `{function, args, cpu_s, memory_bytes,
max_chars}` — applies the limits, runs the function and writes one JSON answer to stdout:
`{status: "ok", value, peak_rss_bytes}` or `{status: "error", error: {code, detail}, ...}`.
Then it exits. Only the functions in FUNCTIONS can be asked for.
"""

from __future__ import annotations

import json
import math
import os
import resource
import struct
import sys

_HEADER = struct.Struct("!I")
READY = b"R"  # written once set up: the parent starts the file's clock then

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
            )
        }
    )


def _read_request() -> dict:
    stream = sys.stdin.buffer
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        sys.exit(0)  # the parent went away without a request
    (length,) = _HEADER.unpack(header)
    return json.loads(stream.read(length))


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


def _send(payload: dict) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    sys.stdout.buffer.write(_HEADER.pack(len(data)) + data)
    sys.stdout.buffer.flush()


def _answer(payload: dict) -> None:
    payload["peak_rss_bytes"] = _peak_rss_bytes()
    _send(payload)


_extension = {"left": 0.0}  # seconds the parent will still add when asked (set by main)


def request_time(seconds: float) -> None:
    """Before work whose length the file decides within known bounds (OCR of its scanned
    pages): ask the parent for that much more wall clock, and raise this process's CPU
    limit by as much (what it starts from now on inherits it). Outside the sandbox, and
    past the request's `extension_s`, nothing."""
    grant = min(float(seconds), _extension["left"])
    if grant <= 0:
        return
    _extension["left"] -= grant
    _send({"extend_s": grant})
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft + math.ceil(grant), hard - 1), hard))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import importlib

    import django

    django.setup()
    importlib.import_module("documents.extraction").warm()  # the parsers are loaded before a file comes
    os.nice(10)
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    request = _read_request()
    memory = int(request["memory_bytes"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + int(request["cpu_s"])  # the start-up is not the file's
    extension = float(request.get("extension_s") or 0)
    _extension["left"] = extension
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
