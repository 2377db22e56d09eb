"""What happens to a write besides success: a person's hand edit, a record that keeps
failing (dead letters and their replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncer.cli import main
from syncer.cli.run_summary import format_summary
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.errors import cause_of
from syncer.store import dead_letters
from tests.conftest import Sandboxes, sandbox_config_data, sync_once, write_config
from tests.sandbox_control import control


def audit(loaded: LoadedConfig, **filters: Any) -> list[dict[str, Any]]:
    with Runtime(loaded) as runtime:
        return runtime.require_store().audit_rows(**filters)


def salesforce_mql(sandboxes: Sandboxes) -> dict[str, Any]:
    return next(r for r in sandboxes.salesforce.records()
                if r.get("Syncer_Stage__c") == "MQL" and r["type"] == "Lead")


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_stage_set_by_hand_is_kept_and_audited_once(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    sync_once(sandbox_config)
    lead = salesforce_mql(sandboxes)
    control(sandboxes.salesforce, "edit", id=lead["Id"], field="Syncer_Stage__c", value="Lead")  # type: ignore[arg-type]  # sales sends it back
    second = sync_once(sandbox_config)
    assert sandboxes.salesforce.record(lead["Id"])["Syncer_Stage__c"] == "Lead"
    assert second.manual_edits_kept["salesforce"] == 1
    (kept,) = [r for r in audit(sandbox_config, run_id=second.run_id)
               if r["outcome"] == "kept_manual_edit"]
    assert (kept["record_id"], kept["field"], kept["old_value"], kept["new_value"]) == \
        (lead["Id"], "Syncer_Stage__c", "Lead", "MQL")
    third = sync_once(sandbox_config)  # held quietly: no write, no new audit row
    assert third.manual_edits_kept["salesforce"] == 0
    assert audit(sandbox_config, run_id=third.run_id) == []
    assert sandboxes.salesforce.record(lead["Id"])["Syncer_Stage__c"] == "Lead"


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_overwrite_policy_replaces_a_hand_edit(
        sandboxes: Sandboxes, state_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = sandbox_config_data(sandboxes, state_url, monkeypatch)
    for connector in data["connectors"]:
        connector["manual_edits"] = {"stage": "overwrite", "owner": "keep"}
    loaded = write_config(tmp_path / "overwrite.yaml", data)
    sync_once(loaded)
    lead = salesforce_mql(sandboxes)
    control(sandboxes.salesforce, "edit", id=lead["Id"], field="Syncer_Stage__c", value="Lead")  # type: ignore[arg-type]
    again = sync_once(loaded)
    assert sandboxes.salesforce.record(lead["Id"])["Syncer_Stage__c"] == "MQL"
    assert again.manual_edits_kept["salesforce"] == 0


def test_a_record_that_keeps_failing_is_parked_then_replayed(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    leads = [r for r in sandboxes.salesforce.records() if r["type"] == "Lead"]
    locked = leads[:2]
    control(sandboxes.salesforce, "lock_rows", ids=[r["Id"] for r in locked])  # type: ignore[arg-type]
    first = sync_once(sandbox_config)
    assert first.failures["salesforce"] == 2
    assert first.stats()["failures_by_cause"] == {"locked or converted": 2}
    assert "failures by cause: 2 locked or converted" in format_summary(first, "sqlite://")
    assert cause_of("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") == "bad picklist value"
    assert cause_of("SOMETHING_NEW") == cause_of(None) == "other"
    with Runtime(sandbox_config) as runtime:
        letters = dead_letters.open_letters(runtime.require_store())
    assert {letter.record_id for letter in letters} == {r["Id"] for r in locked}
    assert all(letter.error_code == "UNABLE_TO_LOCK_ROW" for letter in letters)
    failed = [r for r in audit(sandbox_config, run_id=first.run_id) if r["outcome"] == "failed"]
    assert {r["record_id"] for r in failed} == {r["Id"] for r in locked}
    assert all(sandboxes.salesforce.record(r["Id"]).get("Syncer_Score__c") is None
               for r in locked)

    state = ["--state", sandbox_config.state_url]
    assert main(["dead-letters", *state]) == 0
    listing = capsys.readouterr().out
    assert "2 dead letters" in listing and "UNABLE_TO_LOCK_ROW" in listing

    # Still locked: the replay counts one more attempt and keeps them parked.
    assert main(["dead-letters", "retry", "--config", str(sandbox_config.path)]) == 1
    with Runtime(sandbox_config) as runtime:
        assert [letter.attempts for letter in
                dead_letters.open_letters(runtime.require_store())] == [2, 2]
    control(sandboxes.salesforce, "unlock_rows",  # type: ignore[arg-type]
            ids=[r["Id"] for r in locked])
    assert main(["dead-letters", "retry", "--config", str(sandbox_config.path)]) == 0
    assert "2 records written, 0 still failing" in capsys.readouterr().out
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        assert dead_letters.open_letters(store) == []
        decisions = store.decisions(store.person_keys())
    for record in locked:
        value = sandboxes.salesforce.record(record["Id"])["Syncer_Score__c"]
        key = str(record["Email"]).lower()
        assert str(int(float(value))) == str(decisions[key].score)
    written = [r for r in audit(sandbox_config) if r["outcome"] == "written"
               and r["record_id"] in {x["Id"] for x in locked}]
    assert {r["field"] for r in written} >= {"Syncer_Score__c", "Syncer_Stage__c"}
    assert sync_once(sandbox_config).fields_written["salesforce"] == 0
