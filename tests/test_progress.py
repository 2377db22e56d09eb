"""Progress of a run: what a terminal display is told adds up to what the run did, and
nothing is displayed where stderr is not a terminal."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from syncer.cli.progress_display import RichProgress, display_for
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.observe.progress import SILENT, current, reporting_to
from syncer.run.pipeline import run_sync
from tests.conftest import Sandboxes


class Recorder:
    """Keeps every report a run makes."""

    def __init__(self) -> None:
        self.done: dict[str, int] = defaultdict(int)
        self.totals: dict[str, int | None] = {}
        self.calls: dict[str, int | None] = {}

    def advance(self, task: str, done: int, *, total: int | None = None,
                calls: int | None = None, calls_left: int | None = None) -> None:
        self.done[task] += done
        self.totals[task] = total
        self.calls[task] = calls


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_run_reports_its_pulls_people_and_writes(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    recorder = Recorder()
    with Runtime(sandbox_config) as runtime, reporting_to(recorder):
        summary = run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                           runtime.model, datetime.now(timezone.utc))
        calls = {name: c.api_calls for name, c in runtime.connectors.items()}
    assert current() is SILENT  # the display is gone with its block
    for name in ("hubspot", "salesforce"):
        assert recorder.done[f"pull {name}"] == summary.records_pulled[name] > 0
        assert recorder.done[f"activities {name}"] == summary.activities_pulled[name]
        assert recorder.done[f"write {name}"] == summary.records_written[name] > 0
        assert 0 < (recorder.calls[f"write {name}"] or 0) <= calls[name]
    people = recorder.totals["qualify"]
    assert people is not None and recorder.done["qualify"] == people > 0


def test_a_terminal_gets_a_live_display_and_anything_else_nothing() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with display_for(io.StringIO()) as progress:
        assert progress is SILENT and current() is SILENT
    screen = Terminal()
    with display_for(screen) as progress:
        assert isinstance(progress, RichProgress) and current() is progress
        progress.advance("pull hubspot", 200, calls=3, calls_left=997)
        progress.advance("qualify", 150, total=300)
    shown = screen.getvalue()
    assert "pull hubspot" in shown and "3 calls, 997 left today" in shown
    assert "150/300" in shown
