"""The LLM limiter: requests and tokens per minute, per provider and model, shared by every
worker through Redis (in process memory in the embedded mode).

Each call *reserves* its turn before it is sent, on a token bucket per provider and model
for requests and one for tokens (and one per organization when LLM_ORG_RATE_LIMIT_RPM is
set), kept as GCRA arrival times: a caller learns at once when it may send and sleeps
until then, with no polling and first come, first served. A bucket holds one second's
worth and refills at the limit minus that, so no 60 s window ever sees more than the
limit, and bursts stay small.

The limit of a bucket is the smallest of what is known:
- configured: LLM_RATE_LIMIT_RPM / LLM_RATE_LIMIT_TPM (0: not configured);
- learned from the server's `x-ratelimit-limit-requests` / `-tokens` headers (OpenAI,
  Azure, vLLM and others send them), while `x-ratelimit-remaining-*` at zero pauses every
  worker until the matching `x-ratelimit-reset-*`;
- adapted after a 429: every worker pauses for the `Retry-After` (or 1 s, 2 s, 4 s, ...
  for 429s in a row), and the request rate drops to 70% of what was being sent; it then
  recovers by 10% every 10 s without a 429 (additive increase would take far longer).

A token reservation is the prompt's estimate plus the answer's `max_tokens`, settled to
the real usage once the answer is in. The scheduler asks `room()` before handing out
LLM jobs, so work waits in the fair queue rather than in a limiter line. While nothing is
known about a model (no configuration, no answer yet) the scheduler hands out one job
only: its answer's headers tell the limit before a burst can overrun it.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from django.conf import settings

T = TypeVar("T")

WINDOW_MS = 60_000.0
OBSERVE_MS = 1_000.0  # call counts are kept per second over the last minute, for the adapted rate
ADAPT_DOWN = 0.7
ADAPT_UP = 1.1  # per RECOVER_MS without a 429
RECOVER_MS = 10_000.0
ADAPT_MIN_GAP_MS = 2_000.0  # 429s of one burst lower the rate once
MAX_COOLDOWN_MS = 60_000.0
STATE_TTL_MS = 3_600_000


@dataclass(frozen=True)
class Reservation:
    """A booked turn: send at `start` (ms, the limiter's clock); `tokens` were booked."""

    provider: str
    model: str
    org_id: str | None
    tokens: int
    start_ms: float
    now_ms: float

    @property
    def wait_s(self) -> float:
        return max(0.0, (self.start_ms - self.now_ms) / 1000.0)


class RateLimitWait(Exception):
    """The turn is further away than the caller may wait."""

    def __init__(self, wait_s: float):
        super().__init__(f"next turn in {wait_s:.1f} s")
        self.wait_s = wait_s


# -- storage: one algorithm, two places to keep its state -------------------------------------
class _MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, float]] = {}

    def update(self, keys: list[str], fn: Callable[[list[dict], float], tuple[list[dict] | None, T]]) -> T:
        with self._lock:
            states = [dict(self._data.get(key, {})) for key in keys]
            new, result = fn(states, time.time() * 1000.0)
            if new is not None:
                for key, state in zip(keys, new, strict=True):
                    self._data[key] = state
            return result

    def read(self, keys: list[str]) -> tuple[list[dict], float]:
        with self._lock:
            return [dict(self._data.get(key, {})) for key in keys], time.time() * 1000.0

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class _RedisStore:
    """Optimistic transactions (WATCH) on the Redis clock: every worker on every machine sees
    one state and one time. Threads of a process take turns, so only processes can conflict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def update(self, keys: list[str], fn: Callable[[list[dict], float], tuple[list[dict] | None, T]]) -> T:
        with self._lock:
            while True:
                with self._redis().pipeline() as pipe:
                    try:
                        pipe.watch(*keys)
                        seconds, micros = pipe.time()
                        states = [_decode(pipe.hgetall(key)) for key in keys]
                        new, result = fn(states, seconds * 1000.0 + micros / 1000.0)
                        if new is None:
                            pipe.unwatch()
                            return result
                        pipe.multi()
                        for key, state in zip(keys, new, strict=True):
                            pipe.delete(key)
                            if state:
                                pipe.hset(key, mapping=state)
                                pipe.pexpire(key, STATE_TTL_MS)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue

    def read(self, keys: list[str]) -> tuple[list[dict], float]:
        pipe = self._redis().pipeline(transaction=False)
        pipe.time()
        for key in keys:
            pipe.hgetall(key)
        (seconds, micros), *raw = pipe.execute()
        return [_decode(state) for state in raw], seconds * 1000.0 + micros / 1000.0


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}


_memory = _MemoryStore()
_redis_store = _RedisStore()


def _store():
    return _memory if settings.EMBEDDED else _redis_store


def reset_for_tests() -> None:
    _memory.clear()


# -- the algorithm ----------------------------------------------------------------------------
def model_key(provider: str, model: str) -> str:
    return f"precis:llm-limit:{provider}:{model}"


def org_key(org_id: str) -> str:
    return f"precis:llm-limit:org:{org_id}"


def _burst(limit: float) -> float:
    """A bucket holds about one second's worth (at least one)."""
    return max(1.0, math.floor(limit / 60.0))


