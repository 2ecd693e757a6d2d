"""Process plumbing of bench/websocket.py: child processes that are always stopped,
free loopback ports, /proc readings (CPU time, RSS) and the client-process driver."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, free_port  # noqa: F401 - free_port is part of this module's API

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU % of one core of each process over the same window."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {name: 100 * (cpu_seconds(pid) - before[name]) / wall for name, pid in pids.items()}


class Processes:
    """Children started here, stopped (TERM, then KILL) on exit, newest first."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        kwargs.setdefault("stdout", log)
        kwargs.setdefault("cwd", ROOT)
        proc = subprocess.Popen(args, env=env, stderr=log, start_new_session=True, **kwargs)
        proc._bench_log = log  # type: ignore[attr-defined]
        self.children.append((name, proc))
        return proc

    def check(self) -> None:
        """Raise if a child has exited."""
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")

    def log_tail(self, name: str, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        return ""

    def stop_all(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            with contextlib.suppress(OSError):
                proc._bench_log.close()  # type: ignore[attr-defined]
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream:
                        stream.close()
        self.children.clear()


class Client:
    """One bench._ws_client process, driven by JSON lines."""

    def __init__(self, procs: Processes, name: str, env: dict):
        self.name = name
        self.proc = procs.start(
            name,
            [sys.executable, "-m", "bench._ws_client"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        self.procs = procs
        ready = self.read(timeout=30)
        assert ready.get("ready"), ready

    def send(self, command: dict) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"{self.name}: no answer within {timeout:.0f} s; log: {self.procs.log_tail(self.name)}")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited; log: {self.procs.log_tail(self.name)}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer


def ask_all(clients: list[Client], commands: list[dict], timeout: float) -> list[dict]:
    """Send each client its command, then collect the answers (the clients work in parallel)."""
    for client, command in zip(clients, commands, strict=True):
        client.send(command)
    return [client.read(timeout) for client in clients]
