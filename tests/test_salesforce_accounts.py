"""Salesforce Accounts (issue 20): the connector's pull, Contact.AccountId, the Account
write-back and custom fields on Account, against the sandbox over HTTPS through
simple-salesforce. Accounts are edited (and rows locked) through the running sandbox's
control API, as a rep's hand; what the connector wrote is read back the same way."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.fields import SalesforceFields
from connectors.salesforce.sales_activity import SALES_QUERIES
from connectors.sandbox.salesforce.schema import id_number
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.accounts import ACCOUNT_OBJECT_TYPES, Account
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.field_setup import FieldNeed
from syncer.domain.types import RecordUpdate
from syncer.run.setup_fields import set_up
from tests.sandbox_control import control_get, result

NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ACCOUNT_WRITEBACK = ("Syncer_Account_Score__c", "Syncer_Account_Grade__c")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, size=1500, now=NOW)  # 250 companies: 250 Accounts


@pytest.fixture
def sandbox(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as running:
        yield running


def settings_for(sandbox: SalesforceSandbox, **overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {
        "name": "sf-test", "kind": "salesforce", "base_url": sandbox.base_url,
        "credentials": dict(sandbox.credentials), "writeback_fields": ("Syncer_Stage__c",),
        "account_writeback_fields": ACCOUNT_WRITEBACK, "ca_file": sandbox.ca_file,
        "timeout_seconds": 10.0, "options": {}}
    values.update(overrides)
    return ConnectorSettings(**values)


@pytest.fixture
def connector(sandbox: SalesforceSandbox) -> Iterator[SalesforceConnector]:
    with SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as built:
        yield built


def queries(sandbox: SalesforceSandbox) -> int:
    """REST query calls (first pages and nextRecordsUrl pages) the sandbox answered."""
    return sum(n for (method, route, _), n in sandbox.call_counts.items()
               if method == "GET" and route in ("query", "query/<locator>"))


def account_rows(sandbox: SalesforceSandbox) -> list[dict[str, Any]]:
    return list(sandbox.org.rows("Account"))


def record(sandbox: SalesforceSandbox, record_id: str) -> dict[str, Any]:
    """One record of any type as the control API reads it (not API traffic)."""
    found: dict[str, Any] = control_get(sandbox, f"records/{record_id}")
    return found


def test_full_pull_maps_every_account_with_its_owner_email(
        connector: SalesforceConnector, sandbox: SalesforceSandbox, world: World) -> None:
    accounts = [a for page in connector.accounts() for a in page]
    assert len(accounts) == world.companies == 250
    assert queries(sandbox) == 1  # 250 Accounts: one page of 2,000
    users = {str(u["Id"]): str(u["Email"]).lower() for u in sandbox.org.rows("User")}
    by_id = {a.record_id: a for a in accounts}
    for row in account_rows(sandbox):
        account = by_id[str(row["Id"])]
        number = id_number(account.record_id)
        assert number is not None
        company = world.company(number - 1)  # Account n is the world's company n - 1
        assert account.source == "sf-test"
        assert account.name == row["Name"] == company.name
        assert account.domain == company.name.lower().replace(" ", "") + ".example"
        assert account.industry == (company.industry or None)
        assert account.employees == company.employees
        assert account.country == (company.country or None)
        assert account.annual_revenue is None  # not set in the seeded org
        assert account.owner_id == row["OwnerId"]
        assert account.owner_email == users[str(row["OwnerId"])]
        assert account.updated_at is not None
        assert account.crm_values == {"Syncer_Account_Score__c": None,
                                      "Syncer_Account_Grade__c": None}


def test_incremental_pull_returns_what_changed_and_nothing_else(
        connector: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    rows = account_rows(sandbox)
    edited, other = str(rows[3]["Id"]), str(rows[7]["Id"])
    since = datetime.fromisoformat(control_get(sandbox, "clock")["now"])
    assert [a for page in connector.accounts(since) for a in page] == []
    result(sandbox, "edit_account", id=edited, fields={
        "AnnualRevenue": 2500000, "Website": "HTTPS://WWW.Renamed.Example/about?x=1"})
    changed = [a for page in connector.accounts(since) for a in page]
    assert [a.record_id for a in changed] == [edited]
    assert changed[0].annual_revenue == 2_500_000.0
    assert changed[0].domain == "renamed.example"
    assert other not in {a.record_id for a in changed}
    after = changed[0].updated_at
    assert after is not None and after >= since.replace(microsecond=0)
    assert [a for page in connector.accounts(after + timedelta(seconds=1))
            for a in page] == []


def test_pull_pages_through_next_records_url(sandbox: SalesforceSandbox) -> None:
    settings = settings_for(sandbox, options={"page_size": 200})
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        before = queries(sandbox)
        pages = list(connector.accounts(NOW - timedelta(days=3650)))
    assert [len(page) for page in pages] == [200, 50]
    assert queries(sandbox) - before == math.ceil(250 / 200)
    stamps = [a.updated_at for page in pages for a in page]
    assert stamps == sorted(stamps)  # oldest first: a cursor from a page never skips
    assert len({a.record_id for page in pages for a in page}) == 250


def test_thousands_of_accounts_cost_one_query_per_two_thousand() -> None:
    world = World(seed=3, size=12_600, now=NOW)  # 2,100 Accounts
    with SalesforceSandbox(world) as sandbox, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
        full = [a for page in connector.accounts() for a in page]
        assert len(full) == 2100 and queries(sandbox) == math.ceil(2100 / 2000)
        before = queries(sandbox)
        changed = [a for page in connector.accounts(NOW - timedelta(days=3650))
                   for a in page]
        assert len(changed) == 2100 and queries(sandbox) - before == 2
        # nothing per person: the people of the world never came into it
        assert sum(sandbox.call_counts.values()) == \
            queries(sandbox) + sandbox.call_counts[("GET", "sobjects/<type>/describe", 200)] + \
            sandbox.call_counts[("POST", "oauth2/token", 200)]


def test_the_sweep_lists_every_account_once_in_id_order_2000_a_query() -> None:
    """The accounts' reconciliation sweep (syncer/run/account_sweep.py): one REST query a
    page of 2,000 (`Id > :last ORDER BY Id`), so a pass stopped after any page resumes
    from its position and reads no page twice."""
    world = World(seed=3, size=12_600, now=NOW)  # 2,100 Accounts
    with SalesforceSandbox(world) as sandbox, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
        first, position = connector.account_sweep_page(None)
        assert position == first[-1].record_id and queries(sandbox) == 1
        rest, done = connector.account_sweep_page(position)
        assert done is None and queries(sandbox) == 2
        edited = str(account_rows(sandbox)[-1]["Id"])
        result(sandbox, "edit_account", id=edited, fields={"AnnualRevenue": 99.5})
        again, _ = connector.account_sweep_page(position)  # the same position: that page
        # nothing but the queries (and the sign-in): no describe unless a query fails
        assert sum(sandbox.call_counts.values()) == \
            queries(sandbox) + sandbox.call_counts[("POST", "oauth2/token", 200)]
    ids = [a.record_id for a in [*first, *rest]]
    assert (len(first), len(rest)) == (2000, 100)
    assert ids == sorted(ids) and len(set(ids)) == 2100
    assert set(ids) == {str(row["Id"]) for row in account_rows(sandbox)}
    assert [a.record_id for a in again] == ids[2000:]
    assert {a.record_id: a.annual_revenue for a in again}[edited] == 99.5
    assert all(a.owner_email for a in first)


def test_full_pull_above_the_threshold_reads_a_bulk_job(sandbox: SalesforceSandbox) -> None:
    options = {"bulk_query_threshold": 100, "bulk_poll_seconds": 0.0,
               "bulk_max_records": 120}
    with SalesforceConnector(settings_for(sandbox, options=options), retry=NO_WAIT) as bulk, \
            SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as rest:
        result(sandbox, "edit_account", id=str(account_rows(sandbox)[0]["Id"]),
               fields={"AnnualRevenue": 1200.5})
        by_bulk = sorted((a for page in bulk.accounts() for a in page),
                         key=lambda a: a.record_id)
        by_rest = sorted((a for page in rest.accounts() for a in page),
                         key=lambda a: a.record_id)
    jobs = list(sandbox.bulk.jobs.values())
    assert len(jobs) == 1 and jobs[0].deleted  # read to the end, then deleted
    assert by_bulk == by_rest and len(by_bulk) == 250
    assert by_bulk[0].annual_revenue == 1200.5 and by_bulk[0].owner_email


def test_contacts_carry_their_account_id_and_leads_none(
        connector: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    people = [p for page in connector.people() for p in page]
    stored = {str(r["Id"]): r for r in sandbox.records()}
    contacts = [p for p in people if p.object_type == "Contact"]
    assert contacts and all(p.account_id == stored[p.record_id]["AccountId"]
                            for p in contacts)
    assert all(p.account_id is None for p in people if p.object_type == "Lead")
    ids = [contacts[0].record_id, next(p.record_id for p in people
                                        if p.object_type == "Lead")]
    before = queries(sandbox)
    again, _ = connector.read_by_ids(ids, NOW + timedelta(days=3650))
    assert {p.record_id: p.account_id for p in again} == {
        ids[0]: contacts[0].account_id, ids[1]: None}
    # the account id rides on the Contact query: one query per object (Lead, Contact),
    # then the activity queries (CampaignMember, Task, Event, Opportunity), nothing more
    assert queries(sandbox) - before == 2 + 2 + len(SALES_QUERIES)
    since = NOW - timedelta(days=3650)
    changed = {p.record_id: p.account_id for page in connector.people(since) for p in page}
    assert changed[ids[0]] == contacts[0].account_id


def test_contacts_account_id_by_bulk_job(sandbox: SalesforceSandbox) -> None:
    options = {"bulk_query_threshold": 0, "bulk_poll_seconds": 0.0}
    with SalesforceConnector(settings_for(sandbox, options=options), retry=NO_WAIT) as bulk:
        people = [p for page in bulk.people() for p in page]
    stored = {str(r["Id"]): r for r in sandbox.records()}
    contacts = [p for p in people if p.object_type == "Contact"]
    assert contacts and all(p.account_id == stored[p.record_id]["AccountId"]
                            for p in contacts)


def test_account_write_back_lands_and_reads_back(connector: SalesforceConnector,
                                                 sandbox: SalesforceSandbox) -> None:
    assert "Account" in ACCOUNT_OBJECT_TYPES
    rows = account_rows(sandbox)
    first, second = str(rows[0]["Id"]), str(rows[1]["Id"])
    person = next(r for r in sandbox.records() if r["type"] == "Contact")
    results = connector.push([
        RecordUpdate(first, "Account", {"Syncer_Account_Score__c": "72.5",
                                        "Syncer_Account_Grade__c": "A"}),
        RecordUpdate(str(person["Id"]), "Contact", {"Syncer_Stage__c": "MQL"}),
        RecordUpdate(second, "Account", {"syncer_account_grade__c": "C"})])
    assert [(r.record_id, r.ok) for r in results] == [(first, True), (str(person["Id"]), True),
                                                      (second, True)]
    assert sandbox.call_counts[("PATCH", "composite/sobjects", 200)] == 1  # one batch
    written = record(sandbox, first)
    assert (written["Syncer_Account_Score__c"], written["Syncer_Account_Grade__c"]) == (
        72.5, "A")
    assert record(sandbox, second)["Syncer_Account_Grade__c"] == "C"
    assert record(sandbox, str(person["Id"]))["Syncer_Stage__c"] == "MQL"
    pulled = {a.record_id: a for page in connector.accounts() for a in page}
    assert pulled[first].crm_values == {"Syncer_Account_Score__c": "72.5",
                                        "Syncer_Account_Grade__c": "A"}


def test_account_write_failures_are_per_record(connector: SalesforceConnector,
                                               sandbox: SalesforceSandbox) -> None:
    rows = account_rows(sandbox)
    good, too_long, locked = (str(rows[i]["Id"]) for i in range(3))
    assert result(sandbox, "lock_rows", ids=[locked]) == {"locked": [locked]}
    results = connector.push([
        RecordUpdate(good, "Account", {"Syncer_Account_Grade__c": "B"}),
        RecordUpdate(too_long, "Account", {"Syncer_Account_Grade__c": "way too long"}),
        RecordUpdate(locked, "Account", {"Syncer_Account_Grade__c": "D"}),
        RecordUpdate(good, "Account", {"Syncer_Account_Score__c": "not a number"})])
    by_outcome = [(r.record_id, r.ok, r.error_code, r.retryable) for r in results]
    assert by_outcome == [
        (good, True, None, False), (too_long, False, "STRING_TOO_LONG", False),
        (locked, False, "UNABLE_TO_LOCK_ROW", True), (good, False, "INVALID_VALUE", False)]
    assert results[1].fields == ("Syncer_Account_Grade__c",)
    assert record(sandbox, good)["Syncer_Account_Grade__c"] == "B"
    assert record(sandbox, too_long)["Syncer_Account_Grade__c"] is None
    assert record(sandbox, locked)["Syncer_Account_Grade__c"] is None


def test_an_account_writeback_field_the_org_lacks_is_named(sandbox: SalesforceSandbox) -> None:
    settings = settings_for(sandbox, account_writeback_fields=("Syncer_Acount_Score__c",))
    with SalesforceConnector(settings, retry=NO_WAIT) as connector:
        for pull in (lambda: list(connector.accounts()),
                     lambda: list(connector.accounts(NOW)),
                     lambda: connector.push([RecordUpdate(
                         str(account_rows(sandbox)[0]["Id"]), "Account",
                         {"Syncer_Acount_Score__c": "1"})])):
            with pytest.raises(ConnectorError) as failed:
                pull()
            assert "Syncer_Acount_Score__c" in str(failed.value)
            assert "account_writeback_fields" in str(failed.value)
    with pytest.raises(ConnectorError, match="account_writeback_fields"):
        SalesforceConnector(settings_for(sandbox, account_writeback_fields=("bad name",)))


def test_setup_creates_custom_fields_on_account() -> None:
    world = World(seed=2, size=60, now=NOW, syncer_fields=False)
    needs = [FieldNeed("Syncer_Account_Score__c", "number", "Syncer account score",
                       "Account score written by syncer", scale=2),
             FieldNeed("Syncer_Account_Grade__c", "text", "Syncer account grade",
                       "Account grade written by syncer", length=8)]
    with SalesforceSandbox(world) as sandbox:
        admin = SalesforceFields(settings_for(sandbox))
        try:
            assert admin.account_objects == ("Account",)
            dry = set_up(admin, "sf", [], dry_run=True, account_needs=needs)
            assert dry.created == [] and len(dry.lines) == 2
            report = set_up(admin, "sf", [], dry_run=False, account_needs=needs)
            assert report.created == ["Account.Syncer_Account_Score__c",
                                      "Account.Syncer_Account_Grade__c"]
            assert {"syncer_account_score__c", "syncer_account_grade__c"} <= \
                admin.present("Account")
            again = set_up(admin, "sf", [], dry_run=False, account_needs=needs)
            assert again.created == [] and again.lines == ["sf: all 2 fields present"]
        finally:
            admin.close()
        with SalesforceConnector(settings_for(sandbox), retry=NO_WAIT) as connector:
            account = next(a for page in connector.accounts() for a in page)
            assert isinstance(account, Account)
            assert connector.push([RecordUpdate(account.record_id, "Account",
                                                {"Syncer_Account_Grade__c": "B"})])[0].ok
