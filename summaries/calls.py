"""One job's LLM calls: one retry budget for all of them, its deadline, its cancellation.

A provider's `summarize()` makes exactly one call. `JobCalls.call()` retries transient
failures (429, 5xx, timeouts, connection errors) from a budget shared by every call of
the job and every attempt of it (LLM_MAX_RETRIES in all, kept on the job row), so a
provider that keeps failing sees at most LLM_MAX_RETRIES + 1 failed calls per job — a
map-reduce job's parallel map steps included. A 429 pauses every worker through the
shared limiter, so the retry waits for the pause, not for a backoff of its own; other
failures back off 0.5 s, 1 s, 2 s... A wait longer than LLM_RATE_LIMIT_MAX_WAIT_S gives
the worker's slot back instead (`RetryLater`): the job waits in the queue and another
attempt continues with the budget that is left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings

from jobs.services import JobTimedOut

from . import formats
from .providers.base import Completion, LLMError, Provider, SummarizeOptions
from .providers.tokens import estimate_tokens
from .summarizer import Cancelled
from .usage import Meter

MAX_BACKOFF_S = 10.0


class RetryLater(Exception):
    """Give the slot back and run the job again after `delay_s` (no budget spent for it)."""

    def __init__(self, error: LLMError, delay_s: float):
        super().__init__(error.detail)
        self.error = error
        self.delay_s = delay_s


class RetriesSpent(Exception):
    """The job's retry budget is spent: it fails with the last error."""

    def __init__(self, error: LLMError, retries: int):
        super().__init__(error.detail)
        self.error = error
        self.detail = f"{error.detail} Gave up after {retries} retr{'y' if retries == 1 else 'ies'}."


class JobCalls:
    """The calls of one attempt of one job (shared by its map steps' threads)."""

    def __init__(
        self,
        provider: Provider,
        *,
        retries_used: int = 0,
        deadline: float | None = None,
        alive: Callable[[], bool] = lambda: True,
        sleep: Callable[[float], None] = time.sleep,
        meter: Meter | None = None,
    ):
        self.provider = provider
        self.meter = meter
        self.retries_used = retries_used
        self.deadline = deadline
        self.alive = alive
        self._sleep = sleep
        self._lock = threading.Lock()

    def call(self, prompt: str, options: SummarizeOptions) -> Completion:
        failures = 0
        while True:
            self._check()
            try:
                return self._metered(prompt, options)
            except LLMError as error:
                if error.booked_out:
                    raise RetryLater(error, error.retry_after or 1.0) from error
                if not error.transient:
                    raise
                failures += 1
                delay = self._spend(error, failures)
                if delay > settings.LLM_RATE_LIMIT_MAX_WAIT_S:
                    raise RetryLater(error, delay) from error
            self._wait(delay)

    def _metered(self, prompt: str, options: SummarizeOptions) -> Completion:
        """One call, booked on the budgets before it is made and recorded as it went
        (summaries.usage; BudgetExceeded when the budget has no room for it)."""
        if self.meter is None:
            return self.provider.summarize(prompt, options)
        model = self.provider.model_for(options) if hasattr(self.provider, "model_for") else ""
        booked = estimate_tokens(prompt) + formats.max_tokens(options.format, options.max_words, cite=options.cite)
        reservation = self.meter.reserve(booked, model)
        started = time.monotonic()
        outcome, completion = "error", None
        try:
            completion = self.provider.summarize(prompt, options)
            outcome = "ok"
            return completion
        except LLMError as error:
            outcome = error.code
            raise
        finally:
            self.meter.record(
                reservation,
                model=(completion.model if completion else "") or model,
                stage=options.stage,
                prompt_tokens=completion.prompt_tokens if completion else 0,
                completion_tokens=completion.completion_tokens if completion else 0,
                latency_ms=int((time.monotonic() - started) * 1000),
                outcome=outcome,
                requested_model=model,
            )

    def _spend(self, error: LLMError, failures: int) -> float:
        """Take one retry from the budget; return how long to wait before it."""
        with self._lock:
            if self.retries_used >= settings.LLM_MAX_RETRIES:
                raise RetriesSpent(error, self.retries_used) from error
            self.retries_used += 1
        if error.code == "llm_rate_limited":
            return 0.0  # the limiter now holds every caller until the server's Retry-After
        if error.retry_after is not None:
            return error.retry_after
        return min(MAX_BACKOFF_S, 0.5 * 2 ** (failures - 1))

    def _check(self) -> None:
        if not self.alive():
            raise Cancelled()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobTimedOut()

    def _wait(self, seconds: float) -> None:
        """Sleep, but notice a cancellation or the deadline within a second."""
        while seconds > 0:
            self._check()
            step = min(seconds, 1.0)
            self._sleep(step)
            seconds -= step
