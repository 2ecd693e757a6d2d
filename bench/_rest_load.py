"""Load tools for the REST benchmarks: server processes, wrk (closed loop) and a small
open-loop HTTP client (fixed arrival rate), all on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.common import ROOT, free_port  # noqa: F401 - free_port is part of this module's API

VENV_BIN = ROOT / ".venv" / "bin"


class Server:
    """A server child process in its own session; stopped (TERM, then KILL) on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, probe: str = "/"):
        self.name, self.argv, self.env, self.port, self.probe = name, argv, env, port, probe
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / f"precis-bench-{name}-{port}.log"

    def __enter__(self) -> Server:
        env = dict(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PGAPPNAME"] = self.name  # libpq: tells this server's connections apart in pg_stat_activity
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.probe}", timeout=2).read()
                return self
            except urllib.error.HTTPError:
                return self  # answering, whatever the status
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start on port {self.port}: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (and its reaped children)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(int(x) for x in fields[11:15]) / ticks


# --- wrk (closed loop) -------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(url: str, token: str, seconds: float, connections: int, threads: int = 1) -> dict:
    """Closed loop: `connections` connections each send the next request as soon as the
    previous answer arrives. Returns requests/s, latency p50/p99 (ms), errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer {token}"\n')
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {
        "rps": rps,
        "p50_ms": _ms(dist.get("50", "nan")),
        "p99_ms": _ms(dist.get("99", "nan")),
        "requests": requests,
        "errors": errors,
    }


# --- open loop (fixed arrival rate) ------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body)
            body += chunk[:-2]
    return status, await reader.read()


async def _open_loop(host: str, port: int, path: str, token: str, rate: float, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    state = {"opened": 0, "errors": 0}
    latencies: list[float] = []

    async def connect():
        state["opened"] += 1
        return await asyncio.open_connection(host, port)

    for _ in range(2):
        idle.append(await connect())

    async def one(scheduled: float) -> None:
        conn = idle.pop() if idle else await connect()
        try:
            conn[1].write(request)
            status, _body = await asyncio.wait_for(_read_response(conn[0]), timeout=10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            state["errors"] += 1
            conn[1].close()
            return
        latencies.append((loop.time() - scheduled) * 1000)
        if status != 200:
            state["errors"] += 1
        idle.append(conn)

    count = max(1, int(rate * seconds))
    start = loop.time() + 0.05
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    return {"latencies_ms": latencies, "errors": state["errors"], "connections": state["opened"]}


def open_loop(port: int, path: str, token: str, rate: float, seconds: float) -> dict:
    """Requests sent at a fixed rate whatever the answers do (one more connection when
    all are busy); latency from the *scheduled* send time to the last byte, so a slow
    answer delays nothing else (no coordinated omission)."""
    return asyncio.run(_open_loop("127.0.0.1", port, path, token, rate, seconds))


class ConnectionSampler:
    """Samples the PostgreSQL backends connected to `database`, per application_name
    (servers started by `Server` set PGAPPNAME to their name); keeps the maximum of each."""

    def __init__(self, database: str, every: float = 0.25):
        import threading

        self.database, self.every = database, every
        self.max: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY 1",
                    [self.database],
                ).fetchall()
                for name, count in rows:
                    self.max[name] = max(self.max.get(name, 0), count)
                self._stop.wait(self.every)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
