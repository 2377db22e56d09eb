"""End to end: the real clients against both sandbox CRMs, through the whole pipeline.

The expectations are computed independently of the pipeline: the decision the core gives
for each merged profile, and the values that decision must leave in each CRM.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.identity import merge_order, normalize_email
from syncer.domain.types import Profile, Stage
from syncer.domain.values import canonical
from syncer.qualify import qualify
from syncer.qualify.explain import summarize
from syncer.run.pipeline import run_sync
from syncer.store import intents as intent_store
from tests.conftest import NOW, Sandboxes
from tests.sandbox_control import control


def crm_records(sandboxes: Sandboxes) -> dict[str, dict[str, dict[str, Any]]]:
    """connector name -> record id -> current field values, read around the API limits."""
    hubspot = {str(r["id"]): r for r in sandboxes.hubspot.records()}
    salesforce = {str(r["Id"]): r for r in sandboxes.salesforce.records()}
    return {"hubspot": hubspot, "salesforce": salesforce}


def email_of(record: dict[str, Any]) -> str | None:
    return normalize_email(record.get("email") or record.get("Email"))


def stage_rank_from(loaded: LoadedConfig, name: str, value: Any) -> Stage | None:
    for stage, crm_value in loaded.connector(name).stage_values.items():
        if crm_value == canonical(value):
            return stage
    return None


def run(loaded: LoadedConfig, **kwargs: Any) -> Any:
    with Runtime(loaded) as runtime:
        return run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                        NOW, **kwargs), runtime.model


def test_full_sync_writes_core_decisions_to_both_crms(sandbox_config: LoadedConfig,
                                                      sandboxes: Sandboxes) -> None:
    before = crm_records(sandboxes)
    summary, model = run(sandbox_config)
    after = crm_records(sandboxes)

    assert summary.people > 100
    assert summary.stages["mql"] > 0 and summary.stages["lead"] > 0
    assert summary.fields_written["hubspot"] > 0 and summary.fields_written["salesforce"] > 0
    assert not summary.failures

    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        keys = store.person_keys()
        decisions = store.decisions(keys)
        people = store.load_people(keys)
        trail = store.audit_rows()
        with store.engine.connect() as connection:
            left_open = list(connection.execute(intent_store.write_intents.select()))
        owners = {name: {o.owner_id: o.email.lower() for o in c.owners()}
                  for name, c in runtime.connectors.items()}

    # 1. The stored decision is what the core computes from the merged profile.
    for key in keys:
        records = merge_order(people[key][0], ["hubspot", "salesforce"])
        activities = people[key][1]
        stages = [s for r in records
                  if (s := stage_rank_from(sandbox_config, r.source,
                                           before[r.source][r.record_id].get(
                                               sandbox_config.connector(r.source).fields.stage)))]
        expected = qualify(Profile(key, tuple(records), tuple(activities),
                                   max(stages, key=lambda s: s.rank) if stages else None),
                           model, NOW)
        decision = decisions[key]
        assert (decision.score, decision.stage, decision.fit_grade) == \
            (expected.score, expected.stage, expected.fit_grade), key
        scoring = [r for r in decision.reasons if not r.rule_id.startswith("routing")]
        assert scoring == [r for r in expected.reasons if not r.rule_id.startswith("routing")]

    # 2. Every CRM record holds exactly that decision's values.
    for key in keys:
        decision = decisions[key]
        for record in people[key][0]:
            config = sandbox_config.connector(record.source)
            crm = after[record.source][record.record_id]
            fields = config.fields
            if decision.stage in config.stage_values:
                assert crm[fields.stage] == config.stage_values[decision.stage], key
            assert canonical(crm[fields.score]) == str(decision.score), key
            assert crm[fields.fit_grade] == decision.fit_grade
            assert crm[fields.reasons] == summarize(decision, config.reasons_max_length)
            if decision.owner_email:
                assert owners[record.source][str(crm[fields.owner])] == decision.owner_email

    # 3. Owners: every MQL or SQL has one; a person in both CRMs has the same human in both.
    both = [k for k in keys if {r.source for r in people[k][0]} == {"hubspot", "salesforce"}]
    assert len(both) > 20
    for key in keys:
        if decisions[key].stage in (Stage.MQL, Stage.SQL):
            assert decisions[key].owner_email, key
    for key in both:
        values = defaultdict(set)
        for record in people[key][0]:
            crm = after[record.source][record.record_id]
            fields = sandbox_config.connector(record.source).fields
            values["score"].add(canonical(crm[fields.score]))
            values["grade"].add(crm[fields.fit_grade])
            values["owner"].add(owners[record.source].get(str(crm[fields.owner])))
        assert all(len(v) == 1 for v in values.values()), (key, values)

    # 4. Audit rows match the writes one to one, one row per field; each batch's
    # write-ahead intent was closed with its outcomes.
    audit = trail
    assert {row["outcome"] for row in audit} == {"written"}
    assert left_open == []
    changed = {(name, rid, f): v for name, recs in after.items() for rid, rec in recs.items()
               for f, v in rec.items()
               if canonical(v) != canonical(before[name][rid].get(f))
               and f in sandbox_config.connector(name).fields.decided()}
    audited = {(row["connector"], row["record_id"], row["field"]): row["new_value"]
               for row in audit}
    assert len(audit) == len(audited) == sum(summary.fields_written.values())
    assert all(row["outcome"] == "written" and row["model_version"] == model.version
               and row["reasons"] for row in audit)
    assert {k: canonical(v) for k, v in changed.items()} == \
        {k: canonical(v) for k, v in audited.items() if k in changed}
    # Audit may also list writes that set a value equal to what was there in another form
    # (never: only real changes are written).
    assert set(audited) == set(changed)


def test_second_sync_writes_nothing(sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    first, _ = run(sandbox_config)
    assert sum(first.fields_written.values()) > 0
    snapshot = crm_records(sandboxes)
    second, _ = run(sandbox_config)
    assert sum(second.fields_written.values()) == 0
    assert second.owners_assigned == 0
    assert crm_records(sandboxes) == snapshot
    with Runtime(sandbox_config) as runtime:
        assert runtime.require_store().audit_rows(run_id=second.run_id) == []


def test_dry_run_writes_nothing_and_reports_the_writes(sandbox_config: LoadedConfig,
                                                       sandboxes: Sandboxes) -> None:
    snapshot = crm_records(sandboxes)
    dry, _ = run(sandbox_config, dry_run=True)
    assert crm_records(sandboxes) == snapshot
    assert len(dry.planned) > 0
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        assert store.audit_rows() == []
        assert store.decisions(store.person_keys()) == {}
    real, _ = run(sandbox_config)
    with Runtime(sandbox_config) as runtime:
        written = runtime.require_store().audit_rows(run_id=real.run_id, outcome="written")
    assert {(r["connector"], r["record_id"], r["field"], r["new_value"]) for r in written} \
        == {(p.connector, p.record_id, p.field, p.new) for p in dry.planned}


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_manual_owner_edit_is_kept(sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    run(sandbox_config)
    records = crm_records(sandboxes)["hubspot"]
    owned = [rid for rid, r in records.items() if r.get("hubspot_owner_id")]
    with Runtime(sandbox_config) as runtime:
        owner_ids = sorted(o.owner_id for o in runtime.connectors["hubspot"].owners()
                           if o.active)
    target = owned[0]
    other = next(o for o in owner_ids if o != records[target]["hubspot_owner_id"])
    control(sandboxes.hubspot, "edit", id=target, field="hubspot_owner_id", value=other)  # type: ignore[arg-type]
    run(sandbox_config)
    assert crm_records(sandboxes)["hubspot"][target]["hubspot_owner_id"] == other
