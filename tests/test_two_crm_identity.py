"""Identity across two CRMs, end to end through the real clients and the sandboxes:
lead conversion followed to the contact, email changes keeping the pair, duplicates
picked deterministically, merges in either CRM carrying score and history along."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import IN_HUBSPOT, IN_SALESFORCE, SALESFORCE_CONTACT
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.run.pipeline import run_sync
from syncer.run.replay import replay_dead_letters
from syncer.store import dead_letters
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control, result


def open_store(loaded: LoadedConfig) -> Store:
    return Store.open(loaded.state_url)


def next_second() -> None:
    """SOQL datetimes have whole seconds: let a change land after the last run's cursor."""
    time.sleep(1.1)


def salesforce_client(sandbox: SalesforceSandbox) -> tuple[Salesforce, requests.Session]:
    session = requests.Session()
    session.verify = sandbox.ca_file or True
    session.trust_env = False
    token = session.post(sandbox.base_url + "/services/oauth2/token",
                         data={"grant_type": "refresh_token", **sandbox.credentials}).json()
    return Salesforce(instance_url=sandbox.base_url, session_id=token["access_token"],
                      version="59.0", session=session), session


def people_in_both(boxes: Sandboxes, *, contact: bool) -> list[int]:
    """World indexes of people who are in HubSpot and in Salesforce (as a Lead or Contact)."""
    wanted = IN_HUBSPOT | IN_SALESFORCE
    return [i for i in range(boxes.world.size)
            if boxes.world.flags(i) & wanted == wanted
            and bool(boxes.world.flags(i) & SALESFORCE_CONTACT) == contact]


def salesforce_record(boxes: Sandboxes, email: str, object_type: str) -> dict[str, Any]:
    return next(r for r in boxes.salesforce.records()
                if r["type"] == object_type and (r.get("Email") or "").lower() == email)


def identity_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    return store.audit_rows(run_id=run_id, field="identity")


