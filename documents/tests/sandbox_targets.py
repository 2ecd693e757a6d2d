"""Functions the sandbox tests run in the child (module level: the child imports them)."""

import os
import time


def echo(value):
    return value


def spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def swell(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def fail_with_code() -> None:
    from documents.extraction import ExtractionFailed

    raise ExtractionFailed("The PDF could not be read (KeyError).", "malformed_pdf")


def crash() -> None:
    os.abort()


def child_of_child(seconds: float) -> None:
    import subprocess

    subprocess.run(["sleep", str(seconds)], check=False)


def extend_then_sleep(extra: float, seconds: float) -> str:
    from documents.sandbox_child import request_time

    request_time(extra)
    time.sleep(seconds)
    return "done"


_seen: list = []


def remember(value):
    """What earlier calls left in this module, plus `value`: a reader starts clean."""
    _seen.append(value)
    return _seen
