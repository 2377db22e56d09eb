"""Syncing through injected faults (5xx, 429 bursts, timeouts, dropped connections,
per-record failures) ends in exactly the CRM state of a fault-free run, with every write
audited and no value written that was never decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.faults import FaultConfig
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.values import canonical
from syncer.run.replay import replay_dead_letters
from syncer.store import dead_letters
from tests.conftest import (
    NOW,
    Sandboxes,
    sandbox_config_data,
    sync_once,
    trail_of,
    write_config,
)
from tests.test_kill_restart import state_of

#: The client gives up on a request after this long: far above any normal answer of a
#: sandbox on 127.0.0.1, however busy the machine.
CLIENT_TIMEOUT = 5.0
#: A hung request hangs until the test releases it (the outage ends: `faults.stop()` wakes
#: it and it is answered, late), not for a duration: so the client has given up on it by
#: construction, whatever the speed of the machine. The hour only bounds a test that hangs.
HUNG_UNTIL_RELEASED = 3600.0

SCENARIOS = {
    "20% 5xx": FaultConfig(seed=2, error_rate=0.2),
    "429 bursts": FaultConfig(seed=2, burst_every=6, burst_length=2),
    "timeouts": FaultConfig(seed=3, timeout_rate=0.1, timeout_seconds=HUNG_UNTIL_RELEASED),
    "dropped connections": FaultConfig(seed=8, drop_rate=0.15),
    "per-record failures": FaultConfig(seed=5, record_failure_rate=0.15),
    "revoked sessions": FaultConfig(seed=6, session_expiry_rate=0.4),
}


def boxes(faults: FaultConfig | None) -> Sandboxes:
    world = World(seed=12, size=120, now=NOW)
    hubspot = HubSpotSandbox(world, faults=faults)
    salesforce = SalesforceSandbox(world, faults=faults)
    hubspot.start()
    salesforce.start()
    return Sandboxes(world, hubspot, salesforce)


def config(sandboxes: Sandboxes, tmp_path: Path, name: str,
           monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    data: dict[str, Any] = sandbox_config_data(
        sandboxes, f"sqlite:///{tmp_path / (name + '.db')}", monkeypatch)
    for connector in data["connectors"]:
        connector["timeout_seconds"] = CLIENT_TIMEOUT
    return write_config(tmp_path / f"{name}.yaml", data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """(the CRMs' state before any sync, after a fault-free sync)."""
    clean = boxes(None)
    try:
        original = state_of(clean)
        with pytest.MonkeyPatch.context() as monkeypatch:
            sync_once(config(clean, tmp_path_factory.mktemp("clean"), "clean", monkeypatch))
        return original, state_of(clean)
    finally:
        clean.hubspot.stop()
        clean.salesforce.stop()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_faults_end_in_the_fault_free_state(scenario: str,
                                            reference: tuple[dict[Any, Any], dict[Any, Any]],
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    original, expected = reference
    faulty = boxes(SCENARIOS[scenario])
    try:
        loaded = config(faulty, tmp_path, "faulty", monkeypatch)
        first = sync_once(loaded)
        injected = faulty.hubspot.faults.counts() + faulty.salesforce.faults.counts()  # type: ignore[attr-defined]
        assert sum(injected.values()) > 0, "the scenario injected nothing"
        if scenario == "timeouts":  # the client really gave up on hung requests
            assert injected["timeout"] > 0, injected
        # Faults off (the outage is over): hung requests are answered at last (the client
        # gave up on them long ago), then replay what was parked, and sync again.
        for sandbox in (faulty.hubspot, faulty.salesforce):
            sandbox.faults.config = FaultConfig()  # type: ignore[attr-defined]
            sandbox.faults.stop()  # type: ignore[attr-defined]
        with Runtime(loaded) as runtime:
            store = runtime.require_store()
            parked = len(dead_letters.open_letters(store))
            replay_dead_letters(loaded, store, runtime.connectors, NOW)
            assert dead_letters.open_letters(store) == []
        sync_once(loaded)
        got = state_of(faulty)
        trail, still_open = trail_of(loaded)
    finally:
        faulty.hubspot.stop()
        faulty.salesforce.stop()
    if scenario == "per-record failures":
        assert parked > 0 and sum(first.failures.values()) == parked
    assert got == expected
    assert still_open == 0  # every write announced is closed with its outcome
    decided: dict[tuple[str, str, str], set[Any]] = {}
    for row in trail:  # every value syncer set is the new value of some decided write
        if row["outcome"] in ("written", "failed", "not_written"):
            decided.setdefault((row["connector"], row["record_id"], row["field"]),
                               set()).add(canonical(row["new_value"]))
    for where, value in got.items():
        if value != original[where]:
            assert value in decided.get(where, set()), where
