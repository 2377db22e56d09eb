"""Retry policy shared by every connector.

One retry layer only (no urllib3 or requests retries underneath): connectors classify a
failed call into `TransientError` (429, 5xx, timeouts, dropped connections) or let a
permanent error through, and `call_with_retry` waits and tries again, honouring the
server's Retry-After when it gives one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: HTTP statuses worth trying again: rate limited or a server-side failure.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """A call that failed in a way that may succeed if tried again later."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetriesExhausted(Exception):
    """A transient failure that persisted through every attempt."""


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), or None if absent/invalid."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


class RetryPolicy:
    """Exponential backoff with jitter, never shorter than the server's Retry-After."""

    def __init__(self, attempts: int = 6, initial: float = 0.5, maximum: float = 30.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.attempts = attempts
        self.initial = initial
        self.maximum = maximum
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def _wait(self, state: RetryCallState) -> float:
        backoff: float = self._backoff(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return max(backoff, min(error.retry_after, self.maximum * 4))
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning("api.retry", attempt=state.attempt_number,
                    status=getattr(error, "status", None),
                    wait_seconds=round(state.upcoming_sleep, 3))

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying TransientError; raise RetriesExhausted when it persists."""
        kwargs: dict[str, object] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
            **kwargs,  # type: ignore[arg-type]
        )
        try:
            return retrying(fn)
        except TransientError as error:
            raise RetriesExhausted(
                f"gave up after {self.attempts} attempts: {error}") from error


DEFAULT_POLICY = RetryPolicy()
