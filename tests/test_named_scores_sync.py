"""Named scores end to end: the example config maps every named score's total, fit,
engagement and grade (and the primary score's fit and engagement) to custom fields both
sandbox CRMs define; a real sync writes them as the stored decision's ScoreCards say,
audits each write, and a second sync writes nothing. A converted Lead's Contact inherits
them. A config mapping a score the model lacks is refused with a Fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from simple_salesforce import Salesforce  # type: ignore[attr-defined]

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from syncer.domain.config import LoadedConfig, load_config
from syncer.domain.types import Decision, ScoreCard
from syncer.qualify import load_model
from syncer.run.diff import check_score_fields, number_text
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL, Sandboxes, sync_once
from tests.test_hubspot_sandbox import Clients
from tests.test_salesforce_sandbox import http_session, token_for
from tests.test_two_crm_identity import next_second

#: What the example config maps, per connector: score name -> {part: CRM field}.
EXPECTED_MAP: dict[str, dict[str, dict[str, str]]] = {
    "hubspot": {
        "primary": {"fit": "syncer_fit", "engagement": "syncer_engagement"},
        "lead_routing": {"score": "syncer_lead_routing_score",
                         "fit": "syncer_lead_routing_fit",
                         "engagement": "syncer_lead_routing_engagement",
                         "grade": "syncer_lead_routing_grade"}},
    "salesforce": {
        "primary": {"fit": "Syncer_Fit__c", "engagement": "Syncer_Engagement__c"},
        "lead_routing": {"score": "Syncer_Lead_Routing_Score__c",
                         "fit": "Syncer_Lead_Routing_Fit__c",
                         "engagement": "Syncer_Lead_Routing_Engagement__c",
                         "grade": "Syncer_Lead_Routing_Grade__c"}},
}


def mapped(connector: str) -> dict[str, tuple[str, str]]:
    """CRM field -> (score name, part) for one connector."""
    return {field: (score, part) for score, parts in EXPECTED_MAP[connector].items()
            for part, field in parts.items()}


def as_written(card: ScoreCard, part: str) -> str:
    """The text syncer writes for one part of a score card (writeback's formatting: the
    total whole, points with two decimals at most and no trailing zeros)."""
    if part == "score":
        return str(card.total)
    if part == "grade":
        return card.grade
    return number_text(card.fit if part == "fit" else card.engagement)


def expected(connector: str, decision: Decision) -> dict[str, str]:
    cards = {card.name: card for card in decision.scores}
    return {field: as_written(cards[score], part)
            for field, (score, part) in mapped(connector).items()}


def held(connector: str, record: dict[str, Any]) -> dict[str, str | None]:
    """The mapped fields of a record read back, as text: HubSpot keeps the string written,
    Salesforce gives doubles back as JSON numbers (8.4, 12.0)."""
    values: dict[str, str | None] = {}
    for field in mapped(connector):
        value = record[field]
        values[field] = value if value is None or isinstance(value, str) else \
            number_text(float(value))
    return values


def live_records(sandboxes: Sandboxes) -> dict[str, dict[str, dict[str, Any]]]:
    """connector -> record id -> record, for both CRMs' live people."""
    return {"hubspot": {r["id"]: r for r in sandboxes.hubspot.records()},
            "salesforce": {r["Id"]: r for r in sandboxes.salesforce.records()}}


