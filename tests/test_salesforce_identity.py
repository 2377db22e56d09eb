"""A person's record changing identity in Salesforce: lead conversion, merges and email
changes, in the sandbox (through simple-salesforce) and as the connector reports them
(successions(), people(), activities(), push())."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from connectors.retry import RetryPolicy
from connectors.salesforce import soql_values as soql
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings
from syncer.domain.types import Person, RecordUpdate, Succession
from tests.sandbox_control import control, result

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
NO_WAIT = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, sleep=lambda _: None)
WRITEBACK = ("Syncer_Stage__c", "Syncer_Score__c", "Syncer_Reasons__c", "OwnerId")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=23, size=300, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as running:
        yield running


@pytest.fixture
def sf(sandbox: SalesforceSandbox) -> Iterator[Salesforce]:
    with requests.Session() as session:
        session.verify, session.trust_env = sandbox.ca_file, False
        token = session.post(sandbox.base_url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", **sandbox.credentials}).json()["access_token"]
        yield Salesforce(instance_url=sandbox.base_url, session_id=token, version="59.0",
                         session=session)


@pytest.fixture
def connector(sandbox: SalesforceSandbox) -> Iterator[SalesforceConnector]:
    settings = ConnectorSettings(
        name="sf", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=WRITEBACK,
        ca_file=sandbox.ca_file, timeout_seconds=10.0, options={"page_size": 200})
    with SalesforceConnector(settings, retry=NO_WAIT) as built:
        yield built


def moment() -> datetime:
    """A cursor just before now (the sandbox stamps writes with the wall clock)."""
    return datetime.now(timezone.utc) - timedelta(seconds=1)


def ids(sf: Salesforce, query: str, *, include_deleted: bool = False) -> list[str]:
    return [r["Id"] for r in sf.query_all(query, include_deleted=include_deleted)["records"]]


def quoted(values: list[str]) -> str:
    return ", ".join(soql.quote(v) for v in values)


def busy_lead(sandbox: SalesforceSandbox, sf: Salesforce, skip: int = 0) -> dict[str, Any]:
    """A generated Lead with both Tasks and CampaignMember rows."""
    tasks = {r["WhoId"] for r in sf.query_all("SELECT WhoId FROM Task")["records"]}
    members = {r["LeadId"] for r in sf.query_all(
        "SELECT LeadId FROM CampaignMember WHERE ContactId = null")["records"]}
    chosen = sorted(tasks & members)[skip]
    return sandbox.record(chosen)


def all_people(connector: SalesforceConnector, since: datetime | None = None) -> list[Person]:
    return [p for page in connector.people(since) for p in page]


def all_successions(connector: SalesforceConnector, since: datetime) -> list[Succession]:
    return [s for page in connector.successions(since) for s in page]


# -- conversion --------------------------------------------------------------------------

def test_conversion_creates_a_contact_and_account_and_locks_the_lead(
        sandbox: SalesforceSandbox, sf: Salesforce, connector: SalesforceConnector) -> None:
    lead = busy_lead(sandbox, sf)
    control(sandbox, "edit", id=lead["Id"], field="Syncer_Stage__c", value="SQL")
    control(sandbox, "edit", id=lead["Id"], field="Syncer_Score__c", value="71")
    lead = sandbox.record(lead["Id"])
    task_ids = ids(sf, f"SELECT Id FROM Task WHERE WhoId = {soql.quote(lead['Id'])}")
    member_ids = ids(sf, f"SELECT Id FROM CampaignMember WHERE LeadId = "
                         f"{soql.quote(lead['Id'])}")
    converted = result(sandbox, "convert", lead_id=lead["Id"])
    contact_id, account_id = converted["contact_id"], converted["account_id"]

    contact, account = sandbox.record(contact_id), sandbox.record(account_id)
    for field in ("FirstName", "LastName", "Email", "Title", "Syncer_Stage__c",
                  "Syncer_Score__c"):
        assert contact[field] == lead[field], field
    assert contact["AccountId"] == account_id and account["Name"] == lead["Company"]
    expected_owner = lead["OwnerId"] if lead["OwnerId"].startswith("005") else \
        sandbox.seeder.integration_user  # a queue cannot own a Contact
    assert contact["OwnerId"] == expected_owner
    after = sandbox.record(lead["Id"])
    assert (after["IsConverted"], after["ConvertedContactId"], after["ConvertedAccountId"],
            after["Status"]) == (True, contact_id, account_id, "Closed - Converted")
    assert after["ConvertedDate"] == after["SystemModstamp"][:10]
    assert after["SystemModstamp"] >= lead["SystemModstamp"]  # same second: equal stamps

    # Its activities now belong to the Contact, in queries by time too.
    assert ids(sf, f"SELECT Id FROM Task WHERE WhoId = {soql.quote(lead['Id'])}") == []
    assert sorted(ids(sf, f"SELECT Id FROM Task WHERE WhoId = {soql.quote(contact_id)}")) == \
        sorted(task_ids) != []
    members = sf.query_all(f"SELECT Id, LeadId, ContactId FROM CampaignMember WHERE Id IN "
                           f"({quoted(member_ids)})")["records"]
    assert members and all((m["LeadId"], m["ContactId"]) == (lead["Id"], contact_id)
                           for m in members)
    theirs = set(task_ids) | set(member_ids)
    activities = [a for page in connector.activities(NOW - timedelta(days=3650))
                  for a in page if a.source_id in theirs]
    assert activities and {a.record_id for a in activities} == {contact_id}

    # The lead is locked for good; the contact takes the write instead.
    results = connector.push([
        RecordUpdate(lead["Id"], "Lead", {"Syncer_Stage__c": "Opportunity"}),
        RecordUpdate(contact_id, "Contact", {"Syncer_Stage__c": "Opportunity"})])
    assert [(r.ok, r.error_code, r.retryable) for r in results] == [
        (False, "CANNOT_UPDATE_CONVERTED_LEAD", False), (True, None, False)]
    assert sandbox.record(contact_id)["Syncer_Stage__c"] == "Opportunity"
    with pytest.raises(ValueError, match="already converted"):
        sandbox.convert_lead(lead["Id"])


def test_conversion_into_an_existing_account_or_contact(sandbox: SalesforceSandbox,
                                                        sf: Salesforce) -> None:
    first, second, third = (busy_lead(sandbox, sf, n) for n in range(3))
    existing = sf.query("SELECT Id, AccountId, Title FROM Contact WHERE Title != null "
                        "LIMIT 1")["records"][0]
    converted = result(sandbox, "convert", lead_id=first["Id"],
                       account_id=existing["AccountId"])
    contact_id, account_id = converted["contact_id"], converted["account_id"]
    assert account_id == existing["AccountId"] and contact_id != existing["Id"]
    assert sandbox.record(contact_id)["AccountId"] == existing["AccountId"]

    control(sandbox, "edit", id=existing["Id"], field="Syncer_Reasons__c", value=None)
    control(sandbox, "edit", id=second["Id"], field="Syncer_Reasons__c",
            value="Webinar attendee")
    linked = sandbox.convert_lead(second["Id"], contact_id=existing["Id"])
    assert linked == (existing["Id"], existing["AccountId"])
    contact = sandbox.record(existing["Id"])
    assert contact["Title"] == existing["Title"]  # kept: a value the contact has
    assert contact["Syncer_Reasons__c"] == "Webinar attendee"  # filled: it was blank
    other_account = sf.query(f"SELECT Id FROM Account WHERE Id != "
                             f"{soql.quote(existing['AccountId'])} LIMIT 1")["records"][0]
    with pytest.raises(ValueError, match="belongs to Account"):
        sandbox.convert_lead(third["Id"], account_id=other_account["Id"],
                             contact_id=existing["Id"])
    assert sandbox.record(third["Id"])["IsConverted"] is False


# -- merges ------------------------------------------------------------------------------

def test_merged_duplicates_are_deleted_but_seen_by_query_all(sandbox: SalesforceSandbox,
                                                             sf: Salesforce) -> None:
    master, first, second = (busy_lead(sandbox, sf, n) for n in range(3))
    duplicates = [first["Id"], second["Id"]]
    count = "SELECT COUNT() FROM Lead WHERE IsConverted = false"
    before = sf.query(count)["totalSize"]
    first_tasks = ids(sf, f"SELECT Id FROM Task WHERE WhoId = {soql.quote(first['Id'])}")
    control(sandbox, "merge", master_id=master["Id"], duplicate_ids=duplicates)

    assert ids(sf, f"SELECT Id FROM Lead WHERE Id IN ({quoted(duplicates)})") == []
    assert sf.query(count)["totalSize"] == before - 2
    assert sf.query(count, include_deleted=True)["totalSize"] == before
    gone = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId, SystemModstamp FROM Lead "
                        f"WHERE IsDeleted = true AND MasterRecordId = "
                        f"{soql.quote(master['Id'])}", include_deleted=True)["records"]
    assert sorted(r["Id"] for r in gone) == sorted(duplicates)
    assert all(r["IsDeleted"] and r["SystemModstamp"] > first["SystemModstamp"] for r in gone)
    assert sandbox.record(master["Id"])["SystemModstamp"] > master["SystemModstamp"]
    with pytest.raises(SalesforceResourceNotFound) as raised:
        sf.Lead.get(first["Id"])
    assert raised.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.update(first["Id"], {"Syncer_Stage__c": "MQL"})
    saved = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": second["Id"], "Syncer_Stage__c": "MQL"}]})
    assert saved[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    # The duplicates' activities moved to the master.
    moved = ids(sf, f"SELECT Id FROM Task WHERE WhoId = {soql.quote(master['Id'])}")
    assert first_tasks and set(first_tasks) <= set(moved)
    assert first["Id"] not in {r["Id"] for r in sandbox.records()}


@pytest.mark.parametrize("problem", ["three", "mixed", "converted", "deleted", "itself"])
def test_merges_salesforce_refuses(sandbox: SalesforceSandbox, sf: Salesforce,
                                   problem: str) -> None:
    leads = ids(sf, "SELECT Id FROM Lead WHERE IsConverted = false LIMIT 5")
    contact = ids(sf, "SELECT Id FROM Contact LIMIT 1")[0]
    converted = ids(sf, "SELECT Id FROM Lead WHERE IsConverted = true LIMIT 1")[0]
    if problem == "deleted":
        control(sandbox, "merge", master_id=leads[0], duplicate_ids=[leads[1]])
    arguments = {"three": leads[:4], "mixed": [leads[0], contact],
                 "converted": [leads[0], converted], "deleted": [leads[2], leads[1]],
                 "itself": [leads[0], leads[0]]}[problem]
    before = [sandbox.record(record_id) for record_id in arguments]
    with pytest.raises(ValueError):
        sandbox.merge(arguments[0], *arguments[1:])
    assert [sandbox.record(record_id) for record_id in arguments] == before


# -- what the connector reports ----------------------------------------------------------

def test_successions_report_conversions_and_merges(sandbox: SalesforceSandbox,
                                                   sf: Salesforce,
                                                   connector: SalesforceConnector) -> None:
    converted = {r["Id"]: r["ConvertedContactId"] for r in sf.query_all(
        "SELECT Id, ConvertedContactId FROM Lead WHERE IsConverted = true")["records"]}
    history = all_successions(connector, NOW - timedelta(days=3650))
    assert {(s.old_id, s.new_id, s.cause) for s in history} == {
        (old, new, "converted") for old, new in converted.items()}  # the seeded ones

    since = moment()
    assert all_successions(connector, since) == []
    lead, master_lead, merged_lead = (busy_lead(sandbox, sf, n)["Id"] for n in range(3))
    contacts = ids(sf, "SELECT Id FROM Contact ORDER BY Id LIMIT 3")
    contact_id = result(sandbox, "convert", lead_id=lead)["contact_id"]
    control(sandbox, "merge", master_id=master_lead, duplicate_ids=[merged_lead])
    control(sandbox, "merge", master_id=contacts[0], duplicate_ids=contacts[1:3])
    calls = connector.api_calls
    found = all_successions(connector, since)
    # one page each, Leads (both causes) and Contacts, in one Composite call
    assert connector.api_calls == calls + 1
    assert {(s.source, s.old_id, s.new_id, s.cause, s.new_object_type) for s in found} == {
        ("sf", lead, contact_id, "converted", "Contact"),
        ("sf", merged_lead, master_lead, "merged", "Lead"),
        ("sf", contacts[1], contacts[0], "merged", "Contact"),
        ("sf", contacts[2], contacts[0], "merged", "Contact")}
    assert all(s.at is not None and since <= s.at <= moment() + timedelta(seconds=2)
               for s in found)
    assert sandbox.call_counts[("POST", "composite", 200)] == 3  # three calls so far
    assert sandbox.call_counts[("GET", "queryAll", 200)] == 0  # none alone

    people = {p.record_id for p in all_people(connector)}
    assert contact_id in people and master_lead in people and contacts[0] in people
    assert not people & {lead, merged_lead, contacts[1], contacts[2]}
    assert all_successions(connector, moment() + timedelta(seconds=2)) == []


def test_successions_page_like_people(sandbox: SalesforceSandbox, sf: Salesforce,
                                      connector: SalesforceConnector) -> None:
    converted = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = true")["totalSize"]
    created = [result["id"] for start in range(0, 401, 200)
               for result in sf.restful("composite/sobjects", method="POST", json={
                   "allOrNone": True, "records": [
                       {"attributes": {"type": "Lead"}, "LastName": f"Twin {n}",
                        "Company": "Twins Inc", "Email": "twin@twins.example"}
                       for n in range(start, min(start + 200, 401))]})]
    master = ids(sf, "SELECT Id FROM Lead WHERE IsConverted = false LIMIT 1")[0]
    duplicates = created
    for start in range(0, len(duplicates), 2):
        control(sandbox, "merge", master_id=master, duplicate_ids=duplicates[start:start + 2])
    pages = list(connector.successions(NOW - timedelta(days=3650)))
    merged = [s for page in pages for s in page if s.cause == "merged"]
    assert sorted(s.old_id for s in merged) == sorted(duplicates)
    assert sum(1 for page in pages for s in page if s.cause == "converted") == converted
    assert [len(page) for page in pages] == [200, 200, len(duplicates) + converted - 400]


def test_email_change_is_pulled_as_a_change(sandbox: SalesforceSandbox, sf: Salesforce,
                                            connector: SalesforceConnector) -> None:
    lead = busy_lead(sandbox, sf)
    contact = ids(sf, "SELECT Id FROM Contact LIMIT 1")[0]
    since = moment()
    control(sandbox, "edit", id=lead["Id"], field="Email", value="new.address@elsewhere.example")
    control(sandbox, "edit", id=contact, field="Email", value="Moved@Elsewhere.example")
    changed = {p.record_id: p for p in all_people(connector, since)}
    assert set(changed) == {lead["Id"], contact}
    assert changed[lead["Id"]].email == "new.address@elsewhere.example"
    assert changed[contact].email == "Moved@Elsewhere.example"
    assert ids(sf, "SELECT Id FROM Lead WHERE Email = 'NEW.address@elsewhere.example'") == [
        lead["Id"]]
    assert ids(sf, f"SELECT Id FROM Lead WHERE Email = {soql.quote(lead['Email'])}") == []
    with pytest.raises(ValueError, match="invalid email"):
        sandbox.edit(contact, "Email", "not an address")
