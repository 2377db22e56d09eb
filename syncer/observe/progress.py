"""Progress of a run, for whoever watches it: a rich display on a terminal, nothing else.

The run reports what it has done (records pulled per page, people decided per chunk,
records written per batch, and the API calls spent against the day's budget) to the
Progress of the current context; by default that is `SILENT`, so the daemon, the tests
and any output that is not a terminal only get the structured log lines they always had.
`syncer sync --once` and `syncer demo` install a live display (syncer/cli/progress_display.py)
for the duration of a run when stderr is a terminal.

A ContextVar, not an argument threaded through every stage: progress is an observer of
the run, it changes nothing in it, and a run in another thread or process has its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Progress(Protocol):
    """What a run reports. `task` names a line of the display ("pull hubspot", "qualify",
    "write salesforce"); `total` is known for some (people to qualify), not for pulls."""

    def advance(self, task: str, done: int, *, total: int | None = None,
                calls: int | None = None, calls_left: int | None = None) -> None: ...


class Silent:
    """No display: the structured logs say what happened."""

    def advance(self, task: str, done: int, *, total: int | None = None,
                calls: int | None = None, calls_left: int | None = None) -> None:
        return None


SILENT = Silent()
_current: ContextVar[Progress] = ContextVar("syncer_progress", default=SILENT)


def current() -> Progress:
    """The Progress of this context (SILENT unless a display is installed)."""
    return _current.get()


@contextmanager
def reporting_to(progress: Progress) -> Iterator[Progress]:
    """Report the runs started in this block to `progress`."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
