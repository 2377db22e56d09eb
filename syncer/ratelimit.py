"""Retry policy shared by every connector.

One retry layer only (no urllib3 or requests retries underneath): connectors classify a
failed call into `TransientError` (429, 5xx, timeouts, dropped connections) or let a
permanent error through, and `call_with_retry` waits and tries again, honouring the
server's Retry-After when it gives one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from syncer.failures import Unreachable

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


class RetriesExhausted(Unreachable):
    """A transient failure that persisted through every attempt: the CRM is unreachable
    or overloaded for now (exit 3)."""


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

    def call(self, fn: Callable[[], T], usage: ApiUsage | None = None) -> T:
        """Run `fn`, retrying TransientError; raise RetriesExhausted when it persists.
        Each retry is counted in `usage` when given."""
        kwargs: dict[str, object] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep

        def before_sleep(state: RetryCallState) -> None:
            if usage is not None:
                usage.record_retry()
            self._before_sleep(state)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            before_sleep=before_sleep,
            reraise=True,
            **kwargs,  # type: ignore[arg-type]
        )
        try:
            return retrying(fn)
        except TransientError as error:
            raise RetriesExhausted(
                f"gave up after {self.attempts} attempts: {error}. Fix: check the network "
                "and the connector's base_url, or run again later (the CRM was down, busy "
                "or rate limiting)") from error


DEFAULT_POLICY = RetryPolicy()


class ApiUsage:
    """What one connector's API traffic looked like, for run history and metrics.

    Counts responses by HTTP status ("error" for no response at all), retries and 429s,
    and the lowest rate-limit headroom (requests left in the API's window or daily
    allocation) the responses reported. Totals only grow; `window()` opens a view that
    also tracks the lowest headroom seen while it is open (one run).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0
        self._windows: list[UsageWindow] = []

    def record_response(self, status: int | None) -> None:
        with self._lock:
            self.statuses[str(status) if status else "error"] += 1
            if status == 429:
                self.rate_limited += 1

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def record_headroom(self, remaining: int, limit: int | None) -> None:
        with self._lock:
            for window in self._windows:
                window.see_headroom(remaining, limit)

    def window(self) -> UsageWindow:
        with self._lock:
            window = UsageWindow(self, Counter(self.statuses), self.retries, self.rate_limited)
            self._windows.append(window)
            return window

    def _close(self, window: UsageWindow) -> dict[str, Any]:
        with self._lock:
            if window in self._windows:
                self._windows.remove(window)
            return {"statuses": dict(self.statuses - window.statuses_before),
                    "retries": self.retries - window.retries_before,
                    "rate_limited": self.rate_limited - window.rate_limited_before,
                    "headroom": window.headroom()}


class UsageWindow:
    """ApiUsage over one span (a run): `close()` returns what happened during it."""

    def __init__(self, usage: ApiUsage, statuses: Counter[str], retries: int,
                 rate_limited: int) -> None:
        self.usage = usage
        self.statuses_before = statuses
        self.retries_before = retries
        self.rate_limited_before = rate_limited
        self.lowest: tuple[int, int | None] | None = None

    def see_headroom(self, remaining: int, limit: int | None) -> None:
        if self.lowest is None or remaining < self.lowest[0]:
            self.lowest = (remaining, limit)

    def headroom(self) -> dict[str, int | None] | None:
        if self.lowest is None:
            return None
        return {"remaining_min": self.lowest[0], "limit": self.lowest[1]}

    def close(self) -> dict[str, Any]:
        """{"statuses": {status: n}, "retries": n, "rate_limited": n, "headroom": {...}}"""
        return self.usage._close(self)


def open_usage_windows(connectors: Mapping[str, object]) -> dict[str, UsageWindow]:
    """A usage window on every connector that reports ApiUsage (as `usage`)."""
    return {name: usage.window() for name, connector in connectors.items()
            if isinstance(usage := getattr(connector, "usage", None), ApiUsage)}


def usage_stats(usage: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Closed usage windows ({connector: window.close()}) as run-history stats, each
    {connector: value} like the pipeline's other stats."""
    return {"api_calls_by_status": {n: dict(u["statuses"]) for n, u in usage.items()},
            "api_retries": {n: u["retries"] for n, u in usage.items()},
            "api_rate_limited": {n: u["rate_limited"] for n, u in usage.items()},
            "rate_limit_headroom": {n: u["headroom"] for n, u in usage.items()
                                    if u["headroom"] is not None}}