@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
def test_a_converted_lead_is_followed_to_its_contact(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = sync_once(sandbox_config)
    assert not first.failures
    index = people_in_both(sandboxes, contact=False)[0]
    email = sandboxes.world.person(index).email.lower()
    lead = salesforce_record(sandboxes, email, "Lead")
    store = open_store(sandbox_config)
    try:
        key = store.person_key_for_email(email)
        assert key == email and store.decisions([key])[key].score == int(lead["Syncer_Score__c"])
    finally:
        store.close()

    next_second()
    contact_id, _account = sandboxes.salesforce.convert_lead(lead["Id"])  # type: ignore[attr-defined]
    # A colleague's edit in HubSpot makes the decision change, so syncer has to write.
    hubspot = next(r for r in sandboxes.hubspot.records() if r["email"].lower() == email)
    control(sandboxes.hubspot, "edit", id=hubspot["id"],  # type: ignore[arg-type]
            field="jobtitle", value="Chief Revenue Officer")
    second = sync_once(sandbox_config)

    assert not second.failures, second.failures_by_code  # no CANNOT_UPDATE_CONVERTED_LEAD
    assert second.identity["salesforce.converted"] == 1
    store = open_store(sandbox_config)
    try:
        decision = store.decisions([email])[email]
        rows = identity_rows(store, second.run_id)
        writes = store.audit_rows(run_id=second.run_id, connector="salesforce",
                                  outcome="written")
    finally:
        store.close()
    assert [(r["record_id"], r["outcome"], r["new_value"]) for r in rows] == [
        (lead["Id"], "converted", contact_id)]
    assert rows[0]["person_key"] == email
    contact = sandboxes.salesforce.record(contact_id)
    assert int(contact["Syncer_Score__c"]) == decision.score
    assert {r["record_id"] for r in writes} == {contact_id}  # never the converted lead
    assert sandboxes.salesforce.record(lead["Id"])["IsConverted"] is True

    third = sync_once(sandbox_config)  # nothing left to do, nothing failing
    assert not third.failures and third.identity == {}

    capsys.readouterr()
    assert main(["explain", email, "--state", sandbox_config.state_url]) == 0
    explained = capsys.readouterr().out
    assert f"followed: salesforce:Lead:{lead['Id']} converted into {contact_id}" in explained
    assert f"salesforce:Contact:{contact_id}" in explained.splitlines()[1]
    assert "stage history:" in explained


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_an_email_change_on_either_side_keeps_the_pair(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        capsys: pytest.CaptureFixture[str]) -> None:
    sync_once(sandbox_config)
    index = people_in_both(sandboxes, contact=True)[0]
    email = sandboxes.world.person(index).email.lower()
    hubspot = next(r for r in sandboxes.hubspot.records() if r["email"].lower() == email)
    contact = salesforce_record(sandboxes, email, "Contact")
    store = open_store(sandbox_config)
    try:
        people_before = len(store.person_keys())
    finally:
        store.close()

    next_second()
    control(sandboxes.hubspot, "edit", id=hubspot["id"],  # type: ignore[arg-type]
            field="email", value="new.address@elsewhere.example")
    control(sandboxes.hubspot, "edit", id=hubspot["id"], field="jobtitle", value="VP Sales")  # type: ignore[arg-type]
    second = sync_once(sandbox_config)
    next_second()
    control(sandboxes.salesforce, "edit", id=contact["Id"],  # type: ignore[arg-type]
            field="Email", value="other.address@elsewhere.example")
    third = sync_once(sandbox_config)

    assert not second.failures and not third.failures
    store = open_store(sandbox_config)
    try:
        assert len(store.person_keys()) == people_before  # no twin was started
        assert store.person_key_for_email("new.address@elsewhere.example") == email
        assert store.person_key_for_email("other.address@elsewhere.example") == email
        records, _ = store.load_people([email])[email]
        decision = store.decisions([email])[email]
    finally:
        store.close()
    assert {(r.source, r.record_id) for r in records} == {
        ("hubspot", hubspot["id"]), ("salesforce", contact["Id"])}
    # The title edit in HubSpot reached the Salesforce contact's score: still one person.
    assert int(sandboxes.salesforce.record(contact["Id"])["Syncer_Score__c"]) == decision.score
    assert any(r.rule_id.startswith("fit.vp") for r in decision.reasons)
    capsys.readouterr()  # explain finds the person by either new address
    assert main(["explain", "other.address@elsewhere.example", "--state",
                 sandbox_config.state_url]) == 0
    assert capsys.readouterr().out.startswith(f"{email}: stage ")


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_two_salesforce_records_sharing_an_email_get_one_pick_and_a_flag(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    index = people_in_both(sandboxes, contact=False)[1]
    person = sandboxes.world.person(index)
    email = person.email.lower()
    sf, session = salesforce_client(sandboxes.salesforce)  # type: ignore[arg-type]
    try:
        twin = sf.Lead.create({"LastName": person.last_name or "Twin", "Company": "Twin Co",
                               "Email": person.email})["id"]
    finally:
        session.close()
    original = salesforce_record(sandboxes, email, "Lead")["Id"]
    primary, duplicate = sorted([original, twin])

    first = sync_once(sandbox_config)
    second = sync_once(sandbox_config)

    assert first.identity["salesforce.duplicates"] == 1
    assert second.identity == {}  # flagged once, not every run
    store = open_store(sandbox_config)
    try:
        flags = store.audit_rows(field="identity", outcome="duplicate")
        written = {r["record_id"] for r in store.audit_rows(connector="salesforce",
                                                            outcome="written")}
        decision = store.decisions([email])[email]
    finally:
        store.close()
    assert [(r["record_id"], r["new_value"]) for r in flags] == [
        (duplicate, f"duplicate of {primary}")]
    assert primary in written and duplicate not in written
    assert int(sandboxes.salesforce.record(primary)["Syncer_Score__c"]) == decision.score
    assert sandboxes.salesforce.record(duplicate)["Syncer_Score__c"] is None

    # Merging the twin away in Salesforce retires it; the flag has nothing left to say.
    next_second()
    control(sandboxes.salesforce, "merge",  # type: ignore[arg-type]
            master_id=primary, duplicate_ids=[duplicate])
    third = sync_once(sandbox_config)
    assert third.identity["salesforce.merged"] == 1
    store = open_store(sandbox_config)
    try:
        records, _ = store.load_people([email])[email]
    finally:
        store.close()
    assert {r.record_id for r in records if r.source == "salesforce"} == {primary}


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("merge_mode", ["new_record", "keep_primary"])
def test_a_hubspot_merge_folds_two_people_into_the_survivor(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, merge_mode: str) -> None:
    """HubSpot now gives a merged contact a new id (both old ids lead to it); it used to
    keep the primary's. Either way one person carries on, with both histories."""
    sandboxes.hubspot.merge_mode = merge_mode  # type: ignore[attr-defined]
    sync_once(sandbox_config)
    hubspot_only = [i for i in range(sandboxes.world.size)
                    if sandboxes.world.flags(i) & (IN_HUBSPOT | IN_SALESFORCE) == IN_HUBSPOT]
    store = open_store(sandbox_config)
    try:
        emails = [sandboxes.world.person(i).email.lower() for i in hubspot_only]
        decisions = store.decisions(emails)
        before = store.load_people(list(decisions))
    finally:
        store.close()
    by_rank = sorted((d for d in decisions.values() if d.stage is not Stage.DISQUALIFIED),
                     key=lambda d: (d.stage.rank, d.key))
    survivor, merged = by_rank[0], by_rank[-1]  # the further-along stage is merged away
    assert merged.stage.rank > survivor.stage.rank
    ids = {r["email"].lower(): r["id"] for r in sandboxes.hubspot.records()}

    next_second()
    surviving_id = result(sandboxes.hubspot, "merge",  # type: ignore[arg-type]
                          primary_id=ids[survivor.key], merged_id=ids[merged.key])["id"]
    assert (surviving_id == ids[survivor.key]) == (merge_mode == "keep_primary")
    second = sync_once(sandbox_config)

    retired = 2 if merge_mode == "new_record" else 1  # the primary's old id too
    assert second.identity["hubspot.merged"] == retired and not second.failures
    store = open_store(sandbox_config)
    try:
        after = store.decisions([survivor.key, merged.key])
        records, activities = store.load_people([survivor.key])[survivor.key]
        row = next(r for r in identity_rows(store, second.run_id)
                   if r["record_id"] == ids[merged.key])
    finally:
        store.close()
    assert merged.key not in after  # one person now
    assert after[survivor.key].stage.rank >= merged.stage.rank  # never backwards
    assert [r.record_id for r in records] == [surviving_id]
    # Both people's activities count for the one person now, none twice.
    assert len(activities) == len(before[survivor.key][1]) + len(before[merged.key][1])
    assert (row["new_value"], row["person_key"]) == (surviving_id, survivor.key)
    hubspot = sandboxes.hubspot.record(surviving_id)
    assert int(hubspot["syncer_score"]) == after[survivor.key].score


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_lead_converted_mid_run_is_parked_not_retried_and_followed_next_run(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync_once(sandbox_config)
    index = people_in_both(sandboxes, contact=False)[2]
    email = sandboxes.world.person(index).email.lower()
    lead = salesforce_record(sandboxes, email, "Lead")
    hubspot = next(r for r in sandboxes.hubspot.records() if r["email"].lower() == email)
    next_second()
    control(sandboxes.hubspot, "edit", id=hubspot["id"],  # type: ignore[arg-type]
            field="jobtitle", value="Chief Revenue Officer")
    converted: list[str] = []
    with Runtime(sandbox_config) as runtime:  # a rep converts it between pull and push
        connector = runtime.connectors["salesforce"]
        push = connector.push

        def convert_then_push(updates: Any) -> Any:
            if not converted:
                converted.append(sandboxes.salesforce.convert_lead(  # type: ignore[attr-defined]
                    lead["Id"])[0])
            return push(updates)
        monkeypatch.setattr(connector, "push", convert_then_push)
        second = run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                          runtime.model, NOW)
        _, tally = replay_dead_letters(sandbox_config, runtime.require_store(),
                                       runtime.connectors, NOW)
    assert second.failures_by_code == {"CANNOT_UPDATE_CONVERTED_LEAD": 1}
    assert tally.left_for_sync == {"salesforce": 1} and not tally.failures  # not retried
    third = sync_once(sandbox_config)
    assert third.identity["salesforce.converted"] == 1 and not third.failures
    store = open_store(sandbox_config)
    try:
        assert not [d for d in dead_letters.open_letters(store) if d.record_id == lead["Id"]]
        decision = store.decisions([email])[email]
        attempts = store.audit_rows(record_id=lead["Id"], outcome="failed")
    finally:
        store.close()
    assert len(attempts) >= 1 and {r["run_id"] for r in attempts} == {second.run_id}
    assert int(sandboxes.salesforce.record(converted[0])["Syncer_Score__c"]) == decision.score