def _interval(limit: float) -> float:
    """Milliseconds per unit, so that a full bucket plus its refill stays within `limit`."""
    return WINDOW_MS / max(limit - _burst(limit), 1.0)


def _recovered(state: dict, now: float) -> None:
    """An adapted rate grows back by ADAPT_UP per RECOVER_MS since its last change, and is
    dropped once it reaches a known limit."""
    adapted = state.get("ar")
    if not adapted:
        return
    steps = math.floor((now - state.get("aat", now)) / RECOVER_MS)
    if steps <= 0:
        return
    adapted *= ADAPT_UP**steps
    known = [v for v in (settings.LLM_RATE_LIMIT_RPM, state.get("lr")) if v]
    if (known and adapted >= min(known)) or adapted > 100_000:
        state.pop("ar", None)
        state.pop("aat", None)
    else:
        state["ar"] = adapted
        state["aat"] = state.get("aat", now) + steps * RECOVER_MS


def request_limit(state: dict) -> float | None:
    values = [v for v in (settings.LLM_RATE_LIMIT_RPM, state.get("lr"), state.get("ar")) if v]
    return min(values) if values else None


def token_limit(state: dict) -> float | None:
    values = [v for v in (settings.LLM_RATE_LIMIT_TPM, state.get("lt")) if v]
    return min(values) if values else None


def _book(state: dict, field: str, limit: float, cost: float, now: float, floor: float) -> float:
    """Book `cost` units on the bucket `field`; returns when the booking may start."""
    interval = _interval(limit)
    tat = max(state.get(field, 0.0), now, floor) + cost * interval
    state[field] = tat
    return max(now, floor, tat - _burst(limit) * interval)


def _observe_call(state: dict, now: float) -> None:
    second = math.floor(now / OBSERVE_MS)
    field = f"w{second}"
    state[field] = state.get(field, 0.0) + 1
    oldest = second - WINDOW_MS / OBSERVE_MS
    for key in [k for k in state if k.startswith("w") and int(k[1:]) <= oldest]:
        del state[key]


def _observed_rate(state: dict, now: float) -> float:
    """Calls per minute over the last minute, or over the part of it since calls began."""
    seconds = [int(k[1:]) for k in state if k.startswith("w")]
    if not seconds:
        return 0.0
    calls = sum(v for k, v in state.items() if k.startswith("w"))
    seen_ms = min(WINDOW_MS, max(OBSERVE_MS, now - min(seconds) * OBSERVE_MS))
    return calls * WINDOW_MS / seen_ms


def reserve(*, provider: str, model: str, org_id: str | None, tokens: int, max_wait_s: float) -> Reservation:
    """Book a turn for one call of about `tokens` tokens, or raise RateLimitWait when it is
    more than `max_wait_s` away (nothing is booked then)."""
    org_limit = settings.LLM_ORG_RATE_LIMIT_RPM if org_id else 0
    keys = [model_key(provider, model)] + ([org_key(org_id)] if org_limit else [])

    def book(states: list[dict], now: float):
        state = states[0]
        _recovered(state, now)
        floor = state.get("cool", 0.0)
        start = max(now, floor)
        rpm, tpm = request_limit(state), token_limit(state)
        if rpm:
            start = max(start, _book(state, "tr", rpm, 1, now, floor))
        if tpm:
            start = max(start, _book(state, "tt", tpm, tokens, now, floor))
        if org_limit:
            start = max(start, _book(states[1], "tr", org_limit, 1, now, 0.0))
        if start - now > max_wait_s * 1000.0:
            return None, RateLimitWait((start - now) / 1000.0)
        _observe_call(state, now)
        if not (rpm or tpm or state.get("seen")):
            state["probe"] = now  # the first call to an unknown server: room() waits for its answer
        state["avg"] = tokens if "avg" not in state else 0.9 * state["avg"] + 0.1 * tokens
        return states, Reservation(provider, model, org_id, tokens, start, now)

    result = _store().update(keys, book)
    if isinstance(result, RateLimitWait):
        raise result
    return result


