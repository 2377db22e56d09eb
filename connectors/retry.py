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
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
)

from syncer.domain.api_usage import (
    ApiUsage,
    RateLimitDeadline,
    RetriesExhausted,
)

T = TypeVar("T")

log = structlog.get_logger(__name__)

#: HTTP statuses worth trying again: rate limited or a server-side failure.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
#: The longest wait for a rate-limit answer that says nothing of when to come back
#: (Salesforce's concurrent-request cap, a 429 without Retry-After): the APIs' windows are
#: a second (HubSpot search, Salesforce) to ten seconds (HubSpot), and HubSpot's budget
#: headers make the connector wait out its own window before the next request anyway.
RATE_LIMIT_BACKOFF_MAX = 4.0


class TransientError(Exception):
    """A call that failed in a way that may succeed if tried again later. `rate_limited`
    (the default for a 429): the API asked us to slow down; that costs no attempt."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, rate_limited: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = status == 429 if rate_limited is None else rate_limited


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

    @property
    def sleep(self) -> Callable[[float], None]:
        """The sleep function of this policy (time.sleep unless one was given)."""
        return self._sleep or time.sleep

    def _wait(self, state: RetryCallState, nth_error: int) -> float:
        """The wait after the `nth_error`-th error of a call: the backoff grows with the
        errors only, not with the rate-limit answers met between them (a lone error after
        six 429s waits as a first error does, not the 30 s of a seventh)."""
        backoff = min(self.initial * 2.0 ** min(nth_error - 1, 30)
                      + random.uniform(0, self.initial), self.maximum)
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
            return self._wait(state, errors + 1)  # `stop` counts this error after the wait

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


