"""Spending HubSpot's request budget before it answers 429.

HubSpot reports the app's rolling ten-second budget in X-HubSpot-RateLimit-* headers; a
sync that runs alone can wait for a slot instead of collecting 429s and backing off.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


class RequestBudget:
    """Spend the request budget from X-HubSpot-RateLimit-* headers before HubSpot says 429.

    HubSpot's window is rolling, so when the last response said none are left the
    connector waits until its own oldest answered request in the window has aged out.
    A request is timed when its answer arrives: HubSpot counted it no later than that.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._answered: deque[float] = deque(maxlen=1000)
        self._remaining: int | None = None
        self._maximum: int | None = None
        self._window: float | None = None

    def before_request(self) -> None:
        if self._remaining is None or self._remaining > 0 or not self._window:
            return
        now = time.monotonic()
        recent = [t for t in self._answered if now - t < self._window]
        if self._maximum and len(recent) >= self._maximum:
            wait = recent[-self._maximum] + self._window - now
        else:  # others share the app's budget: wait for a slot's worth of the window
            wait = self._window / (self._maximum or 1)
        if wait > 0:
            log.info("api.budget_wait", wait_seconds=round(wait, 3))
            self._sleep(wait)
        self._remaining = None

    def after_response(self, headers: Mapping[str, str] | None) -> None:
        self._answered.append(time.monotonic())
        remaining = headers.get("X-HubSpot-RateLimit-Remaining") if headers else None
        if headers is None or remaining is None:
            return  # search answers carry no rate-limit headers
        try:
            self._remaining = int(remaining)
            self._maximum = int(headers.get("X-HubSpot-RateLimit-Max", "0")) or None
            self._window = int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds",
                                           "10000")) / 1000
        except ValueError:
            self._remaining = None
