"""Stage history through real syncs: scoring, a stage a rep set in Salesforce, a recycle,
and the funnel report reading them back."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from connectors.sandbox.world import IN_HUBSPOT, IN_SALESFORCE
from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.store import stage_history
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control


@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
def test_history_records_scoring_a_reps_stage_and_recycling_and_feeds_the_funnel(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = sync_once(sandbox_config)
    both = IN_HUBSPOT | IN_SALESFORCE
    emails = [sandboxes.world.person(i).email.lower() for i in range(sandboxes.world.size)
              if sandboxes.world.flags(i) & both == both]
    store = Store.open(sandbox_config.state_url)
    try:
        decisions = store.decisions(emails)
        mqls = sorted(k for k, d in decisions.items() if d.stage is Stage.MQL)
        assert len(mqls) >= 2, "the world must hold MQLs in both CRMs"
        rows = stage_history.history(store, mqls[0])
    finally:
        store.close()
    assert [(r.from_stage, r.to_stage, r.cause, r.run_id) for r in rows] == [
        (None, Stage.MQL, "scoring", first.run_id)]
    assert rows[0].detail and rows[0].detail.startswith("stage.mql: ")

    # A rep accepts one MQL as sales-qualified in Salesforce.
    taken = mqls[0]
    record = next(r for r in sandboxes.salesforce.records()
                  if (r.get("Email") or "").lower() == taken)
    time.sleep(1.1)
    control(sandboxes.salesforce, "edit", id=record["Id"], field="Syncer_Stage__c", value="SQL")  # type: ignore[arg-type]
    second = sync_once(sandbox_config)
    hubspot = next(r for r in sandboxes.hubspot.records() if r["email"].lower() == taken)
    assert hubspot["lifecyclestage"] == "salesqualifiedlead"  # the rep's stage, everywhere
    assert sandboxes.salesforce.record(record["Id"])["Syncer_Stage__c"] == "SQL"

    # 120 days later, the MQLs nobody worked have gone quiet: recycled.
    later = NOW + timedelta(days=120)
    third = sync_once(sandbox_config, now=later)
    store = Store.open(sandbox_config.state_url)
    try:
        taken_rows = stage_history.history(store, taken)
        quiet_rows = stage_history.history(store, mqls[1])
        writes = store.audit_rows(run_id=second.run_id, connector="hubspot",
                                  field="lifecyclestage", outcome="written")
    finally:
        store.close()
    assert [(r.from_stage, r.to_stage, r.cause) for r in taken_rows] == [
        (None, Stage.MQL, "scoring"), (Stage.MQL, Stage.SQL, "crm")]
    assert taken_rows[1].detail == "SQL set in the CRM (scoring alone: MQL)"
    assert [(r.from_stage, r.to_stage, r.cause, r.run_id) for r in quiet_rows] == [
        (None, Stage.MQL, "scoring", first.run_id),
        (Stage.MQL, Stage.RECYCLED, "recycle", third.run_id)]
    assert quiet_rows[1].at == later
    assert [w["new_value"] for w in writes if w["person_key"] == taken] == \
        ["salesqualifiedlead"]

    capsys.readouterr()
    assert main(["report", "--state", sandbox_config.state_url, "--until",
                 (later + timedelta(days=1)).isoformat(), "--json"]) == 0
    funnel = json.loads(capsys.readouterr().out)["funnel"]
    assert funnel["mql_entries"] == first.stages["mql"]
    sql = next(s for s in funnel["steps"] if s["stage"] == "sql")
    assert sql["entries"] >= 1  # the rep's SQL counts as reached
    recycled = next(t for t in funnel["time_in_stage"] if t["stage"] == "mql")
    assert recycled["left"] >= 2  # MQL stays ended by the SQL and by recycling
