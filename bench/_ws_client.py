"""A client process of bench/websocket.py: holds many WebSocket connections, timestamps
every message on arrival, and answers the orchestrator over stdin/stdout (JSON lines).

    python -m bench._ws_client

Commands (one JSON object per line on stdin; one JSON answer per line on stdout):
- {"cmd": "connect", "target": T, "sockets": [{"url", "org", "protocols"?}], "concurrency": n}
  → {"connected", "failed", "errors", "seconds"}
- {"cmd": "wait", "target": T, "key": K, "timeout": s}: wait until every socket of T got the
  message whose data.bench_key is K (or the timeout; closed sockets are not waited for)
  → {"latencies_ms": {org: [...]}, "missing",
  "cross_org", "unexpected", "closed", "unexpected_samples"}; the latency of a socket is its
  arrival time minus data.t0 (both `time.monotonic()`, one clock for all processes of the machine)
- {"cmd": "close", "target": T} → {"closed"}
- {"cmd": "quit"}

Messages are never parsed before they are timestamped. No client keepalive pings and no
compression (daphne negotiates none; the baseline is told not to either).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import resource
import sys
import time

from websockets.asyncio.client import connect


class Sock:
    __slots__ = ("arrivals", "close_code", "cross_org", "done", "org", "samples", "task", "unexpected", "ws")

    def __init__(self, org: str):
        self.org = org
        self.ws = None
        self.task = None
        self.done = False
        self.arrivals: dict[str, float] = {}  # bench_key -> latency (ms)
        self.cross_org = 0
        self.unexpected = 0
        self.samples: list[str] = []
        self.close_code = None


class Target:
    def __init__(self):
        self.socks: list[Sock] = []
        self.open = 0
        self.counts: collections.Counter = collections.Counter()
        self.waiters: dict[str, asyncio.Event] = {}

    def check(self, key: str) -> None:
        """Wake the waiter of `key` once every socket still open has it (closed ones never will)."""
        if (
            key in self.waiters
            and self.counts[key] >= self.open
            and all(key in s.arrivals for s in self.socks if s.task is not None and not s.done)
        ):
            self.waiters[key].set()


targets: dict[str, Target] = collections.defaultdict(Target)


async def reader(target: Target, sock: Sock) -> None:
    try:
        async for raw in sock.ws:
            arrived = time.monotonic()
            try:
                message = json.loads(raw)
                data = message.get("data") or {}
                key = data.get("bench_key")
            except (ValueError, AttributeError):
                message, data, key = None, {}, None
            if message is None or key is None:
                sock.unexpected += 1
                if len(sock.samples) < 3:
                    sock.samples.append(str(raw)[:200])
                continue
            if message.get("org_id") != sock.org or data.get("org") != sock.org:
                sock.cross_org += 1
                continue
            if key not in sock.arrivals:
                sock.arrivals[key] = (arrived - float(data["t0"])) * 1000
                target.counts[key] += 1
                target.check(key)
    except Exception:
        pass
    finally:
        sock.close_code = getattr(sock.ws, "close_code", None)
        sock.done = True
        target.open -= 1
        for key in list(target.waiters):
            target.check(key)


async def open_one(target: Target, spec: dict, errors: list[str]) -> bool:
    sock = Sock(spec["org"])
    try:
        sock.ws = await connect(
            spec["url"],
            subprotocols=spec.get("protocols") or None,
            compression=None,
            proxy=None,
            ping_interval=None,
            open_timeout=30,
            close_timeout=5,
            max_queue=None,
        )
    except Exception as error:
        if len(errors) < 5:
            errors.append(f"{type(error).__name__}: {error}"[:300])
        return False
    target.socks.append(sock)
    target.open += 1
    sock.task = asyncio.create_task(reader(target, sock))
    return True


async def do_connect(command: dict) -> dict:
    target = targets[command["target"]]
    gate = asyncio.Semaphore(command.get("concurrency", 50))
    errors: list[str] = []

    async def guarded(spec):
        async with gate:
            return await open_one(target, spec, errors)

    started = time.monotonic()
    results = await asyncio.gather(*(guarded(spec) for spec in command["sockets"]))
    return {
        "connected": sum(results),
        "failed": len(results) - sum(results),
        "errors": errors,
        "seconds": time.monotonic() - started,
    }


async def do_wait(command: dict) -> dict:
    target = targets[command["target"]]
    key = command["key"]
    event = target.waiters.setdefault(key, asyncio.Event())
    target.check(key)
    if not event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), command.get("timeout", 10))
    target.waiters.pop(key, None)
    latencies = [s.arrivals[key] for s in target.socks if key in s.arrivals]
    by_org: dict[str, list[float]] = collections.defaultdict(list)
    for s in target.socks:
        if key in s.arrivals:
            by_org[s.org].append(round(s.arrivals[key], 3))
    samples = [x for s in target.socks for x in s.samples][:3]
    return {
        "sockets": len(target.socks),
        "latencies_ms": by_org,
        "missing": len(target.socks) - len(latencies),
        "missing_by_org": dict(collections.Counter(s.org for s in target.socks if key not in s.arrivals)),
        "cross_org": sum(s.cross_org for s in target.socks),
        "unexpected": sum(s.unexpected for s in target.socks),
        "unexpected_samples": samples,
        "closed": sum(1 for s in target.socks if s.done),
        "close_codes": sorted({str(s.close_code) for s in target.socks if s.done}),
    }


async def do_close(command: dict) -> dict:
    target = targets.pop(command["target"], None)
    if target is None:
        return {"closed": 0}
    gate = asyncio.Semaphore(100)

    async def close_one(sock: Sock):
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sock.ws.close(), 10)
            sock.task.cancel()

    await asyncio.gather(*(close_one(s) for s in target.socks))
    return {"closed": len(target.socks)}


async def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    handlers = {"connect": do_connect, "wait": do_wait, "close": do_close}
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await stdin.readline()
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            answer = await handlers[command["cmd"]](command)
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    for name in list(targets):
        await do_close({"target": name})


if __name__ == "__main__":
    asyncio.run(main())
