"""A loopback OpenAI-compatible chat-completions server for the tests.

It speaks the real protocol (POST /v1/chat/completions, JSON in and out,
`usage`, error bodies) and can be scripted to fail the way real servers do:
429 with Retry-After, 5xx, hanging past the client's timeout, garbage bodies.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: a normal completion
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until released (or the client gives up)


class FakeLLM:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.arrived = threading.Condition(self.lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeLLM:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.requests.clear()
        self.release.clear()

    def then(self, *replies: Reply) -> FakeLLM:
        with self.lock:
            self.script.extend(replies)
        return self

    def wait_for_requests(self, count: int, timeout: float = 20.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)

    def _next(self, request: dict) -> Reply:
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()
            return self.script.pop(0) if self.script else Reply()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {"_invalid": raw[:100].decode("latin-1")}
                request["_auth"] = self.headers.get("Authorization")
                request["_path"] = self.path
                reply = fake._next(request)
                if reply.hang:
                    fake.release.wait(timeout=30)
                body = reply.body if reply.body is not None else fake.completion(request)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of `hang`

        return Handler

    @staticmethod
    def completion(request: dict) -> bytes:
        messages = request.get("messages") or [{}]
        prompt = str(messages[-1].get("content", ""))
        words = prompt.split()
        text = "Summary: " + " ".join(words[-12:])
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": request.get("model", "fake-model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(words), "completion_tokens": len(text.split()), "total_tokens": 0},
            }
        ).encode()
