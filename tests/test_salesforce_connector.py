"""The Salesforce connector against the sandbox over HTTPS, through simple-salesforce."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from connectors.base import ConnectorError, ConnectorSettings
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.sandbox import SalesforceSandbox
from connectors.sandbox_world import World
from syncer.domain import ActivityType, Person, RecordUpdate
from syncer.ratelimit import RetryPolicy

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
    sandbox.lock_rows(leads[3].record_id)
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
    with SalesforceSandbox(world, session_ttl_seconds=1.0) as sandbox, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
        first = connector.owners()
        time.sleep(1.2)
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
