"""A rate limiter shared by every worker through Redis: per provider and per org.

LLM_RATE_LIMIT_RPM caps calls per minute to a provider across all workers (so
Precis stays under the provider's own limits); LLM_ORG_RATE_LIMIT_RPM caps one
organization's share of it, so one org's burst cannot starve the others. Both
counters are checked and taken together in one Lua script (fixed one-minute
windows). A caller waits for a slot up to LLM_RATE_LIMIT_MAX_WAIT_S, then the
job is retried later (`llm_rate_limited`, transient). 0 disables a limit.
The embedded mode (no Redis) keeps the same counters in process memory.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from .base import LLMRateLimited

_SCRIPT = """
local now_ms = tonumber(ARGV[1])
local window_ms = 60000
local window = math.floor(now_ms / window_ms)
local wait_ms = window_ms - (now_ms % window_ms)
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 then
    local used = tonumber(redis.call('GET', key .. ':' .. window) or '0')
    if used >= limit then return wait_ms end
  end
end
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 then
    local k = key .. ':' .. window
    redis.call('INCR', k)
    redis.call('PEXPIRE', k, window_ms * 2)
  end
end
return 0
"""

_client = None
_script = None
_local_lock = threading.Lock()
_local_counts: dict[str, int] = {}


def _redis_try(keys: list[str], limits: list[int], now_ms: int) -> int:
    global _client, _script
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _script = _client.register_script(_SCRIPT)
    return int(_script(keys=keys, args=[now_ms, *limits]))


def _local_try(keys: list[str], limits: list[int], now_ms: int) -> int:
    window = now_ms // 60000
    wait_ms = 60000 - now_ms % 60000
    with _local_lock:
        if any(
            limit > 0 and _local_counts.get(f"{k}:{window}", 0) >= limit for k, limit in zip(keys, limits, strict=True)
        ):
            return wait_ms
        for key, limit in zip(keys, limits, strict=True):
            if limit > 0:
                _local_counts[f"{key}:{window}"] = _local_counts.get(f"{key}:{window}", 0) + 1
    return 0


def acquire_llm_slot(*, provider: str, org_id: str | None) -> None:
    """Block until both the provider's and the org's minute budgets allow one more call."""
    provider_limit = settings.LLM_RATE_LIMIT_RPM
    org_limit = settings.LLM_ORG_RATE_LIMIT_RPM if org_id else 0
    if provider_limit <= 0 and org_limit <= 0:
        return
    keys = [f"precis:llm-rate:{provider}", f"precis:llm-rate:{provider}:org:{org_id}"]
    limits = [provider_limit, org_limit]
    try_once = _local_try if settings.EMBEDDED else _redis_try
    deadline = time.monotonic() + settings.LLM_RATE_LIMIT_MAX_WAIT_S
    while True:
        wait_ms = try_once(keys, limits, int(time.time() * 1000))
        if wait_ms == 0:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LLMRateLimited(
                "Precis' own LLM rate limit is reached for now; the job will be retried.", retry_after=wait_ms / 1000
            )
        time.sleep(min(wait_ms / 1000, remaining, 1.0))
