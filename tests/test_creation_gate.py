"""The qualified-only gate: people are created in the other CRM only once they pass it, in
the run that qualified them, as a Contact under a matching Account or else a Lead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.sandbox.world import IN_HUBSPOT, IN_SALESFORCE
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.observe.metrics import SyncMetrics
from syncer.store.repository import Store
from tests.conftest import Sandboxes, sandbox_config_data, sync_once, write_config


def configure(tmp_path: Path, boxes: Sandboxes, state_url: str,
              monkeypatch: pytest.MonkeyPatch, **create: dict[str, Any]) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(boxes, state_url, monkeypatch)
    for connector in data["connectors"]:
        if connector["name"] in create:
            connector["create"] = create[connector["name"]]
    return write_config(tmp_path / "syncer.yaml", data)


def only_in(boxes: Sandboxes, flag: int) -> list[str]:
    both = IN_HUBSPOT | IN_SALESFORCE
    return [boxes.world.person(i).email.lower() for i in range(boxes.world.size)
            if boxes.world.flags(i) & both == flag]


def salesforce_by_email(boxes: Sandboxes) -> dict[str, dict[str, Any]]:
    return {(r.get("Email") or "").lower(): r for r in boxes.salesforce.records()}


@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("create_as", ["account_match", "lead"])
def test_only_qualified_people_are_created_in_salesforce_in_the_same_run(
        tmp_path: Path, sandboxes: Sandboxes, state_url: str,
        monkeypatch: pytest.MonkeyPatch, create_as: str) -> None:
    loaded = configure(tmp_path, sandboxes, state_url, monkeypatch,
                       salesforce={"min_stage": "mql", "create_as": create_as})
    candidates = only_in(sandboxes, IN_HUBSPOT)
    metrics = SyncMetrics()
    first = sync_once(loaded, metrics=metrics)

    store = Store.open(loaded.state_url)
    try:
        decisions = store.decisions(candidates)
    finally:
        store.close()
    qualified = {k for k, d in decisions.items() if d.stage.rank >= Stage.MQL.rank}
    held = set(decisions) - qualified
    assert qualified and held, "the world must hold people on both sides of the gate"
    created = salesforce_by_email(sandboxes)
    assert qualified <= set(created)  # created in the run that qualified them
    assert not held & set(created)  # the rest never
    assert first.creation.created["salesforce"] == len(qualified)
    assert first.creation.gated["salesforce"] == len(held)
    exported = {s.labels["outcome"]: s.value
                for family in text_string_to_metric_families(metrics.render().decode())
                for s in family.samples if s.name == "syncer_people_created_total"
                and s.labels["connector"] == "salesforce"}
    assert exported == {"created": len(qualified)}
    for key in qualified:
        record = created[key]
        assert int(record["Syncer_Score__c"]) == decisions[key].score
        expected = "Contact" if create_as == "account_match" else "Lead"
        assert record["type"] == expected
        if expected == "Contact":  # under the Account of the person's company
            account = sandboxes.salesforce.record(record["AccountId"])
            assert account["Name"].lower() == _company(sandboxes, key).lower()

    store = Store.open(loaded.state_url)
    try:
        created_rows = store.audit_rows(field="identity", outcome="created")
    finally:
        store.close()
    assert {r["person_key"] for r in created_rows} == qualified

    second = sync_once(loaded)  # the created records are pulled back and joined, not re-created
    assert second.creation.created == {} and not second.failures
    store = Store.open(loaded.state_url)
    try:
        people = store.load_people(sorted(qualified))
    finally:
        store.close()
    assert all({r.source for r in people[k][0]} == {"hubspot", "salesforce"}
               for k in qualified)
    assert len(salesforce_by_email(sandboxes)) == len(created)


def _company(boxes: Sandboxes, email: str) -> str:
    return next(boxes.world.person(i).company for i in range(boxes.world.size)
                if boxes.world.person(i).email.lower() == email)


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_salesforce_people_are_created_in_hubspot_behind_a_stricter_gate(
        tmp_path: Path, sandboxes: Sandboxes, state_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = configure(tmp_path, sandboxes, state_url, monkeypatch,
                       hubspot={"min_stage": "mql", "min_score": 60})
    candidates = only_in(sandboxes, IN_SALESFORCE)
    sync_once(loaded)
    store = Store.open(loaded.state_url)
    try:
        decisions = store.decisions(candidates)
    finally:
        store.close()
    passed = {k for k, d in decisions.items()
              if d.stage.rank >= Stage.MQL.rank and d.score >= 60}
    in_hubspot = {r["email"].lower(): r for r in sandboxes.hubspot.records()}
    assert passed and passed != {k for k, d in decisions.items()
                                 if d.stage.rank >= Stage.MQL.rank}  # the score bar bites
    assert passed <= set(in_hubspot)
    assert not (set(decisions) - passed) & set(in_hubspot)
    for key in passed:
        assert int(in_hubspot[key]["syncer_score"]) == decisions[key].score
