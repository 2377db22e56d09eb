"""The sync process killed with SIGKILL at 20 random points, restarted each time, converges
to exactly the CRM state of a run that was never killed, with a complete audit trail."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox_world import World
from syncer.pipeline import run_sync
from syncer.runtime import Runtime
from syncer.writeback import canonical
from tests.conftest import NOW, Sandboxes, running_sandboxes, sandbox_config_data, write_config

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
        # --full: every restart re-reads and re-scores everyone, so each run lasts about as
        # long as the first and the random kill points land inside the work.
        [sys.executable, "-m", "syncer.cli", "sync", "--once", "--full", "--as-of",
         NOW.isoformat(), "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def test_sigkill_at_random_points_converges_to_the_fault_free_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def world() -> World:
        return World(seed=9, size=260, now=NOW)

    with running_sandboxes(world()) as reference:
        original = state_of(reference)
        loaded = write_config(tmp_path / "reference.yaml", sandbox_config_data(
            reference, f"sqlite:///{tmp_path / 'reference.db'}", monkeypatch))
        with Runtime(loaded) as runtime:
            run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model, NOW)
        expected = state_of(reference)
    assert expected != original

    config = tmp_path / "killed.yaml"
    with running_sandboxes(world()) as boxes:
        write_config(config, sandbox_config_data(
            boxes, f"sqlite:///{tmp_path / 'timed.db'}", monkeypatch))
        began = time.monotonic()  # how long one uninterrupted process takes, start to end
        assert sync_process(config).wait(timeout=120) == 0
        full_run = time.monotonic() - began

    rng = random.Random(20261126)
    kills: list[float] = []
    with running_sandboxes(world()) as boxes:
        loaded = write_config(config, sandbox_config_data(
            boxes, f"sqlite:///{tmp_path / 'restarted.db'}", monkeypatch))
        for _ in range(KILLS):
            process = sync_process(config)
            delay = rng.uniform(0.2, full_run)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                kills.append(delay)
        final = sync_process(config)
        assert final.wait(timeout=180) == 0
        got = state_of(boxes)
        with Runtime(loaded) as runtime:
            trail = runtime.require_store().audit_rows()

    assert len(kills) >= KILLS // 2, kills  # most runs really were killed midway
    assert got == expected
    # Every write announced is closed with its outcome; every CRM value syncer set was
    # decided (it is the new value of some intent).
    key = lambda r: (r["run_id"], r["connector"], r["record_id"], r["field"])  # noqa: E731
    intents = {key(r): r["new_value"] for r in trail if r["outcome"] == "intent"}
    outcomes = {key(r) for r in trail if r["outcome"] != "intent"}
    assert set(intents) <= outcomes
    decided: dict[tuple[str, str, str], set[Any]] = {}
    for (_, connector, record_id, field), value in intents.items():
        decided.setdefault((connector, record_id, field), set()).add(canonical(value))
    for where, value in got.items():
        if value != original[where]:
            assert value in decided.get(where, set()), where
