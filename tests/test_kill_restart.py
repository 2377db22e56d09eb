"""The sync process killed with SIGKILL at 20 random points of its run (each while it
waits for the answer to its n-th API request), restarted each time, converges to exactly
the CRM state of a run that was never killed, with a complete audit trail."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.world import World
from syncer.domain.values import canonical
from tests.conftest import (
    NOW,
    Sandboxes,
    running_sandboxes,
    sandbox_config_data,
    sync_once,
    trail_of,
    write_config,
)

pytestmark = pytest.mark.slow

KILLS = 20
FIELDS = {"hubspot": ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
                      "syncer_reasons"),
          "salesforce": ("Syncer_Stage__c", "Syncer_Score__c", "Syncer_Fit_Grade__c", "OwnerId",
                         "Syncer_Reasons__c")}


def state_of(boxes: Sandboxes) -> dict[tuple[str, str, str], str | None]:
    """Every writeback field of every record, by (crm, record id, field)."""
    values = {}
    for crm, sandbox, id_key in (("hubspot", boxes.hubspot, "id"),
                                 ("salesforce", boxes.salesforce, "Id")):
        for record in sandbox.records():
            for field in FIELDS[crm]:
                values[(crm, str(record[id_key]), field)] = canonical(record.get(field))
    return values


def sync_process(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCER_STATE_URL",)}
    return subprocess.Popen(
        # --full: every restart re-reads and re-scores everyone, so each run makes at least
        # the requests of a run with nothing left to write, and every kill point is reached.
        [sys.executable, "-m", "syncer.cli", "sync", "--once", "--full", "--as-of",
         NOW.isoformat(), "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def requests_served(boxes: Sandboxes) -> int:
    return boxes.hubspot.faults.requests + boxes.salesforce.faults.requests  # type: ignore[attr-defined]


class KillPoint:
    """Holds the `at`-th request (counted from 1) that either sandbox receives from now on,
    unanswered, until `release()`: while it is held the sync process is alive and waiting
    for that answer, so a kill then lands inside the run by construction, whatever the
    speed of the machine. Once released the request is answered (to nobody, if the
    process is dead: a write the CRM applied after its caller died)."""

    def __init__(self, boxes: Sandboxes, at: int) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()
        self._seen = itertools.count(1)
        self._lock = threading.Lock()
        self._at = at
        self._sandboxes = (boxes.hubspot, boxes.salesforce)
        for sandbox in self._sandboxes:
            sandbox.faults.plan = self._hold_after(sandbox.faults.plan)  # type: ignore[attr-defined]

    def _hold_after(self, plan: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
        def planned(method: str, endpoint: str) -> Any:
            with self._lock:
                held = next(self._seen) == self._at
            if held:
                self.reached.set()
                self._released.wait()
            return plan(method, endpoint)
        return planned

    def release(self) -> None:
        self._released.set()
        for sandbox in self._sandboxes:
            del sandbox.faults.plan  # type: ignore[attr-defined]  # the class's own again


def kill_at(config: Path, point: KillPoint) -> int | None:
    """Run a sync process until it reaches `point`, then SIGKILL it there. Returns its exit
    code (-SIGKILL when the kill landed mid-run) or None if it ended first."""
    process = sync_process(config)
    ended = threading.Thread(target=lambda: (process.wait(), point.reached.set()), daemon=True)
    ended.start()
    try:
        point.reached.wait()  # the point, or the process's end: neither depends on speed
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        return process.wait(timeout=120)  # a bound on a hung test, not a measurement
    finally:
        point.release()
        ended.join(timeout=120)


def test_sigkill_at_random_points_converges_to_the_fault_free_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def world() -> World:
        return World(seed=9, size=260, now=NOW)

    with running_sandboxes(world()) as reference:
        original = state_of(reference)
        loaded = write_config(tmp_path / "reference.yaml", sandbox_config_data(
            reference, f"sqlite:///{tmp_path / 'reference.db'}", monkeypatch))
        sync_once(loaded)
        expected = state_of(reference)
    assert expected != original

    config = tmp_path / "killed.yaml"
    with running_sandboxes(world()) as boxes:  # how many requests every run makes at least
        write_config(config, sandbox_config_data(
            boxes, f"sqlite:///{tmp_path / 'counted.db'}", monkeypatch))
        assert sync_process(config).wait(timeout=180) == 0
        before = requests_served(boxes)
        assert sync_process(config).wait(timeout=180) == 0  # nothing left to write
        least = requests_served(boxes) - before

    rng = random.Random(20261126)
    with running_sandboxes(world()) as boxes:
        loaded = write_config(config, sandbox_config_data(
            boxes, f"sqlite:///{tmp_path / 'restarted.db'}", monkeypatch))
        ends = [kill_at(config, KillPoint(boxes, rng.randint(1, least)))
                for _ in range(KILLS)]
        final = sync_process(config)
        assert final.wait(timeout=180) == 0
        got = state_of(boxes)
        trail, still_open = trail_of(loaded)

    assert ends == [-signal.SIGKILL] * KILLS  # every run really was killed midway
    assert got == expected
    # Every write announced is closed with its outcome; every CRM value syncer set was
    # decided (it is the new value of some write's audit row: written, failed, or closed
    # by recovery as written or not written).
    assert still_open == 0
    decided: dict[tuple[str, str, str], set[Any]] = {}
    for row in trail:
        if row["outcome"] in ("written", "failed", "not_written"):
            decided.setdefault((row["connector"], row["record_id"], row["field"]),
                               set()).add(canonical(row["new_value"]))
    for where, value in got.items():
        if value != original[where]:
            assert value in decided.get(where, set()), where
