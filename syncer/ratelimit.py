"""Retry policy shared by every connector.

One retry layer only (no urllib3 or requests retries underneath): connectors classify a
failed call into `TransientError` (429, 5xx, timeouts, dropped connections) or let a
permanent error through, and `RetryPolicy.call` waits and tries again, honouring the
server's Retry-After when it gives one.

Rate-limit answers (429, Salesforce's REQUEST_LIMIT_EXCEEDED for concurrent requests) are
not errors: they spend none of the attempts kept for errors. The call waits as the API
says (Retry-After, else a growing backoff) for as long as the connector's per-run
allowance of rate-limit waiting lasts (`ApiUsage.rate_limit_deadline`, the config's
`rate_limit_deadline_seconds`); a wait that would cross it raises `RateLimitDeadline`, and
the run stops cleanly (status `rate_limited`), to go on at the next run.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from syncer.failures import Unreachable

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: HTTP statuses worth trying again: rate limited or a server-side failure.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
#: How long one run may wait, in all, for one CRM's rate limits (the config's default).
DEFAULT_RATE_LIMIT_DEADLINE = 900.0
#: The longest wait for a rate-limit answer that says nothing of when to come back
#: (Salesforce's concurrent-request cap, a 429 without Retry-After): the APIs' windows are
#: a second (HubSpot search, Salesforce) to ten seconds (HubSpot), and HubSpot's budget
#: headers make the connector wait out its own window before the next request anyway.
RATE_LIMIT_BACKOFF_MAX = 4.0
#: The status a run that stopped at its rate-limit deadline is recorded with.
RATE_LIMITED = "rate_limited"


class TransientError(Exception):
    """A call that failed in a way that may succeed if tried again later. `rate_limited`
    (the default for a 429): the API asked us to slow down; that costs no attempt."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, rate_limited: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = status == 429 if rate_limited is None else rate_limited


class RetriesExhausted(Unreachable):
    """A transient failure that persisted through every attempt: the CRM is unreachable
    or overloaded for now (exit 3)."""