def settle(
    reservation: Reservation, *, status: int | None, headers: Mapping[str, str], used_tokens: int | None
) -> None:
    """After the answer: learn from its rate-limit headers, give back booked tokens that were
    not used, and on a 429 pause everyone and lower the rate."""
    hints = _parse_headers(headers)

    def apply(states: list[dict], now: float):
        state = states[0]
        state["seen"] = 1.0
        state.pop("probe", None)
        if hints.get("limit_requests"):
            state["lr"] = hints["limit_requests"]
        if hints.get("limit_tokens"):
            state["lt"] = hints["limit_tokens"]
        tpm = token_limit(state)
        if tpm and used_tokens is not None and used_tokens < reservation.tokens and "tt" in state:
            refund = (reservation.tokens - used_tokens) * _interval(tpm)
            state["tt"] = max(now, state["tt"] - refund)
        for kind, field, limit in (("requests", "tr", request_limit(state)), ("tokens", "tt", tpm)):
            remaining = hints.get(f"remaining_{kind}")
            if remaining is None:
                continue
            if remaining <= 0:
                state["cool"] = max(state.get("cool", 0.0), now + hints.get(f"reset_{kind}", 1.0) * 1000.0)
            elif limit:
                # The server knows better (other clients may share its budget): never plan
                # on more at once than it says is left.
                interval, burst = _interval(limit), _burst(limit)
                available = (now + burst * interval - max(state.get(field, 0.0), now)) / interval
                if remaining < available:
                    state[field] = now + (burst - remaining) * interval
        if status == 429:
            strikes = state.get("strikes", 0.0) + 1
            state["strikes"] = strikes
            wait_ms = hints["retry_after"] * 1000.0 if "retry_after" in hints else 1000.0 * 2 ** (strikes - 1)
            state["cool"] = max(state.get("cool", 0.0), now + min(wait_ms, MAX_COOLDOWN_MS))
            if now - state.get("aat", 0.0) >= ADAPT_MIN_GAP_MS:
                current = [v for v in (request_limit(state), _observed_rate(state, now)) if v]
                state["ar"] = max(1.0, math.floor(ADAPT_DOWN * min(current))) if current else 1.0
                state["aat"] = now
        elif status is not None and status < 400:
            state.pop("strikes", None)
        return states, None

    _store().update([model_key(reservation.provider, reservation.model)], apply)


def room(pairs: list[tuple[str, str]], *, horizon_s: float) -> dict[tuple[str, str], int | None]:
    """How many more calls each (provider, model) could start within `horizon_s` (None: no
    known limit). The scheduler hands out no more LLM jobs than this."""
    if not pairs:
        return {}
    states, now = _store().read([model_key(p, m) for p, m in pairs])
    horizon = now + horizon_s * 1000.0
    result: dict[tuple[str, str], int | None] = {}
    for pair, state in zip(pairs, states, strict=True):
        _recovered(state, now)
        floor = max(state.get("cool", 0.0), now)
        if floor > horizon:
            result[pair] = 0
            continue
        counts = []
        rpm, tpm = request_limit(state), token_limit(state)
        if not (rpm or tpm or state.get("seen")):  # nothing known yet: one call, then its headers
            probing = now - state.get("probe", -math.inf) < settings.LLM_TIMEOUT_S * 1000.0
            result[pair] = 0 if probing else 1
            continue
        for field, limit, cost in (("tr", rpm, 1.0), ("tt", tpm, max(1.0, state.get("avg", 1.0)))):
            if limit:
                interval = _interval(limit)
                free_ms = horizon + _burst(limit) * interval - max(state.get(field, 0.0), floor)
                counts.append(max(0, math.floor(free_ms / (interval * cost))))
        result[pair] = min(counts) if counts else None
    return result


def orgs_over_rate(org_ids: list[str], *, horizon_s: float) -> set[str]:
    """Organizations whose own rate (LLM_ORG_RATE_LIMIT_RPM) is booked beyond `horizon_s`."""
    limit = settings.LLM_ORG_RATE_LIMIT_RPM
    if not limit or not org_ids:
        return set()
    states, now = _store().read([org_key(org_id) for org_id in org_ids])
    interval = _interval(limit)
    return {
        org_id
        for org_id, state in zip(org_ids, states, strict=True)
        if state.get("tr", 0.0) - _burst(limit) * interval > now + horizon_s * 1000.0
    }


# -- the servers' words -----------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """`1s`, `6m0s`, `20ms`, `0.5` (seconds) → seconds; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    import email.utils

    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def _parse_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """The rate-limit hints in a response's headers (case-insensitive mapping)."""
    hints: dict[str, Any] = {}
    for kind in ("requests", "tokens"):
        for name in ("limit", "remaining"):
            number = _number(headers.get(f"x-ratelimit-{name}-{kind}"))
            if number is not None:
                hints[f"{name}_{kind}"] = number
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
        if reset is not None:
            hints[f"reset_{kind}"] = reset
    retry_after = retry_after_seconds(headers)
    if retry_after is not None:
        hints["retry_after"] = retry_after
    return hints


# -- what the scheduler asks before handing out LLM jobs ---------------------------------------
HORIZON_S = 1.0  # hand out no more jobs than can start their call within this


def scheduler_gate(candidates: list) -> Callable[[Any], bool]:
    """jobs.scheduler gate for the `llm` queue: admit a job while its provider and model have a
    turn free within HORIZON_S and its organization is not over its own rate."""
    pairs = sorted({_pair(job.payload) for job in candidates})
    free = room(pairs, horizon_s=HORIZON_S)
    blocked = orgs_over_rate(sorted({str(job.org_id) for job in candidates}), horizon_s=HORIZON_S)

    def admit(job) -> bool:
        if str(job.org_id) in blocked:
            return False
        pair = _pair(job.payload)
        left = free.get(pair)
        if left is None:
            return True
        if left <= 0:
            return False
        free[pair] = left - 1
        return True

    return admit


def _pair(payload: dict) -> tuple[str, str]:
    provider = payload.get("provider") or settings.LLM_PROVIDER
    return provider, payload.get("model") or settings.LLM_MODEL
