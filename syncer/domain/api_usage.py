"""What a connector's API traffic looked like in a run, and how a run ends when a CRM stays
unreachable or keeps rate limiting. The connectors' retry layer (connectors/retry.py) fills
these in; the pipeline reads them into run history. Plain data: no I/O."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import TypedDict

from syncer.domain.failures import Unreachable


class Headroom(TypedDict):
    """The least rate-limit headroom a CRM reported during a run."""

    remaining_min: int
    limit: int | None


class UsageSummary(TypedDict):
    """What one connector's API traffic looked like over a window (a run)."""

    #: HTTP status (as text) -> answers
    statuses: dict[str, int]
    retries: int
    rate_limited: int
    headroom: Headroom | None


#: How long one run may wait, in all, for one CRM's rate limits (the config's default).
DEFAULT_RATE_LIMIT_DEADLINE = 900.0
#: The status a run that stopped at its rate-limit deadline is recorded with.
RATE_LIMITED = "rate_limited"


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

    def _close(self, window: UsageWindow) -> UsageSummary:
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

    def headroom(self) -> Headroom | None:
        if self.lowest is None:
            return None
        return {"remaining_min": self.lowest[0], "limit": self.lowest[1]}

    def close(self) -> UsageSummary:
        return self.usage._close(self)


def open_usage_windows(connectors: Mapping[str, object]) -> dict[str, UsageWindow]:
    """A usage window on every connector that reports ApiUsage (as `usage`)."""
    return {name: usage.window() for name, connector in connectors.items()
            if isinstance(usage := getattr(connector, "usage", None), ApiUsage)}


def usage_stats(usage: Mapping[str, UsageSummary]) -> dict[str, dict[str, object]]:
    """Closed usage windows ({connector: window.close()}) as run-history stats, each
    {connector: value} like the pipeline's other stats."""
    return {"api_calls_by_status": {n: dict(u["statuses"]) for n, u in usage.items()},
            "api_retries": {n: u["retries"] for n, u in usage.items()},
            "api_rate_limited": {n: u["rate_limited"] for n, u in usage.items()},
            "rate_limit_headroom": {n: u["headroom"] for n, u in usage.items()
                                    if u["headroom"] is not None}}
