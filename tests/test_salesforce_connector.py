"""The Salesforce connector against the sandbox over HTTPS, through simple-salesforce."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.retry import RetryPolicy
from connectors.salesforce import creation
from connectors.salesforce.client import FieldInfo
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import ActivityType, CreateResult, NewPerson, Person, RecordUpdate
from tests.sandbox_control import control, result

NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
WRITEBACK = ("Syncer_Stage__c", "Syncer_Score__c", "Syncer_Fit_Grade__c",
             "Syncer_Reasons__c", "OwnerId")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=5, size=500, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as running:
        yield running


def settings_for(sandbox: SalesforceSandbox, **overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {
        "name": "sf-test", "kind": "salesforce", "base_url": sandbox.base_url,
        "credentials": dict(sandbox.credentials), "writeback_fields": WRITEBACK,
        "ca_file": sandbox.ca_file, "timeout_seconds": 10.0, "options": {"page_size": 200}}
    values.update(overrides)
    return ConnectorSettings(**values)


@pytest.fixture
def connector(sandbox: SalesforceSandbox) -> Iterator[SalesforceConnector]:
    with SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as built:
        yield built


def all_people(connector: SalesforceConnector) -> list[Person]:
    return [person for page in connector.people() for person in page]


def by_email(people: list[Person]) -> dict[str, Person]:
    assert len({p.email for p in people}) == len(people)
    return {str(p.email): p for p in people}


def test_people_are_complete_and_mapped(connector: SalesforceConnector, world: World,
                                        sandbox: SalesforceSandbox) -> None:
    pages = list(connector.people())
    assert len(pages) >= 3  # Leads need two pages of 200, Contacts one
    people = by_email([p for page in pages for p in page])
    expected = {p.email: p for p in world.people() if p.in_salesforce}
    assert people.keys() == expected.keys()
    stored = {r["Id"]: r for r in sandbox.records()}
    for email, person in people.items():
        truth = expected[email]
        assert person.source == "sf-test"
        assert person.object_type == truth.salesforce_object
        assert person.record_id.startswith("00Q" if truth.salesforce_object == "Lead" else "003")
        assert (person.first_name, person.last_name) == (truth.first_name, truth.last_name)
        assert person.title == (truth.title or None)
        assert person.company == truth.company
        assert person.industry == (truth.industry or None)
        assert person.employees == truth.employees
        assert person.country == (truth.country or None)
        record = stored[person.record_id]
        assert person.updated_at is not None
        assert person.updated_at.strftime("%Y-%m-%dT%H:%M:%S") == record["SystemModstamp"][:19]
        assert set(person.crm_values) == set(WRITEBACK)
        assert person.crm_values["OwnerId"] == record["OwnerId"]
        assert person.crm_values["Syncer_Stage__c"] == record["Syncer_Stage__c"]
    assert all(r["type"] == "Lead" for r in sandbox.records(include_converted=True)
               if r["Id"] not in stored)  # converted leads are not people


def test_activities_round_trip_every_salesforce_activity(connector: SalesforceConnector,
                                                         world: World) -> None:
    record_email = {p.record_id: p.email for p in all_people(connector)}
    activities = [a for page in connector.activities(NOW - timedelta(days=365)) for a in page]
    assert len({a.source_id for a in activities}) == len(activities)
    got = Counter((record_email[a.record_id], a.type, a.occurred_at) for a in activities)
    expected = Counter((p.email, a.type, a.occurred_at) for p in world.people()
                       if p.in_salesforce for a in p.activities if a.channel == "salesforce")
    assert got == expected
    kinds = {a.type for a in activities}
    assert {ActivityType.EMAIL_OPEN, ActivityType.PAGE_VIEW,
            ActivityType.CONTENT_DOWNLOAD} <= kinds
    for activity in activities:
        assert activity.source == "sf-test"
        if activity.type in (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW):
            assert activity.source_id.startswith("00T")
            assert activity.attributes["url"].startswith("https://www.syncer-sandbox.test/")
        else:
            assert activity.source_id.startswith("00v") and activity.attributes["campaign"]


def test_activities_since_is_inclusive(connector: SalesforceConnector, world: World) -> None:
    moments = sorted(a.occurred_at for p in world.people() if p.in_salesforce
                     for a in p.activities if a.channel == "salesforce")
    since = moments[len(moments) // 2]
    activities = [a for page in connector.activities(since) for a in page]
    assert sorted(a.occurred_at for a in activities) == [m for m in moments if m >= since]


def test_owners(connector: SalesforceConnector, world: World) -> None:
    owners = {o.email: o for o in connector.owners()}
    for user in world.users:
        assert owners[user.email].active is user.active
        assert owners[user.email].name == f"{user.first_name} {user.last_name}"
        assert owners[user.email].owner_id.startswith("005")
    # The integration user the connector signs in as is no rep: left out, so records it
    # owns count as unrouted.
    assert len(owners) == len(world.users)
    assert "integration@syncer-sandbox.test" not in owners


def updates_for(people: list[Person], object_type: str, count: int,
                **values: str | None) -> list[RecordUpdate]:
    chosen = [p for p in people if p.object_type == object_type][:count]
    return [RecordUpdate(p.record_id, object_type, values) for p in chosen]


def test_push_writes_are_visible_and_read_back(connector: SalesforceConnector,
                                               sandbox: SalesforceSandbox) -> None:
    people = all_people(connector)
    values = {"Syncer_Stage__c": "MQL", "Syncer_Score__c": "42", "Syncer_Fit_Grade__c": "A",
              "Syncer_Reasons__c": "Attended a webinar; VP title"}
    updates = updates_for(people, "Lead", 3, **values) + \
        updates_for(people, "Contact", 2, **values)
    results = connector.push(updates)
    assert [(r.record_id, r.ok) for r in results] == [(u.record_id, True) for u in updates]
    for update in updates:
        record = sandbox.record(update.record_id)
        assert record["Syncer_Stage__c"] == "MQL" and record["Syncer_Score__c"] == 42.0
        assert record["Syncer_Reasons__c"] == values["Syncer_Reasons__c"]
    again = {p.record_id: p for p in all_people(connector)}
    assert again[updates[0].record_id].crm_values["Syncer_Score__c"] == "42"
    assert again[updates[-1].record_id].crm_values["Syncer_Fit_Grade__c"] == "A"


def test_push_reports_per_record_failures_in_order(connector: SalesforceConnector,
                                                   sandbox: SalesforceSandbox,
                                                   world: World) -> None:
    leads = [p for p in all_people(connector) if p.object_type == "Lead"]
    converted = next(r for r in sandbox.records(include_converted=True) if r["IsConverted"])
    inactive = next(o.owner_id for o in connector.owners() if not o.active)
    control(sandbox, "lock_rows", ids=[leads[3].record_id])
    calls_before = connector.api_calls
    results = connector.push([
        RecordUpdate(leads[0].record_id, "Lead", {"Syncer_Stage__c": "MQL"}),
        RecordUpdate(leads[1].record_id, "Lead", {"Syncer_Stage__c": "Warm"}),
        RecordUpdate(converted["Id"], "Lead", {"Syncer_Stage__c": "MQL"}),
        RecordUpdate(leads[3].record_id, "Lead", {"Syncer_Score__c": "10"}),
        RecordUpdate(leads[4].record_id, "Lead", {"OwnerId": inactive}),
        RecordUpdate(leads[5].record_id, "Lead", {"Syncer_Score__c": "high"}),
        RecordUpdate(leads[6].record_id, "Lead", {"Syncer_Reasons__c": "r" * 300}),
    ])
    assert connector.api_calls == calls_before + 1  # one composite call for the valid ones
    assert [r.record_id for r in results] == [
        leads[0].record_id, leads[1].record_id, converted["Id"], leads[3].record_id,
        leads[4].record_id, leads[5].record_id, leads[6].record_id]
    assert [(r.ok, r.error_code, r.retryable) for r in results] == [
        (True, None, False),
        (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", False),
        (False, "CANNOT_UPDATE_CONVERTED_LEAD", False),
        (False, "UNABLE_TO_LOCK_ROW", True),
        (False, "INACTIVE_OWNER_OR_USER", False),
        (False, "INVALID_VALUE", False),
        (False, "STRING_TOO_LONG", False)]
    assert [r.fields for r in results] == [
        (), ("Syncer_Stage__c",), (), (), ("OwnerId",), (), ("Syncer_Reasons__c",)]
    assert results[1].message and "Warm" in results[1].message
    assert sandbox.record(leads[0].record_id)["Syncer_Stage__c"] == "MQL"
    assert sandbox.record(leads[1].record_id)["Syncer_Stage__c"] == leads[1].crm_values[
        "Syncer_Stage__c"]


def test_push_batches_by_200(connector: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    people = all_people(connector)
    updates = [RecordUpdate(p.record_id, p.object_type, {"Syncer_Fit_Grade__c": "C"})
               for p in people]
    assert 200 < len(updates) <= 400
    results = connector.push(updates)
    assert [r.record_id for r in results] == [u.record_id for u in updates]
    assert all(r.ok for r in results)
    assert sandbox.call_counts[("PATCH", "composite/sobjects", 200)] == 2
    assert all(sandbox.record(u.record_id)["Syncer_Fit_Grade__c"] == "C" for u in updates)


def test_expired_session_is_refreshed_transparently(world: World) -> None:
    with SalesforceSandbox(world) as sandbox, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
        first = connector.owners()
        sandbox.expire_sessions()  # the session ends between two calls (no race with a TTL)
        assert connector.owners() == first
        assert sandbox.call_counts[("POST", "oauth2/token", 200)] == 2
        assert sandbox.call_counts[("GET", "query", 401)] == 1
        assert connector.api_calls == sum(sandbox.call_counts.values())


def test_transient_failures_are_retried(sandbox: SalesforceSandbox,
                                        connector: SalesforceConnector) -> None:
    sandbox.fail_next(2, status=503)
    assert len(connector.owners()) == 8
    lead = next(p for p in all_people(connector) if p.object_type == "Lead")
    sandbox.fail_next(1, status=400, error_code="UNABLE_TO_LOCK_ROW")
    assert connector.push([RecordUpdate(lead.record_id, "Lead", {"Syncer_Stage__c": "SAL"})])[
        0].ok
    assert sandbox.call_counts[("GET", "query", 503)] == 2
    assert sandbox.call_counts[("PATCH", "composite/sobjects", 400)] == 1
    assert connector.api_calls == sum(sandbox.call_counts.values())


def test_daily_limit_is_a_clear_error(world: World) -> None:
    with SalesforceSandbox(world, daily_api_limit=2) as sandbox, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
        connector.owners()
        connector.owners()
        with pytest.raises(ConnectorError, match="REQUEST_LIMIT_EXCEEDED"):
            connector.owners()
        assert sandbox.call_counts[("GET", "query", 403)] == 1  # not retried


def test_bad_credentials_never_leak_secrets(sandbox: SalesforceSandbox) -> None:
    secret = "very-secret-value-123"
    credentials = {**sandbox.credentials, "client_secret": secret}
    with SalesforceConnector(settings_for(sandbox, credentials=credentials),
                             retry=NO_WAIT) as connector, pytest.raises(ConnectorError) as raised:
        connector.owners()
    assert "invalid_client" in str(raised.value)
    assert secret not in str(raised.value)
    assert sandbox.credentials["refresh_token"] not in str(raised.value)


def test_session_id_credentials_are_used_directly(sandbox: SalesforceSandbox) -> None:
    with requests.Session() as session:
        session.verify, session.trust_env = sandbox.ca_file, False
        token = session.post(sandbox.base_url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", **sandbox.credentials}).json()["access_token"]
    settings = settings_for(sandbox, credentials={"session_id": token})
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        assert len(connector.owners()) == 9  # the API user is unknown without OAuth
        sandbox.expire_sessions()
        with pytest.raises(ConnectorError, match="no refresh token"):
            connector.owners()
    assert sandbox.call_counts[("POST", "oauth2/token", 200)] == 1


def test_misconfigured_writeback_field_fails_before_writing(sandbox: SalesforceSandbox) -> None:
    settings = settings_for(sandbox, writeback_fields=("Syncer_Stage__c", "Lead_Grade__c"))
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        with pytest.raises(ConnectorError, match="Lead_Grade__c"):
            list(connector.people())
        with pytest.raises(ConnectorError, match="Lead_Grade__c"):
            connector.push([RecordUpdate("00Q8c0000000001EAA", "Lead",
                                         {"Syncer_Stage__c": "MQL"})])
    assert sandbox.call_counts[("PATCH", "composite/sobjects", 200)] == 0
    read_only = settings_for(sandbox, writeback_fields=("CreatedDate",))
    with SalesforceConnector(read_only, retry=NO_WAIT) as connector:
        with pytest.raises(ConnectorError, match="read-only"):
            connector.push([RecordUpdate("00Q8c0000000001EAA", "Lead", {})])


def test_untrusted_certificate_is_a_config_error(sandbox: SalesforceSandbox) -> None:
    with SalesforceConnector(settings_for(sandbox, ca_file=None), retry=NO_WAIT) as connector:
        with pytest.raises(ConnectorError, match="ca_file"):
            connector.owners()
    assert sum(sandbox.call_counts.values()) == 0


# -- creating people -----------------------------------------------------------------------

def accounts(sandbox: SalesforceSandbox) -> list[dict[str, Any]]:
    return [sandbox.record(r["AccountId"]) for r in sandbox.records() if r["type"] == "Contact"]


def newcomers(sandbox: SalesforceSandbox) -> list[NewPerson]:
    """By name, by website domain, a free-mail address at a known company's domain, an
    unknown company, and nothing known but the email."""
    by_name, by_domain = accounts(sandbox)[:2]
    domain = by_domain["Website"].removeprefix("https://www.")
    return [
        NewPerson(key="p-name", email="ana@ana-mail.example", first_name="Ana",
                  last_name="Lima", title="CFO", company=by_name["Name"].upper(),
                  values={"Syncer_Stage__c": "MQL", "Syncer_Score__c": "72"}),
        NewPerson(key="p-domain", email=f"bo@{domain}", last_name="Berg", company="Other Name",
                  country="Sweden"),
        NewPerson(key="p-free", email="cy@gmail.com", last_name="Cole", company="Startup X",
                  industry="Software", employees=12, country="Chile"),
        NewPerson(key="p-bare", email="dee@unknown.example",
                  values={"Syncer_Reasons__c": "Requested a demo"}),
    ], [by_name["Id"], by_domain["Id"]]


def created(sandbox: SalesforceSandbox, results: list[CreateResult]) -> list[dict[str, Any]]:
    assert all(r.ok and not r.existed and r.record_id for r in results), results
    return [sandbox.record(str(r.record_id)) for r in results]


def test_create_account_match_makes_contacts_under_accounts_else_leads(
        connector: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    people, (name_account, domain_account) = newcomers(sandbox)
    results = connector.create(people)
    assert [(r.key, r.object_type) for r in results] == [
        ("p-name", "Contact"), ("p-domain", "Contact"), ("p-free", "Lead"), ("p-bare", "Lead")]
    ana, bo, cy, dee = created(sandbox, results)
    assert (ana["AccountId"], ana["FirstName"], ana["Title"], ana["Email"]) == (
        name_account, "Ana", "CFO", "ana@ana-mail.example")
    assert (ana["Syncer_Stage__c"], ana["Syncer_Score__c"]) == ("MQL", 72.0)
    assert (bo["AccountId"], bo["MailingCountry"]) == (domain_account, "Sweden")
    assert (cy["Company"], cy["Industry"], cy["NumberOfEmployees"], cy["Country"]) == (
        "Startup X", "Software", 12, "Chile")
    assert (dee["Company"], dee["LastName"], dee["Syncer_Reasons__c"]) == (
        "[not provided]", "[not provided]", "Requested a demo")
    assert cy["Status"] == "Open - Not Contacted" and not cy["IsConverted"]
    pulled = {p.record_id: p for p in all_people(connector)}
    assert pulled[str(results[0].record_id)].company == sandbox.record(name_account)["Name"]
    assert pulled[str(results[3].record_id)].email == "dee@unknown.example"
    # Account lookups: one batched query; then per chunk two email lookups and one insert.
    assert sandbox.call_counts[("POST", "composite/sobjects", 200)] == 1
    assert sandbox.call_counts[("GET", "query", 200)] == 1 + 2 + 2  # + people()'s two


@pytest.mark.parametrize(("rule", "expected"), [
    ("lead", ["Lead", "Lead", "Lead", "Lead"]),
    ("contact", ["Contact", "Contact", "Lead", "Lead"]),
])
def test_create_as_lead_or_contact(sandbox: SalesforceSandbox, rule: str,
                                   expected: list[str]) -> None:
    people, account_ids = newcomers(sandbox)
    settings = settings_for(sandbox, options={"page_size": 200, "create_as": rule})
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        results = connector.create(people)
        if rule == "lead":  # no Account is looked up
            assert sandbox.call_counts[("GET", "query", 200)] == 2
    assert [r.object_type for r in results] == expected
    records = created(sandbox, results)
    assert [r["type"] for r in records] == expected
    assert [r.get("AccountId") for r in records if r["type"] == "Contact"] == \
        account_ids[:expected.count("Contact")]
    assert all(r["Company"] for r in records if r["type"] == "Lead")


def test_create_keeps_the_owner_syncer_chose_despite_assignment_rules(
        world: World) -> None:
    with SalesforceSandbox(world, lead_assignment_rule=True) as sandbox, \
            SalesforceConnector(settings_for(sandbox, options={"create_as": "lead"}),
                                retry=NO_WAIT) as connector:
        rep = next(o.owner_id for o in connector.owners() if o.active)
        results = connector.create([
            NewPerson(key="routed", email="r@routed.example", values={"OwnerId": rep}),
            NewPerson(key="unrouted", email="u@routed.example")])
        owners = [sandbox.record(str(r.record_id))["OwnerId"] for r in results]
        assert owners == [rep, sandbox.seeder.integration_user]
        # Without the header, the org's rule would have taken the lead to its queue.
        with requests.Session() as session:
            session.verify, session.trust_env = sandbox.ca_file, False
            token = session.post(sandbox.base_url + "/services/oauth2/token", data={
                "grant_type": "refresh_token", **sandbox.credentials}).json()["access_token"]
            plain = Salesforce(instance_url=sandbox.base_url, session_id=token,
                               version="59.0", session=session)
            lead = plain.Lead.create({"LastName": "R", "Company": "C", "OwnerId": rep})["id"]
        assert sandbox.record(lead)["OwnerId"] == sandbox.seeder.queue


def test_create_rule_must_be_known(sandbox: SalesforceSandbox) -> None:
    settings = settings_for(sandbox, options={"create_as": "opportunity"})
    with SalesforceConnector(settings, retry=NO_WAIT) as connector, \
            pytest.raises(ConnectorError, match="create_as 'opportunity'"):
        connector.create([NewPerson(key="k", email="k@x.example")])
    assert sum(sandbox.call_counts.values()) == 0


def test_create_in_chunks_with_per_record_failures(sandbox: SalesforceSandbox) -> None:
    with SalesforceConnector(settings_for(sandbox, options={
            "page_size": 200, "create_as": "lead"}), retry=NO_WAIT) as connector:
        existing = next(p for p in all_people(connector) if p.object_type == "Lead")
        people = [NewPerson(key=f"k{n}", email=f"person{n}@bulk{n}.example", last_name=f"P{n}",
                            company=f"Bulk {n}") for n in range(203)]
        people[5] = NewPerson(key="k5", email="bad@bulk.example", company="Bulk",
                              values={"Syncer_Stage__c": "Warm"})
        people[150] = NewPerson(key="k150", email="worse@bulk.example",
                                values={"Syncer_Score__c": "high"})
        people[201] = NewPerson(key="k201", email=str(existing.email).upper())
        sandbox.fail_next(1, status=503)  # the first chunk's email lookup: the attempt is retried
        results = connector.create(people)
        assert [r.key for r in results] == [p.key for p in people]
        failures = {r.key: (r.error_code, r.message) for r in results if not r.ok}
        assert failures.keys() == {"k5", "k150"}
        assert failures["k5"][0] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert failures["k150"][0] == "INVALID_VALUE" and "Syncer_Score__c" in str(
            failures["k150"][1])
        assert (results[201].existed, results[201].record_id, results[201].object_type) == (
            True, existing.record_id, "Lead")
        made = [r for r in results if r.ok and not r.existed]
        assert len(made) == 200 and all(r.object_type == "Lead" for r in made)
        assert sandbox.call_counts[("POST", "composite/sobjects", 200)] == 2  # 200 + 1 records
        assert sandbox.call_counts[("GET", "query", 503)] == 1
        leads = [r for r in sandbox.records() if r["type"] == "Lead"
                 and str(r["Company"]).startswith("Bulk")]
        assert sorted(r["Id"] for r in leads) == sorted(str(r.record_id) for r in made)
        # Creating the same people again links every one of them instead of duplicating.
        again = connector.create([p for p, r in zip(people, results, strict=True) if r.ok])
        assert all(r.existed for r in again)
        assert [r.record_id for r in again] == [r.record_id for r in results if r.ok]
        assert sandbox.call_counts[("POST", "composite/sobjects", 200)] == 2


def test_first_pull_spends_no_extra_calls() -> None:
    """2,000 people pull in one token request, two describes and one page per type."""
    big = World(seed=3, size=2000, now=NOW)
    with SalesforceSandbox(big) as sandbox, SalesforceConnector(
            settings_for(sandbox, options={}), retry=NO_WAIT) as connector:
        people = all_people(connector)
        assert len(people) == sum(1 for p in big.people() if p.in_salesforce) > 1000
        assert connector.api_calls == 5 == sum(sandbox.call_counts.values())
        lead = next(p for p in people if p.object_type == "Lead")
        contacts = [p.record_id for p in people if p.object_type == "Contact"][:2]
        contact_id = result(sandbox, "convert", lead_id=lead.record_id)["contact_id"]
        control(sandbox, "merge", master_id=contacts[0], duplicate_ids=contacts[1:])
        again = {p.record_id for p in all_people(connector)}
        assert connector.api_calls == 5 + 2  # the describes are cached
        assert again == {p.record_id for p in people} - {lead.record_id, contacts[1]} | {
            contact_id}


# -- creation rules without a server ---------------------------------------------------------

def test_lookup_queries_quote_batch_and_match_literally() -> None:
    people = [NewPerson(key="q", email="x@a_b.example", company="O'Brien & 100% Sons")] + [
        NewPerson(key=f"n{n}", email=f"p{n}@gmail.com", company=f"Company number {n:04d} Ltd")
        for n in range(400)]
    queries = list(creation.account_queries(people))
    assert len(queries) > 1 and all(len(q) <= creation.QUERY_CHARS for q in queries)
    parsed = [soql.parse(q) for q in queries]
    names = {str(v.value) for p in parsed for part in _parts(p.where)
             if isinstance(part, soql.InList) for v in part.values}
    assert names == {p.company for p in people}
    likes = [part for p in parsed for part in _parts(p.where) if isinstance(part, soql.Like)]
    assert len(likes) == 1  # gmail.com is never an account's domain
    assert likes[0].pattern.fullmatch("https://www.a_b.example")
    assert not likes[0].pattern.fullmatch("https://www.aXb.example")
    emails = list(creation.email_queries([f"{'x' * 60}{n}@long.example" for n in range(300)]))
    assert {t for t, _ in emails} == {"Lead", "Contact"} and len(emails) > 2
    assert all(len(q) <= creation.QUERY_CHARS for _, q in emails)


def _parts(condition: soql.Condition | None) -> list[soql.Condition]:
    if isinstance(condition, soql.Junction):
        return [p for part in condition.parts for p in _parts(part)]
    return [] if condition is None else [condition]


def test_new_records_adapt_the_persons_fields_but_not_decided_values() -> None:
    fields = {f.name.lower(): f for f in (
        FieldInfo("LastName", "string", True, True, 80),
        FieldInfo("Company", "string", True, True, 255),
        FieldInfo("Title", "string", True, True, 10),
        FieldInfo("Industry", "picklist", True, True, 255, frozenset({"Software"})),
        FieldInfo("Email", "email", True, False, 80),
        FieldInfo("Syncer_Score__c", "double", True, True),
        FieldInfo("Syncer_Grade__c", "string", True, False, 2))}
    person = NewPerson(key="k", email="k@x.example", title="Chief Revenue Officer",
                       industry="Aerospace", values={"Syncer_Score__c": "42"})
    record = creation.new_record(person, "Lead", None, fields)
    assert record == {"attributes": {"type": "Lead"}, "LastName": "[not provided]",
                      "Company": "[not provided]", "Title": "Chief Reve",
                      "Syncer_Score__c": 42}  # Email not createable, Industry not allowed
    with pytest.raises(ValueError, match="Syncer_Score__c"):
        creation.new_record(NewPerson(key="k", email="k@x.example",
                                      values={"Syncer_Score__c": "high"}), "Lead", None, fields)
    with pytest.raises(ValueError, match="no field Bogus__c"):
        creation.new_record(NewPerson(key="k", email="k@x.example", values={"Bogus__c": "1"}),
                            "Lead", None, fields)
    graded = NewPerson(key="g", email="g@x.example", values={"Syncer_Grade__c": "A"})
    assert creation.not_createable([person, graded], fields) == ["Syncer_Grade__c"]
    assert creation.email_domain("Kim@Acme.Example") == "acme.example"
    assert creation.email_domain("kim@gmail.com") is None
    assert creation.website_domain("WWW.Acme.example/about") == "acme.example"