def person_keys(store: Store, connector: str, ids: list[str]) -> dict[str, str]:
    """record id -> person key (records the store does not know are left out)."""
    found: dict[str, str] = {}
    for record_id in ids:
        for key in store.person_keys_of(connector, [record_id]):
            found[record_id] = key
    return found


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_every_named_score_field_is_written_as_decided_audited_and_only_once(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, state_url: str) -> None:
    for connector in sandbox_config.config.connectors:
        assert {name: fields.model_dump(exclude_none=True)
                for name, fields in connector.fields.scores.items()} == \
            EXPECTED_MAP[connector.name]
    assert check_score_fields(sandbox_config, load_model(EXAMPLE_MODEL)) == []

    first = sync_once(sandbox_config)
    assert first.people > 100 and not any(first.failures.values()), first.failures

    records = live_records(sandboxes)
    store = Store.open(state_url)
    try:
        keys = {name: person_keys(store, name, list(rows)) for name, rows in records.items()}
        decisions = store.decisions(sorted({k for ks in keys.values() for k in ks.values()}))
        audit = {(row["connector"], row["record_id"], row["field"]): row
                 for row in store.audit_rows(run_id=first.run_id)}
    finally:
        store.close()

    fractional = 0
    for name, rows in records.items():
        assert len(rows) > 50 and set(keys[name]) == set(rows), name
        for record_id, record in rows.items():
            key = keys[name][record_id]
            want = expected(name, decisions[key])
            assert held(name, record) == want, f"{name} record {record_id} ({key})"
            for field, value in want.items():
                row = audit[(name, record_id, field)]
                assert (row["outcome"], row["person_key"], row["old_value"],
                        row["new_value"]) == ("written", key, None, value), row
            fractional += sum("." in value for value in want.values())
    assert fractional > 0, "decayed points are not whole numbers, and are written so"
    routing = [decision.scores[1] for decision in decisions.values()]
    assert {card.name for card in routing} == {"lead_routing"}
    assert any(card.engagement != 0 for card in routing)
    # lead_routing leaves fit out in the example model: it takes the primary score's fit.
    assert all(d.scores[1].fit == d.scores[0].fit for d in decisions.values())

    # A person both CRMs hold carries the same numbers in both.
    both = sorted(set(keys["hubspot"].values()) & set(keys["salesforce"].values()))
    assert len(both) >= 5
    record_of = {name: {key: records[name][record_id] for record_id, key in ks.items()}
                 for name, ks in keys.items()}
    for key in both:
        hubspot = {mapped("hubspot")[f]: v
                   for f, v in held("hubspot", record_of["hubspot"][key]).items()}
        salesforce = {mapped("salesforce")[f]: v
                      for f, v in held("salesforce", record_of["salesforce"][key]).items()}
        assert hubspot == salesforce, key

    second = sync_once(sandbox_config)
    assert sum(second.fields_written.values()) == 0 and not any(second.failures.values())
    store = Store.open(state_url)
    try:
        assert [r for r in store.audit_rows(run_id=second.run_id)
                if r["outcome"] == "written"] == []
    finally:
        store.close()


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_converted_lead_hands_its_named_scores_to_the_contact(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, state_url: str) -> None:
    salesforce = cast(SalesforceSandbox, sandboxes.salesforce)
    sync_once(sandbox_config)
    lead = max((r for r in salesforce.records() if r["type"] == "Lead"),
               key=lambda r: (r["Syncer_Lead_Routing_Score__c"], r["Id"]))
    assert lead["Syncer_Lead_Routing_Score__c"] is not None
    next_second()
    contact_id, _account = salesforce.convert_lead(lead["Id"])
    contact = salesforce.record(contact_id)
    assert held("salesforce", contact) == held("salesforce", lead)

    after = sync_once(sandbox_config)
    assert after.identity["salesforce.converted"] == 1 and not any(after.failures.values())
    store = Store.open(state_url)
    try:
        (key,) = store.person_keys_of("salesforce", [contact_id])
        decision = store.decisions([key])[key]
        written = {r["field"] for r in store.audit_rows(run_id=after.run_id,
                                                        record_id=contact_id)
                   if r["outcome"] == "written"}
    finally:
        store.close()
    want = expected("salesforce", decision)
    assert held("salesforce", salesforce.record(contact_id)) == want
    # Copied by the conversion, so syncer had nothing to write to them.
    assert written.isdisjoint(want), written


def test_both_sandboxes_describe_the_named_score_fields(sandboxes: Sandboxes) -> None:
    """What syncer's start-up checks and an admin's tools read: HubSpot's property list
    (group "syncer") and Salesforce's describe of Lead and Contact."""
    hubspot = cast(HubSpotSandbox, sandboxes.hubspot)
    salesforce = cast(SalesforceSandbox, sandboxes.salesforce)
    clients = Clients(hubspot)
    try:
        listed = {p.name: p for p in clients.properties.get_all("contacts").results}
    finally:
        clients.close()
    for field, (_score, part) in mapped("hubspot").items():
        prop = listed[field]
        assert (prop.type, prop.group_name) == (
            "string" if part == "grade" else "number", "syncer"), field
        assert not prop.modification_metadata.read_only_value

    session = http_session(salesforce)
    try:
        sf = Salesforce(instance_url=salesforce.base_url, version="59.0",
                        session_id=token_for(salesforce, session), session=session)
        for sobject in ("Lead", "Contact"):
            fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
            for field, (_score, part) in mapped("salesforce").items():
                spec = fields[field]
                assert (spec["type"], spec["custom"], spec["updateable"],
                        spec["createable"], spec["nillable"]) == (
                    "string" if part == "grade" else "double", True, True, True, True), field
                if part in ("fit", "engagement"):
                    assert (spec["precision"], spec["scale"]) == (6, 2), field
        lead = sf.query("SELECT Id, Syncer_Fit__c, Syncer_Lead_Routing_Grade__c FROM Lead "
                        "LIMIT 1")["records"][0]
        assert (lead["Syncer_Fit__c"], lead["Syncer_Lead_Routing_Grade__c"]) == (None, None)
    finally:
        session.close()


def test_a_config_mapping_a_score_the_model_lacks_is_refused(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE_MODEL, tmp_path / EXAMPLE_MODEL.name)
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = EXAMPLE_MODEL.name
    salesforce = data["connectors"][1]
    assert salesforce["name"] == "salesforce"
    salesforce["fields"]["scores"]["lead_routng"] = \
        salesforce["fields"]["scores"].pop("lead_routing")
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load_config(path)
    assert check_score_fields(loaded, load_model(loaded.model_path)) == [
        f"{path}: connectors[1] (name: salesforce).fields.scores.lead_routng: the model "
        f"default has no score named 'lead_routng' (did you mean 'lead_routing'?). Fix: use "
        f"one of primary, lead_routing, or add a score named 'lead_routng' under `scores:` "
        f"in {EXAMPLE_MODEL.name}"]
