"""The Salesforce sandbox's standard describe, required fields and account controls (issue
20, part B): describe through simple-salesforce lists the standard fields the Object
Reference documents, queries of them work, inserts without required fields are refused
with Salesforce's error, and a tester creates and moves Accounts over the control API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.schema import id_number
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings
from tests.conftest import NOW
from tests.sandbox_control import ControlRefused, control, result

NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)

#: (object, field, type, length, createable, updateable, nillable) as the Object Reference
#: (API 59.0) documents them; a sample of each object's standard fields
DOCUMENTED: list[tuple[str, str, str, int, bool, bool, bool]] = [
    ("Lead", "Phone", "phone", 40, True, True, True),
    ("Lead", "MobilePhone", "phone", 40, True, True, True),
    ("Lead", "Street", "textarea", 255, True, True, True),
    ("Lead", "City", "string", 40, True, True, True),
    ("Lead", "State", "string", 80, True, True, True),
    ("Lead", "PostalCode", "string", 20, True, True, True),
    ("Lead", "Description", "textarea", 32000, True, True, True),
    ("Lead", "Rating", "picklist", 255, True, True, True),
    ("Lead", "AnnualRevenue", "currency", 0, True, True, True),
    ("Lead", "Website", "url", 255, True, True, True),
    ("Lead", "Salutation", "picklist", 40, True, True, True),
    ("Lead", "DoNotCall", "boolean", 0, True, True, False),
    ("Lead", "ConvertedOpportunityId", "reference", 18, False, False, True),
    ("Lead", "Company", "string", 255, True, True, False),
    ("Lead", "CreatedById", "reference", 18, False, False, False),
    ("Contact", "Department", "string", 80, True, True, True),
    ("Contact", "Birthdate", "date", 0, True, True, True),
    ("Contact", "MailingStreet", "textarea", 255, True, True, True),
    ("Contact", "OtherCity", "string", 40, True, True, True),
    ("Contact", "HomePhone", "phone", 40, True, True, True),
    ("Contact", "ReportsToId", "reference", 18, True, True, True),
    ("Contact", "LastName", "string", 80, True, True, False),
    ("Account", "Name", "string", 255, True, True, False),
    ("Account", "Type", "picklist", 255, True, True, True),
    ("Account", "ParentId", "reference", 18, True, True, True),
    ("Account", "BillingPostalCode", "string", 20, True, True, True),
    ("Account", "ShippingAddress", "address", 0, False, False, True),
    ("Account", "Phone", "phone", 40, True, True, True),
    ("Account", "AnnualRevenue", "currency", 0, True, True, True),
    ("Account", "Ownership", "picklist", 255, True, True, True),
    ("Account", "Sic", "string", 20, True, True, True),
    ("Account", "TickerSymbol", "string", 20, True, True, True),
    ("Account", "AccountSource", "picklist", 255, True, True, True),
    ("Opportunity", "Name", "string", 120, True, True, False),
    ("Opportunity", "StageName", "picklist", 255, True, True, False),
    ("Opportunity", "CloseDate", "date", 0, True, True, False),
    ("Opportunity", "Probability", "percent", 0, True, True, True),
    ("Opportunity", "ExpectedRevenue", "currency", 0, False, False, True),
    ("Opportunity", "NextStep", "string", 255, True, True, True),
    ("Opportunity", "IsWon", "boolean", 0, False, False, False),
    ("Opportunity", "ForecastCategoryName", "picklist", 255, True, True, True),
    ("Task", "WhatId", "reference", 18, True, True, True),
    ("Task", "CallType", "picklist", 40, True, True, True),
    ("Task", "TaskSubtype", "picklist", 40, True, False, True),
    ("Task", "IsClosed", "boolean", 0, False, False, False),
    ("Task", "Status", "picklist", 40, True, True, False),
    ("Event", "Location", "string", 255, True, True, True),
    ("Event", "IsAllDayEvent", "boolean", 0, True, True, False),
    ("Event", "StartDateTime", "datetime", 0, True, True, True),
    ("Event", "ShowAs", "picklist", 40, True, True, True),
    ("CampaignMember", "CampaignId", "reference", 18, True, False, False),
    ("CampaignMember", "HasResponded", "boolean", 0, False, False, False),
    ("CampaignMember", "CompanyOrAccount", "string", 255, False, False, True),
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(World(seed=31, size=120, now=NOW)) as running:
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
    session.verify = sandbox.ca_file or True
    token = session.post(f"{sandbox.base_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", **sandbox.credentials}, timeout=10).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      version="59.0", session=session)


def described(sf: Salesforce, object_name: str) -> dict[str, dict[str, Any]]:
    answer = sf.restful(f"sobjects/{object_name}/describe")
    return {f["name"]: f for f in answer["fields"]}


@pytest.mark.parametrize("object_name", ["Lead", "Contact", "Account", "Opportunity", "Task",
                                         "Event", "CampaignMember"])
def test_describe_lists_the_documented_standard_fields(sf: Salesforce,
                                                       object_name: str) -> None:
    fields = described(sf, object_name)
    for name in ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                 "LastModifiedById", "SystemModstamp"):
        assert name in fields
    rows = [row for row in DOCUMENTED if row[0] == object_name]
    assert rows
    for _, name, kind, length, createable, updateable, nillable in rows:
        field = fields[name]
        assert (field["type"], field["length"], field["createable"], field["updateable"],
                field["nillable"]) == (kind, length, createable, updateable, nillable), name
    assert len(fields) >= {"Lead": 60, "Contact": 60, "Account": 60, "Opportunity": 35,
                           "Task": 40, "Event": 40, "CampaignMember": 35}[object_name]


def test_describe_has_picklists_references_and_relationships(sf: Salesforce) -> None:
    lead, contact = described(sf, "Lead"), described(sf, "Contact")
    assert [p["value"] for p in lead["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    assert {"Mr.", "Ms.", "Dr."} <= {p["value"] for p in lead["Salutation"]["picklistValues"]}
    assert lead["GeocodeAccuracy"]["restrictedPicklist"] is True
    assert (lead["ConvertedOpportunityId"]["referenceTo"],
            lead["ConvertedOpportunityId"]["relationshipName"]) == (["Opportunity"],
                                                                    "ConvertedOpportunity")
    assert (contact["ReportsToId"]["referenceTo"],
            contact["ReportsToId"]["relationshipName"]) == (["Contact"], "ReportsTo")
    assert described(sf, "Account")["ParentId"]["relationshipName"] == "Parent"
    task = described(sf, "Task")
    assert task["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert "Opportunity" in task["WhatId"]["referenceTo"]
    assert task["WhatId"]["relationshipName"] == "What"
    stages = [p["value"] for p in described(sf, "Opportunity")["StageName"]["picklistValues"]]
    assert stages[0] == "Prospecting" and stages[-2:] == ["Closed Won", "Closed Lost"]


def test_standard_fields_are_queryable_null_unless_set(sf: Salesforce,
                                                       sandbox: SalesforceSandbox) -> None:
    query = ("SELECT Id, Phone, MobilePhone, Street, City, State, PostalCode, Description, "
             "Rating, NumberOfEmployees, AnnualRevenue, DoNotCall, Address FROM Lead "
             "WHERE IsConverted = false LIMIT 5")
    leads = sf.query(query)["records"]
    assert len(leads) == 5
    first = leads[0]
    assert (first["Phone"], first["MobilePhone"], first["Rating"], first["Street"]) == (
        None, None, None, None)
    assert first["DoNotCall"] is False  # a checkbox never set is false, not null
    control(sandbox, "edit", id=first["Id"], field="Phone", value="+1 415 555 0100")
    control(sandbox, "edit", id=first["Id"], field="City", value="Oakland")
    again = sf.query(f"SELECT Phone, City, Address FROM Lead WHERE Id = '{first['Id']}'")
    record = again["records"][0]
    assert (record["Phone"], record["City"], record["Address"]["city"]) == (
        "+1 415 555 0100", "Oakland", "Oakland")
    phoned = sf.query("SELECT Id FROM Lead WHERE Phone != null")["records"]
    assert [r["Id"] for r in phoned] == [first["Id"]]
    total = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    assert sf.query("SELECT COUNT() FROM Lead WHERE DoNotCall = false")["totalSize"] == total
    accounts = sf.query("SELECT Id, Phone, Type, Owner.Email, BillingCity FROM Account "
                        "LIMIT 2")["records"]
    assert [a["Type"] for a in accounts] == [None, None] and accounts[0]["Owner"]["Email"]


@pytest.mark.parametrize(("object_name", "body", "missing"), [
    ("Contact", {"FirstName": "Ann"}, ["LastName"]),
    ("Account", {"Website": "https://nameless.example"}, ["Name"]),
    ("Opportunity", {"Amount": 10}, ["Name", "StageName", "CloseDate"]),
    ("Opportunity", {"Name": "Deal", "StageName": "Prospecting"}, ["CloseDate"]),
    ("Event", {"Subject": "Call"}, ["ActivityDateTime", "DurationInMinutes"]),
    ("Event", {"Subject": "Call", "ActivityDateTime": "2026-06-01T10:00:00.000+0000"},
     ["DurationInMinutes"]),
    ("Event", {"IsAllDayEvent": True}, ["ActivityDate"]),
])
def test_required_fields_are_refused_with_salesforces_error(
        sandbox: SalesforceSandbox, object_name: str, body: dict[str, Any],
        missing: list[str]) -> None:
    url = f"{sandbox.base_url}/services/data/v59.0/sobjects/{object_name}"
    token = requests.post(f"{sandbox.base_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", **sandbox.credentials},
        verify=sandbox.ca_file, timeout=10).json()["access_token"]
    answer = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"},
                           verify=sandbox.ca_file, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == [{"message": f"Required fields are missing: [{', '.join(missing)}]",
                              "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}]


def test_what_the_org_computes_on_insert(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    deal = sf.Opportunity.create({"Name": "Probable", "StageName": "Negotiation/Review",
                                  "CloseDate": "2026-07-01"})
    stored = sandbox.record(deal["id"])
    assert (stored["Probability"], stored["ForecastCategoryName"], stored["IsClosed"]) == (
        90.0, "Pipeline", False)
    assert stored["CreatedById"] == stored["OwnerId"]  # the API user made and owns it
    task = sf.Task.create({"Subject": "Follow up", "Priority": "High"})
    assert (sandbox.record(task["id"])["IsHighPriority"],
            sandbox.record(task["id"])["IsClosed"]) == (True, False)
    event = sf.Event.create({"Subject": "Demo", "DurationInMinutes": 45,
                             "ActivityDateTime": "2026-06-02T15:00:00.000+0000"})
    assert sandbox.record(event["id"])["EndDateTime"] == "2026-06-02T15:45:00.000+0000"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Task.create({"CallType": "Sideways"})
    assert refused.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_account_controls_over_http(sandbox: SalesforceSandbox) -> None:
    settings = ConnectorSettings(
        name="sf", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), ca_file=sandbox.ca_file)
    since = sandbox.now()
    rep = next(u for u in sandbox.org.rows("User") if u["Id"] != sandbox.seeder.integration_user)
    made = result(sandbox, "create_account", name="Umbrella Corp",
                  website="https://www.umbrella.example/", employees=250,
                  annual_revenue=5e7, owner=rep["Email"], fields={"Rating": "Hot"})
    account_id = made["id"]
    record = made["record"]
    assert (record["Name"], record["OwnerId"], record["Rating"]) == (
        "Umbrella Corp", rep["Id"], "Hot")
    edited = result(sandbox, "edit_account", id=account_id,
                    fields={"Industry": "Biotechnology", "Phone": "555-0100"})
    assert edited["Phone"] == "555-0100"
    contact = next(r for r in sandbox.records() if r["type"] == "Contact")
    moved = result(sandbox, "set_account", id=contact["Id"], account_id=account_id)
    assert moved["AccountId"] == account_id

    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        changed = [a for page in connector.accounts(since) for a in page]
        assert [(a.record_id, a.domain, a.industry, a.owner_email, a.annual_revenue)
                for a in changed] == [(account_id, "umbrella.example", "Biotechnology",
                                       rep["Email"].lower(), 5e7)]
        people = {p.record_id: p for page in connector.people(since) for p in page}
        assert people[contact["Id"]].account_id == account_id

    for operation, body, expected in (
            ("create_account", {"website": "x.example"}, "name:"),
            ("create_account", {"name": "Bad", "fields": {"Type": "x" * 300}},
             "STRING_TOO_LONG"),
            ("edit_account", {"id": contact["Id"], "fields": {"Name": "X"}}, "no Account"),
            ("edit_account", {"id": account_id, "fields": {"Bogus__c": 1}}, "INVALID_FIELD"),
            ("edit_account", {"id": account_id, "fields": {"Name": ""}},
             "REQUIRED_FIELD_MISSING"),
            ("set_account", {"id": contact["Id"]}, "account_id:"),
            ("set_account", {"id": contact["Id"], "account_id": "001000000000000AAA"},
             "INVALID_CROSS_REFERENCE_KEY")):
        with pytest.raises(ControlRefused) as refused:
            control(sandbox, operation, **body)
        assert refused.value.status == 400, (operation, refused.value.body)
        assert expected in refused.value.message, (operation, refused.value.body)
    assert result(sandbox, "set_account", id=contact["Id"],
                  account_id=None)["AccountId"] is None


def test_a_world_with_accounts_matches_people_to_them() -> None:
    plain, rich = World(seed=4, size=60, now=NOW), World(seed=4, size=60, now=NOW,
                                                        salesforce_accounts=True)
    with SalesforceSandbox(plain) as before, SalesforceSandbox(rich) as after:
        old = {r["Id"]: r for r in before.org.rows("Account")}
        new = {r["Id"]: r for r in after.org.rows("Account")}
        assert old.keys() == new.keys()
        reps = {u["Id"] for u in after.org.rows("User")} - {after.seeder.integration_user}
        for account_id, row in new.items():
            number = id_number(account_id)
            assert number is not None
            company = rich.company(number - 1)
            assert row["Website"] == f"https://www.{company.domain}"
            assert row["OwnerId"] in reps and row["AnnualRevenue"] > 0
            assert old[account_id]["OwnerId"] == before.seeder.integration_user
            assert old[account_id].get("AnnualRevenue") is None
        assert before.records() == after.records()  # the people do not move
        contacts = [r for r in after.records() if r["type"] == "Contact"]
        at_home = [c for c in contacts  # a Contact at its company's domain
                   if new[c["AccountId"]]["Website"] == "https://www." + c["Email"].split("@")[1]]
        assert contacts and at_home
        assert not [c for c in contacts
                    if old[c["AccountId"]]["Website"] == "https://www." + c["Email"].split("@")[1]]


def test_accounts_pull_sees_changes_a_minute_later(sandbox: SalesforceSandbox) -> None:
    """The control clock moves an edit's stamp; the cursor reads from there on."""
    settings = ConnectorSettings(
        name="sf", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), ca_file=sandbox.ca_file)
    account = next(iter(sandbox.org.rows("Account")))
    control(sandbox, "clock", advance_seconds=60)
    since = sandbox.now() - timedelta(seconds=1)
    assert result(sandbox, "edit_account", id=account["Id"],
                  fields={"Description": "Met at the expo"})["Description"] == "Met at the expo"
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        changed = [a.record_id for page in connector.accounts(since) for a in page]
    assert changed == [account["Id"]]


def test_syncer_sandbox_takes_the_world_option() -> None:
    from syncer.cli.main import build_parser

    assert build_parser().parse_args(["sandbox", "--salesforce-accounts"]).salesforce_accounts
    assert not build_parser().parse_args(["sandbox"]).salesforce_accounts
