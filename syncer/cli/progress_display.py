"""The live progress display of a run on a terminal (rich): one line per task with the
records done, the rate, the time left where the total is known, and the API calls spent
(and left in the day's budget, where one is set).

Only used when stderr is a terminal (`display_for`); otherwise runs report to
syncer.observe.progress.SILENT and the structured logs are the output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from syncer.observe.progress import SILENT, reporting_to
from syncer.observe.progress import Progress as RunProgress


class RateColumn(ProgressColumn):
    """Records per second (rich's speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class RichProgress:
    """Turns a run's reports into rich tasks, one per task name."""

    def __init__(self, display: Progress) -> None:
        self.display = display
        self.tasks: dict[str, TaskID] = {}

    def advance(self, task: str, done: int, *, total: int | None = None,
                calls: int | None = None, calls_left: int | None = None) -> None:
        calls_text = "" if calls is None else f"{calls:,} calls"
        if calls_left is not None:
            calls_text += f", {calls_left:,} left today"
        found = self.tasks.get(task)
        if found is None:
            found = self.display.add_task(task, total=total, calls=calls_text)
            self.tasks[task] = found
        self.display.update(found, advance=done, total=total, calls=calls_text)


def columns() -> tuple[ProgressColumn, ...]:
    return (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TimeRemainingColumn(), TextColumn("{task.fields[calls]}"))


@contextmanager
def display_for(stream: TextIO | None = None) -> Iterator[RunProgress]:
    """A live display on `stream` (stderr by default) if it is a terminal, else SILENT;
    runs started inside the block report to it."""
    target = stream or sys.stderr
    if not target.isatty():
        with reporting_to(SILENT) as silent:
            yield silent
        return
    with Progress(*columns(), console=Console(file=target)) as display, \
            reporting_to(RichProgress(display)) as progress:
        yield progress
