"""The bare baseline of bench/websocket.py: a plain `websockets` broadcast server.

    python -m bench._ws_baseline --port PORT

- `ws://127.0.0.1:PORT/org/<org_id>`: a subscriber; the socket is kept in its org's set,
  anything it sends is ignored;
- `ws://127.0.0.1:PORT/trigger`: the control connection; each text message is JSON
  `{"org": "<org_id>", "message": "<text>"}` and `message` is broadcast, as is, to every
  socket of that org (`websockets.broadcast`: written to each socket, no per-socket work).

No authentication, no channel layer, no database: what a WebSocket fan-out costs at the
least in Python on this machine. Keepalive pings like daphne's (every 20 s). Prints
`READY <port>` once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys

from websockets.asyncio.server import broadcast, serve


async def main(port: int) -> None:
    orgs: dict[str, set] = collections.defaultdict(set)

    async def handler(ws):
        path = ws.request.path
        if path == "/trigger":
            async for raw in ws:
                command = json.loads(raw)
                broadcast(orgs.get(command["org"], ()), command["message"])
            return
        if path.startswith("/org/"):
            members = orgs[path[len("/org/") :].strip("/")]
            members.add(ws)
            try:
                await ws.wait_closed()
            finally:
                members.discard(ws)
            return
        await ws.close(code=4404, reason="unknown path")

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(handler, "127.0.0.1", port, ping_interval=20, ping_timeout=30, max_queue=16, backlog=1024):
        print(f"READY {port}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args(sys.argv[1:]).port))
