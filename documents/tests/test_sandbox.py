"""The extraction sandbox (documents.sandbox): a real child process per call, its limits
caused for real (CPU spun, memory swollen, a process that hangs, crashes or forks), and the
hostile files of the ingestion issue read under the shipped kind of budget."""

import os
import time

import pytest

from documents import sandbox
from documents.sandbox import Budget, SandboxFailure
from documents.tests import hostile_files

MB = 1024 * 1024


def budget(**changes) -> Budget:
    values = {"cpu_s": 5, "memory_bytes": 768 * MB, "wall_s": 10.0, "max_chars": 100_000}
    return Budget(**{**values, **changes})


def failure(function: str, *args, **limits) -> tuple[SandboxFailure, float]:
    started = time.monotonic()
    with pytest.raises(SandboxFailure) as caught:
        sandbox.run(function, *args, budget=budget(**limits))
    return caught.value, time.monotonic() - started


def test_answers_in_json_with_its_peak_memory():
    outcome = sandbox.run("test.echo", {"text": "héllo", "n": [1, 2]}, budget=budget())
    assert outcome.value == {"text": "héllo", "n": [1, 2]}
    assert 10 * MB < outcome.peak_rss_bytes < 768 * MB
    assert outcome.seconds < 5


def test_only_listed_functions_run():
    error, _ = failure("os.system", "true")
    assert error.code == "extraction_failed" and "KeyError" in error.detail


def test_cpu_spin_is_stopped_by_the_cpu_limit():
    error, seconds = failure("test.spin", 30, cpu_s=1, wall_s=20)
    assert error.code == "extraction_timeout" and "CPU" in error.detail
    assert seconds < 10  # the CPU limit fired, long before the wall clock


def test_a_hang_is_stopped_by_the_wall_clock():
    error, seconds = failure("test.sleep", 60, wall_s=1)
    assert error.code == "extraction_timeout" and "1 s" in error.detail
    assert seconds < 1 + 3  # the clock, plus the server's start-up when it was not running yet


def test_the_child_may_ask_for_more_time_within_its_allowance():
    outcome = sandbox.run("test.extend_then_sleep", 5, 2, budget=budget(wall_s=1, extension_s=10))
    assert outcome.value == "done"  # 1 s + 5 s granted: the 2 s sleep fits
    error, seconds = failure("test.extend_then_sleep", 5, 30, wall_s=1, extension_s=2)
    assert error.code == "extraction_timeout" and "3 s" in error.detail  # only what the allowance held
    assert seconds < 3 + 3


def test_memory_past_the_cap_fails_the_file_not_the_machine():
    error, _ = failure("test.swell", 1024, memory_bytes=256 * MB)
    assert error.code == "extraction_memory"


def test_a_crash_is_reported():
    error, _ = failure("test.crash")
    assert error.code == "extraction_memory" and "crashed" in error.detail


def test_the_parsers_own_error_code_comes_through():
    error, _ = failure("test.fail_with_code")
    assert (error.code, error.detail) == ("malformed_pdf", "The PDF could not be read (KeyError).")


def test_text_over_the_limit_is_refused():
    error, _ = failure("test.echo", {"text": "x" * 1001}, max_chars=1000)
    assert error.code == "document_too_long" and "1000" in error.detail


def _running(command_line: bytes) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if handle.read().replace(b"\0", b" ").strip() == command_line:
                    return True
        except OSError:
            continue
    return False


def _wait_until(condition, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_what_the_child_started_dies_with_it():
    seconds = "41.3579"  # a command line no other process has
    started = time.monotonic()
    with pytest.raises(SandboxFailure):
        sandbox.run("test.child_of_child", float(seconds), budget=budget(wall_s=1.5))
    assert time.monotonic() - started < 3
    assert _wait_until(lambda: not _running(f"sleep {seconds}".encode()), 5)


def test_a_cancelled_job_stops_its_child():
    calls = []

    def alive():
        calls.append(1)
        return len(calls) < 3

    started = time.monotonic()
    with pytest.raises(SandboxFailure) as caught:
        sandbox.run("test.sleep", 60, budget=budget(wall_s=30), alive=alive)
    assert caught.value.code == "cancelled" and time.monotonic() - started < 3


def _extract(tmp_path, name: str, data: bytes, **limits):
    from documents.extraction import Limits

    path = tmp_path / name
    path.write_bytes(data)
    options = Limits.from_settings().__dict__
    return sandbox.run("extract_file", str(path), name, options, budget=budget(**limits))


def _server_ready() -> None:
    sandbox.warm()


@pytest.mark.parametrize(
    "name, make",
    [
        ("nested.pdf", lambda: hostile_files.nested_xobject_pdf(depth=4)),
        ("repeated.pdf", lambda: hostile_files.repeated_xobject_pdf(draws=4000)),
        ("bomb.docx", lambda: hostile_files.docx_bomb()),
    ],
)
def test_hostile_files_fail_within_their_budget(tmp_path, name, make):
    """Each of these held a web thread for minutes before ingestion moved to the sandbox."""
    data = make()
    _server_ready()  # the file's clock, not the server's start-up on a busy machine
    started = time.monotonic()
    with pytest.raises(SandboxFailure) as caught:
        _extract(tmp_path, name, data, cpu_s=3, wall_s=6, memory_bytes=512 * MB)
    seconds = time.monotonic() - started
    assert caught.value.code in {"extraction_timeout", "extraction_memory", "document_too_long", "document_too_large"}
    assert seconds < 6 + 1


def test_a_real_file_is_read_well_under_the_memory_cap(tmp_path):
    outcome = _extract(tmp_path, "report.pdf", hostile_files.report_pdf())
    assert outcome.value["content_type"] == "application/pdf"
    assert outcome.value["metadata"]["pages"] == 5
    assert outcome.peak_rss_bytes < 300 * MB


def test_workers_that_run_ingest_jobs_start_the_fork_server_before_the_first_file():
    from jobs.runtime import jobs_starting

    server = sandbox._server
    if server._running():
        server._process.kill()
        server._process.wait()
    assert not server._running()
    jobs_starting.send(sender=None, queues=["llm", "summaries"])
    assert not server._running()  # nothing to warm for these queues
    jobs_starting.send(sender=None, queues=["ingest"])
    assert server._running()
    started = time.monotonic()
    assert sandbox.run("test.echo", 1, budget=budget()).value == 1
    assert time.monotonic() - started < 1.0  # a fork, not an interpreter and Django starting


def test_a_dead_server_is_replaced():
    sandbox.warm()
    sandbox._server._process.kill()
    sandbox._server._process.wait()
    assert sandbox.run("test.echo", "again", budget=budget()).value == "again"


def test_readers_do_not_share_state():
    first = sandbox.run("test.remember", "tenant A's secret", budget=budget()).value
    second = sandbox.run("test.remember", "tenant B", budget=budget()).value
    assert first == ["tenant A's secret"] and second == ["tenant B"]
