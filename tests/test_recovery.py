"""A run killed between the CRM call and the audit commit leaves no unaudited write."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.values import canonical
from syncer.run.audit_trail import LOST, RECOVERED
from syncer.run.push import Sending, Writer
from syncer.store import intents as intent_store
from tests.conftest import Killed, Sandboxes, sync_once


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_interrupted_writes_are_reconciled_from_the_crm(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = Writer._record
    calls = {"n": 0}
    killed: list[tuple[str, str, str, str]] = []

    def record_then_die(self: Writer, sending: Sending, results: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the CRM took the second batch; the process dies before audit
            killed.extend((r["run_id"], r["connector"], r["record_id"], r["field"])
                          for rows in sending.intents for r in rows)
            raise Killed
        original(self, sending, results)

    monkeypatch.setattr(Writer, "_record", record_then_die)
    with pytest.raises(Killed):
        sync_once(sandbox_config)
    with Runtime(sandbox_config) as runtime, \
            runtime.require_store().engine.connect() as connection:
        open_before = intent_store.open_intents(connection, killed[0][0], killed[0][1])
    assert {(r["run_id"], r["connector"], r["record_id"], r["field"])
            for r in open_before} == set(killed)  # the dead batch's intent is committed
    monkeypatch.setattr(Writer, "_record", original)
    sync_once(sandbox_config)

    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        trail = store.audit_rows()
        with store.engine.connect() as connection:
            assert not list(connection.execute(intent_store.write_intents.select()))
    assert {r["outcome"] for r in trail} <= {"written", "failed", "kept_manual_edit",
                                             "created", "linked"}  # no intent rows
    closed = {(r["run_id"], r["connector"], r["record_id"], r["field"]): r for r in trail
              if r["run_id"] == killed[0][0]}
    assert set(killed) <= set(closed)  # every announced write of the dead run has its outcome
    assert {closed[key]["error"] for key in killed} == {RECOVERED}
    recovered = [r for r in trail if r["error"] == RECOVERED]
    assert recovered and all(r["outcome"] == "written" for r in recovered)
    assert not [r for r in trail if r["error"] == LOST]  # the batch did land
    # The CRM holds exactly what the audit says was written last, field by field.
    last: dict[tuple[str, str], Any] = {}
    for row in trail:
        if row["outcome"] == "written":
            last[(row["record_id"], row["field"])] = row["new_value"]
    records = {str(r.get("id") or r.get("Id")): r for r in
               [*sandboxes.hubspot.records(), *sandboxes.salesforce.records()]}
    for (record_id, field), value in last.items():
        assert canonical(records[record_id][field]) == canonical(value), (record_id, field)