class RateLimitDeadline(Unreachable):
    """The API kept rate limiting until the run's allowance of waiting was spent. A sync
    stops cleanly on it (status `rate_limited`, cursors where they were, nothing
    dead-lettered); elsewhere it exits 3 like an unreachable CRM."""

    def __init__(self, message: str, *, waited: float, deadline: float) -> None:
        super().__init__(message)
        self.waited = waited
        self.deadline = deadline


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
    """Exponential backoff with jitter for errors, never shorter than the server's
    Retry-After; rate-limit answers wait as the API says and cost no attempt.

    `sleep` replaces time.sleep (tests pass one that returns at once, or waits on an
    event); every wait of the policy goes through it."""

    def __init__(self, attempts: int = 6, initial: float = 0.5, maximum: float = 30.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.attempts = attempts
        self.initial = initial
        self.maximum = maximum
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    @property
    def sleep(self) -> Callable[[float], None]:
        """The sleep function of this policy (time.sleep unless one was given)."""
        return self._sleep or time.sleep

    def _wait(self, state: RetryCallState) -> float:
        backoff: float = self._backoff(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return max(backoff, min(error.retry_after, self.maximum * 4))
        return backoff

    def rate_limit_wait(self, error: TransientError, in_a_row: int) -> float:
        """How long to wait after the `in_a_row`-th rate-limit answer in a row: what the
        API said (Retry-After), else a backoff doubling from `initial` up to
        RATE_LIMIT_BACKOFF_MAX (plus up to a tenth of jitter): rate windows are seconds
        long, and the allowance of waiting, not a count, decides when to give up."""
        if error.retry_after is not None:
            return error.retry_after
        backoff = min(RATE_LIMIT_BACKOFF_MAX, self.maximum,
                      self.initial * 2.0 ** min(in_a_row - 1, 30))
        return backoff + random.uniform(0, backoff / 10)

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning("api.retry", attempt=state.attempt_number,
                    status=getattr(error, "status", None),
                    rate_limited=getattr(error, "rate_limited", False),
                    wait_seconds=round(state.upcoming_sleep, 3))

    def call(self, fn: Callable[[], T], usage: ApiUsage | None = None) -> T:
        """Run `fn`, retrying TransientError. Raises RetriesExhausted when errors persist
        through every attempt, RateLimitDeadline when rate limits outlast the allowance of
        waiting in `usage` (a fresh default allowance without one). Each retry is counted
        in `usage` when given."""
        usage = usage if usage is not None else ApiUsage()
        errors = 0
        in_a_row = 0

        def wait(state: RetryCallState) -> float:
            nonlocal in_a_row
            error = _error_of(state)
            if isinstance(error, TransientError) and error.rate_limited:
                in_a_row += 1
                return self.rate_limit_wait(error, in_a_row)
            in_a_row = 0
            return self._wait(state)

        def stop(state: RetryCallState) -> bool:
            # tenacity (>= 9.2) decides the wait first, so the deadline can see it
            nonlocal errors
            error = _error_of(state)
            if isinstance(error, TransientError) and error.rate_limited:
                if error.status != 429:  # a 429 was counted with its response
                    usage.record_rate_limited()
                return not usage.spend_rate_limit_wait(state.upcoming_sleep)
            errors += 1
            return errors >= self.attempts

        def before_sleep(state: RetryCallState) -> None:
            usage.record_retry()
            self._before_sleep(state)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
            sleep=self.sleep,
        )
        try:
            return retrying(fn)
        except TransientError as error:
            if error.rate_limited:
                raise _deadline(str(error), usage) from error
            raise RetriesExhausted(
                f"gave up after {self.attempts} attempts: {error}. Fix: check the network "
                "and the connector's base_url, or run again later (the CRM was down or "
                "overloaded)") from error

    def wait_for_rate_limit(self, usage: ApiUsage, in_a_row: int, what: str) -> None:
        """Wait after a rate-limit answer met outside `call` (records of a batch refused
        as rate limited): as long as `call` would, from the same allowance; raises
        RateLimitDeadline instead when the allowance cannot cover it."""
        usage.record_rate_limited()
        seconds = self.rate_limit_wait(TransientError(what, rate_limited=True), in_a_row)
        if not usage.spend_rate_limit_wait(seconds):
            raise _deadline(what, usage)
        usage.record_retry()
        log.warning("api.retry", attempt=in_a_row, status=None, rate_limited=True,
                    wait_seconds=round(seconds, 3))
        self.sleep(seconds)


def _deadline(what: str, usage: ApiUsage) -> RateLimitDeadline:
    return RateLimitDeadline(
        f"{what}: still rate limited after waiting {usage.rate_limit_waited:.0f} s of the "
        f"run's {usage.rate_limit_deadline:.0f} s allowance (rate_limit_deadline_seconds); "
        "the run stopped here and the next run goes on from the same cursor. Fix: nothing, "
        "unless it happens every run: then another client is spending this API's limits, "
        "or raise rate_limit_deadline_seconds",
        waited=usage.rate_limit_waited, deadline=usage.rate_limit_deadline)


def _error_of(state: RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None else None


DEFAULT_POLICY = RetryPolicy()


class ApiUsage:
    """What one connector's API traffic looked like, for run history and metrics.

    Counts responses by HTTP status ("error" for no response at all), retries and 429s,
    and the lowest rate-limit headroom (requests left in the API's window or daily
    allocation) the responses reported. Totals only grow; `window()` opens a view that
    also tracks the lowest headroom seen while it is open (one run).

    It also keeps the run's allowance of rate-limit waiting: `rate_limit_deadline`
    seconds in all per run, counted from the first window opened (a run's start).
    """

    def __init__(self, rate_limit_deadline: float = DEFAULT_RATE_LIMIT_DEADLINE) -> None:
        self._lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0
        self.rate_limit_deadline = rate_limit_deadline
        #: seconds waited for rate limits since the run started
        self.rate_limit_waited = 0.0
        self._windows: list[UsageWindow] = []

    def spend_rate_limit_wait(self, seconds: float) -> bool:
        """Count a wait for a rate limit; False (nothing counted) when it would cross the
        run's deadline: then the run must stop instead of waiting."""
        with self._lock:
            if self.rate_limit_waited + seconds > self.rate_limit_deadline:
                return False
            self.rate_limit_waited += seconds
            return True

    def record_response(self, status: int | None) -> None:
        with self._lock:
            self.statuses[str(status) if status else "error"] += 1
            if status == 429:
                self.rate_limited += 1

    def record_rate_limited(self) -> None:
        """A rate-limit answer with another status than 429 (Salesforce's 403
        REQUEST_LIMIT_EXCEEDED for concurrent requests)."""
        with self._lock:
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
            if not self._windows:  # a run starts: its own allowance of rate-limit waiting
                self.rate_limit_waited = 0.0
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
