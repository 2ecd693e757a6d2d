"""A loopback OpenAI-compatible chat-completions server for the tests.

It speaks the real protocol (POST /v1/chat/completions, JSON in and out,
`usage`, error bodies) and can be scripted to fail the way real servers do:
429 with Retry-After, 5xx, hanging past the client's timeout, garbage bodies.
Like a real provider it can take its time (`latency`: seconds, or a function
giving them) and enforce a hard limit of requests per sliding 60 s window
(`limit_rpm`: 429 with Retry-After above it, and OpenAI's x-ratelimit-*
headers on every answer when `send_limit_headers`). It records when each
request arrived and how many were in flight at most. 127.0.0.1 only.

A request with `"stream": true` is answered as real servers do: server-sent events
over chunked transfer encoding, one `chat.completion.chunk` per word of the answer,
`stream_pace` seconds apart (some events split across two writes, as TCP may split
them), the usage chunk when `stream_options.include_usage` asks for it, then
`data: [DONE]`. A `Reply` (or `break_streams_after` for every stream) can break the
stream off, send a garbage chunk, or stall mid-answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: a normal completion
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until released (or the client gives up)
    # Streamed answers (the request asked for "stream": true):
    stream: bool | None = None  # None: as the request asks; False: answer in one piece anyway
    break_after: int | None = None  # close the connection after this many pieces of the answer
    garbage_after: int | None = None  # send a chunk that is not JSON after this many pieces
    stall_after: int | None = None  # send nothing more after this many pieces (until released)
    usage: dict | None = None  # the usage chunk's numbers (default: words counted)
    send_usage: bool = True  # send the usage chunk when the request asks for it
    send_done: bool = True  # end with `data: [DONE]` (else just the finish_reason chunk)


class FakeLLM:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.arrived = threading.Condition(self.lock)
        self.latency: float | Callable[[], float] = 0.0
        self.limit_rpm: int | None = None
        self.send_limit_headers = False
        self.arrivals: list[float] = []  # time.time() of every request
        self.refused: list[float] = []  # ...of those answered 429 for the limit
        self.in_flight = 0
        self.peak_in_flight = 0
        self.stream_pace = 0.02  # seconds between two streamed pieces
        self.break_streams_after: int | None = None  # break every stream off after this many pieces
        self._window: deque[float] = deque()  # accepted requests of the last 60 s
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
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
            self.arrivals.clear()
            self.refused.clear()
            self._window.clear()
            self.latency = 0.0
            self.limit_rpm = None
            self.send_limit_headers = False
            self.peak_in_flight = self.in_flight
            self.stream_pace = 0.02
            self.break_streams_after = None
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
            now = time.time()
            self.requests.append(request)
            self.arrivals.append(now)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.arrived.notify_all()
            if self.limit_rpm:
                while self._window and self._window[0] <= now - 60:
                    self._window.popleft()
                if len(self._window) >= self.limit_rpm:
                    self.refused.append(now)
                    wait = max(1, int(self._window[0] + 60 - now + 0.999))
                    return Reply(
                        status=429,
                        body=b'{"error": {"message": "Rate limit reached"}}',
                        headers={"Retry-After": str(wait), **self._limit_headers(now)},
                    )
                self._window.append(now)
            reply = self.script.pop(0) if self.script else Reply()
            if self.send_limit_headers:
                reply = replace(reply, headers={**self._limit_headers(now), **reply.headers})
            return reply

    def _limit_headers(self, now: float) -> dict[str, str]:
        if not (self.limit_rpm and self.send_limit_headers):
            return {}
        reset = (self._window[0] + 60 - now) if self._window else 0.0
        return {
            "x-ratelimit-limit-requests": str(self.limit_rpm),
            "x-ratelimit-remaining-requests": str(max(0, self.limit_rpm - len(self._window))),
            "x-ratelimit-reset-requests": f"{max(reset, 0.0):.3f}s",
        }

    def _done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def _delay(self) -> float:
        latency = self.latency
        return latency() if callable(latency) else latency

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
                try:
                    if reply.hang:
                        fake.release.wait(timeout=30)
                    elif reply.status != 429 and (delay := fake._delay()) > 0:
                        time.sleep(delay)
                    if fake._streams(request, reply):
                        fake._stream(self, request, reply)
                        return
                    body = reply.body if reply.body is not None else fake.completion(request)
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of `hang`
                finally:
                    fake._done()

        return Handler

    @staticmethod
    def answer(request: dict) -> str:
        """The text this server answers `request` with (streamed or not)."""
        messages = request.get("messages") or [{}]
        words = str(messages[-1].get("content", "")).split()
        return "Summary: " + " ".join(words[-12:])

    @staticmethod
    def completion(request: dict) -> bytes:
        messages = request.get("messages") or [{}]
        prompt = str(messages[-1].get("content", ""))
        words = prompt.split()
        text = FakeLLM.answer(request)
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": request.get("model", "fake-model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(words), "completion_tokens": len(text.split()), "total_tokens": 0},
            }
        ).encode()

    # -- streamed answers -------------------------------------------------------------------
    def _streams(self, request: dict, reply: Reply) -> bool:
        wanted = reply.stream if reply.stream is not None else bool(request.get("stream"))
        return wanted and reply.status == 200 and reply.body is None and not reply.hang

    def _stream(self, handler: BaseHTTPRequestHandler, request: dict, reply: Reply) -> None:
        """Server-sent events over chunked transfer encoding (HTTP/1.1), then the connection
        is closed; a broken stream is a connection closed without the terminating chunk."""
        handler.protocol_version = "HTTP/1.1"
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        model = request.get("model", "fake-model")
        text = self.answer(request)
        pieces = [word if i == 0 else f" {word}" for i, word in enumerate(text.split(" "))]
        break_after = reply.break_after if reply.break_after is not None else self.break_streams_after
        self._send_event(handler, self._chunk(model, {"role": "assistant", "content": ""}))
        for sent, piece in enumerate(pieces):
            if sent == break_after:
                return
            if sent == reply.garbage_after:
                self._send_event(handler, '{"id": "chatcmpl-test", "choices": [{"delta": {"content": "ha')
            if sent == reply.stall_after:
                self.release.wait(timeout=30)
                return
            time.sleep(self.stream_pace)
            self._send_event(handler, self._chunk(model, {"content": piece}), split=sent % 2 == 1)
        self._send_event(handler, self._chunk(model, {}, finish_reason="stop"))
        if reply.send_usage and (request.get("stream_options") or {}).get("include_usage"):
            words = len(str((request.get("messages") or [{}])[-1].get("content", "")).split())
            usage = reply.usage or {"prompt_tokens": words, "completion_tokens": len(pieces)}
            usage = {**usage, "total_tokens": sum(usage.values())}
            self._send_event(
                handler,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": usage,
                },
            )
        if reply.send_done:
            self._send_event(handler, "[DONE]")
        self._write_chunk(handler, b"")  # the terminating chunk: the answer is whole

    @staticmethod
    def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def _send_event(self, handler: BaseHTTPRequestHandler, data: dict | str, *, split: bool = False) -> None:
        event = f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
        if not split:
            self._write_chunk(handler, event)
            return
        middle = len(event) // 2
        self._write_chunk(handler, event[:middle])
        time.sleep(0.002)
        self._write_chunk(handler, event[middle:])

    @staticmethod
    def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()
