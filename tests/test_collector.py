"""The garbage collector's thresholds while a sync runs (syncer/run/collector.py): raised
for the run, the process's own put back after it, also when runs overlap."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.run import collector
from syncer.run.collector import YOUNG_THRESHOLD, collector_for_sync
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config


@pytest.fixture
def own_thresholds() -> Iterator[tuple[int, int, int]]:
    """A process setting of its own, put back after the test."""
    before = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_a_run_raises_the_young_threshold_and_puts_the_process_setting_back(
        own_thresholds: tuple[int, int, int]) -> None:
    assert gc.get_freeze_count() == 0
    with collector_for_sync():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 11, 12)
        assert gc.get_freeze_count() > 0  # what was alive before the run is left alone
    assert gc.get_threshold() == own_thresholds
    assert gc.get_freeze_count() == 0


def test_overlapping_runs_keep_the_raised_threshold_until_the_last_ends(
        own_thresholds: tuple[int, int, int]) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def first() -> None:
        with collector_for_sync():
            first_in.set()
            second_in.wait()
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait()
    with collector_for_sync():
        second_in.set()
        first_out.wait()  # the first run has ended; this one still runs
        seen["after the first ended"] = gc.get_threshold()
    thread.join()
    assert seen["after the first ended"] == (YOUNG_THRESHOLD, 11, 12)
    assert gc.get_threshold() == own_thresholds
    assert collector._running == 0


def test_a_collector_turned_off_stays_off() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0, before[1], before[2])
    try:
        with collector_for_sync():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_a_real_sync_decides_under_the_raised_threshold_and_writes(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        own_thresholds: tuple[int, int, int]) -> None:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    loaded: LoadedConfig = write_config(tmp_path / "syncer.yaml", sandbox_config_data(
        sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch))
    while_deciding: list[tuple[int, int, int]] = []
    load_people = Store.load_people

    def watched(self: Store, keys: list[str]) -> object:
        while_deciding.append(gc.get_threshold())
        return load_people(self, keys)

    monkeypatch.setattr(Store, "load_people", watched)
    before = sandboxes.hubspot.records()
    assert main(["sync", "--once", "--config", str(loaded.path), "--as-of",
                 NOW.isoformat()]) == 0
    assert while_deciding and set(while_deciding) == {(YOUNG_THRESHOLD, 11, 12)}
    assert gc.get_threshold() == own_thresholds
    written = [r for r in sandboxes.hubspot.records() if r not in before]
    assert written, "the sync wrote nothing to HubSpot"
