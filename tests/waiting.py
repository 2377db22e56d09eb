"""Waiting in tests for something to happen, never for a length of time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str,
               alive: Callable[[], None] = lambda: None, *,
               timeout: float | None = None) -> None:
    """Poll `condition` (`what`) until it holds. A child's death ends it (`alive` raises,
    naming `what` was awaited); `timeout` is a hang guard only, for waits with no child to
    watch (None: none), failing naming `what`, never the thing tested."""
    deadline = None if timeout is None else time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        try:
            alive()
        except AssertionError as died:
            raise AssertionError(f"while waiting for {what}: {died}") from None
        if deadline is not None and time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        tick.wait(0.05)
