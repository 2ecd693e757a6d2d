"""Reading a streamed chat completion: server-sent events of `chat.completion.chunk` objects.

With `"stream": true` an OpenAI-compatible server answers `text/event-stream`:
`data: {chunk}` events, each with the next piece of the answer in
`choices[0].delta.content`, a last piece with `finish_reason`, then (asked for with
`stream_options.include_usage`) a chunk with `usage` and no choices, then `data: [DONE]`.

The answer is complete once `[DONE]` or a `finish_reason` arrived; a connection that
closes before that, or a chunk that is not that JSON, is a broken stream
(`LLMStreamBroken`: transient, the call is retried and the half answer dropped). No
bytes for the read timeout between two chunks is an `LLMTimeout`, as for an answer
that does not come at all. After the `finish_reason` only the usage is still to come:
a connection lost then costs the usage (estimated instead), not the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError

from .base import LLMStreamBroken, LLMTimeout

READ_SIZE = 8192


@dataclass
class StreamedAnswer:
    parts: list[str] = field(default_factory=list)
    model: str | None = None
    usage: dict = field(default_factory=dict)  # the server's last `usage`, if it sent one
    finished: bool = False  # a finish_reason or [DONE] arrived

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: dict) -> bool:
        """Take one chunk; True if it added to the text."""
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(choice, dict) for choice in choices):
            raise LLMStreamBroken("The LLM server streamed a chunk that is not a chat completion chunk.")
        if not choices:
            return False  # the usage chunk
        if choices[0].get("finish_reason"):
            self.finished = True
        delta = choices[0].get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise LLMStreamBroken("The LLM server streamed a chunk that is not a chat completion chunk.")
        if not content:
            return False
        self.parts.append(content)
        return True


def read_answer(
    response: requests.Response, on_delta: Callable[[str], None] | None, *, timeout_s: float
) -> StreamedAnswer:
    """Read the whole stream, calling `on_delta(text so far)` whenever the text grew."""
    answer = StreamedAnswer()
    try:
        for data in _event_data(_arriving(response)):
            if data == "[DONE]":
                answer.finished = True
                break
            if answer.add(_chunk(data)) and on_delta is not None:
                on_delta(answer.text.strip())
    except ReadTimeoutError:
        if not answer.finished:
            raise LLMTimeout(f"The LLM sent nothing for {timeout_s:g} s in the middle of its answer.") from None
    except (TransportError, OSError) as exc:
        if not answer.finished:
            raise LLMStreamBroken(f"The LLM's streamed answer broke off ({exc.__class__.__name__}).") from None
    if not answer.finished:
        raise LLMStreamBroken("The LLM's streamed answer ended before it was complete.")
    return answer


def _arriving(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives. `read1` returns what the connection has, chunked transfer
    encoding or not (iter_content waits for a full buffer on a body without it)."""
    while data := response.raw.read1(READ_SIZE, decode_content=True):
        yield data


def _event_data(arriving: Iterator[bytes]) -> Iterator[str]:
    """The `data` of each server-sent event (its `data:` lines joined, as the spec says);
    comments (`: keep-alive`), `event:`/`id:`/`retry:` fields and blank events are skipped.
    A last event without its closing blank line still counts."""
    buffer = b""
    lines: list[str] = []
    for data in arriving:
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            line = _decode(raw.rstrip(b"\r"))
            if line:
                if line.startswith("data:"):
                    lines.append(line[5:].removeprefix(" "))
            elif lines:
                yield "\n".join(lines)
                lines = []
    last = _decode(buffer.rstrip(b"\r"))
    if last.startswith("data:"):
        lines.append(last[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LLMStreamBroken("The LLM server streamed bytes that are not UTF-8.") from None


def _chunk(data: str) -> dict:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LLMStreamBroken("The LLM server streamed a chunk that is not JSON.") from None
    if not isinstance(chunk, dict):
        raise LLMStreamBroken("The LLM server streamed a chunk that is not a chat completion chunk.")
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise LLMStreamBroken(f"The LLM server failed in the middle of its answer: {str(message)[:300]}")
    return chunk
