"""HubSpot companies as syncer Accounts (issue 20, item 3): the connector's pull, write-back
and field setup, against the sandbox through the real hubspot-api-client.

Companies are made and edited through the running sandbox's control API (as an admin in
HubSpot's UI would), the account properties through the properties API (as `syncer setup`
would); what the connector reads and writes is checked through hubspot-api-client, what it
costs against the sandbox's request counts (control requests are not counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectWithAssociations
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from connectors.hubspot.company_mapping import normalized_domain
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.fields import HubSpotFields
from connectors.retry import RetryPolicy
from connectors.sandbox.faults import FaultConfig
from connectors.sandbox.hubspot.objects import company_id_for
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.world import IN_HUBSPOT, World
from syncer.domain.accounts import ACCOUNT_OBJECT_TYPES, Account
from syncer.domain.connector import ConnectorSettings
from syncer.domain.field_setup import FieldNeed
from syncer.domain.types import RecordUpdate
from syncer.run.setup_fields import set_up
from tests.sandbox_control import control, control_get, result

NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)
FAST_RETRY = RetryPolicy(attempts=10, initial=0.05, maximum=0.5)
ACCOUNT_FIELDS = ("syncer_account_grade", "syncer_account_score")
SEARCH = "/crm/v3/objects/<object_type>/search"
LIST = "/crm/v3/objects/<object_type>"


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(World(seed=31, size=40, now=NOW), search_cap=300)
    sandbox.start()
    properties = client(sandbox).crm.properties
    properties.groups_api.create("companies", PropertyGroupCreate(name="syncer",
                                                                  label="Syncer"))
    for name, kind in zip(ACCOUNT_FIELDS, ("string", "number"), strict=True):
        properties.core_api.create("companies", PropertyCreate(
            name=name, label=name, type=kind, group_name="syncer",
            field_type="text" if kind == "string" else "number"))
    yield sandbox
    sandbox.stop()


def client(sandbox: HubSpotSandbox) -> HubSpot:
    """hubspot-api-client pointed at the sandbox (shared/specs/CLIENTS.md)."""
    return HubSpot(access_token=sandbox.credentials["access_token"], retry=False,
                   host=sandbox.base_url)


def company(sandbox: HubSpotSandbox, record_id: str) -> SimplePublicObjectWithAssociations:
    """The company as the API serves it, with the account fields."""
    return client(sandbox).crm.companies.basic_api.get_by_id(
        record_id, properties=list(ACCOUNT_FIELDS))


def connect(sandbox: HubSpotSandbox, account_fields: tuple[str, ...] = ACCOUNT_FIELDS,
            **options: object) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=("syncer_score",),
        account_writeback_fields=account_fields, timeout_seconds=5.0,
        options={"retry_policy": FAST_RETRY, "search_cap": 300, **options}))


def make(sandbox: HubSpotSandbox, **values: str | None) -> str:
    """A company as an admin creates it (the control API); its id."""
    return str(result(sandbox, "create_company", **values)["id"])


def pulled(connector: HubSpotConnector, since: datetime | None = None) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for page in connector.accounts(since):
        for account in page:
            assert account.record_id not in found, "a company came twice"
            found[account.record_id] = account
    return found


def test_full_pull_maps_every_company_field(sandbox: HubSpotSandbox) -> None:
    owner_email, owner_id = next(iter(sandbox.owner_ids().items()))
    acme = make(sandbox, name="Acme", domain="https://WWW.Acme.com/about",
                industry="Software", numberofemployees="250", country="Germany",
                annualrevenue="1200000.5", hubspot_owner_id=owner_id,
                salesforceaccountid="001000000000001AAA", syncer_account_grade="B")
    bare = make(sandbox, name="Bare")
    connector = connect(sandbox)
    try:
        found = pulled(connector)
    finally:
        connector.close()
    assert set(found) == {acme, bare}
    account = found[acme]
    assert (account.source, account.name, account.domain, account.industry) == (
        "hubspot", "Acme", "acme.com", "Software")
    assert (account.employees, account.country, account.annual_revenue) == (
        250, "Germany", 1200000.5)
    assert (account.owner_id, account.owner_email) == (owner_id, owner_email)
    assert account.linked_ids == {"salesforce": "001000000000001AAA"}
    assert account.crm_values == {"syncer_account_grade": "B", "syncer_account_score": None}
    assert account.updated_at == company(sandbox, acme).updated_at
    assert found[bare].domain is None and found[bare].linked_ids == {}


@pytest.mark.parametrize(("raw", "clean"), [
    ("acme.com", "acme.com"), ("HTTP://www.Acme.COM", "acme.com"),
    ("https://shop.acme.co.uk:8443/x?y=1", "shop.acme.co.uk"), ("//acme.io/", "acme.io"),
    ("www.acme.com.", "acme.com"), ("  ", None), (None, None)])
def test_domain_is_normalized(raw: str | None, clean: str | None) -> None:
    assert normalized_domain(raw) == clean


def test_incremental_pull_returns_edited_companies_only(sandbox: HubSpotSandbox) -> None:
    edited, unedited = make(sandbox, name="Edited"), make(sandbox, name="Unedited")
    cursor = datetime.fromisoformat(control(sandbox, "clock", advance_seconds=5)["now"])
    result(sandbox, "edit_company", id=edited, field="industry", value="Retail")
    connector = connect(sandbox)
    try:
        found = pulled(connector, cursor)
    finally:
        connector.close()
    assert set(found) == {edited}
    assert found[edited].industry == "Retail"
    assert unedited not in found


def test_pull_pages_past_the_search_cap_and_costs_one_search_per_200(
        sandbox: HubSpotSandbox) -> None:
    count = 650  # above the sandbox's cap of 300: each query restarts from the last id
    made = {make(sandbox, name=f"Company {i}", domain=f"c{i}.example")
            for i in range(count)}
    connector = connect(sandbox)
    connector.owners()  # the pipeline reads owners once per sync, before accounts
    before = sandbox.calls()
    try:
        found = pulled(connector, NOW.replace(year=2000))
    finally:
        connector.close()
    assert set(found) == made
    searches = sandbox.calls("POST", SEARCH)
    assert searches == math.ceil(count / 200)
    assert sandbox.calls() - before == searches  # no owner, company or person requests


def test_the_sweep_lists_every_company_once_in_id_order_200_a_search(
        sandbox: HubSpotSandbox) -> None:
    """The accounts' reconciliation sweep (syncer/run/account_sweep.py): one search request
    a page of 200, in id order from the last id read, past the search cap (300 here), so a
    pass stopped after any page resumes from its position."""
    count = 450
    made = {make(sandbox, name=f"Company {i}", domain=f"c{i}.example")
            for i in range(count)}
    connector = connect(sandbox)
    connector.owners()  # the pipeline reads owners once per sync
    before = sandbox.calls()
    pages: list[list[Account]] = []
    position: str | None = None
    try:
        while True:
            page, position = connector.account_sweep_page(position)
            pages.append(page)
            if position is None:
                break
            assert position == page[-1].record_id  # where the next page starts
    finally:
        connector.close()
    ids = [a.record_id for page in pages for a in page]
    assert [len(page) for page in pages] == [200, 200, 50]
    assert set(ids) == made and len(ids) == count  # each company once
    assert ids == sorted(ids, key=int)
    assert sandbox.calls() - before == sandbox.calls("POST", SEARCH) == 3
    assert {a.source for a in pages[0]} == {"hubspot"}
    assert pages[0][0].crm_values == dict.fromkeys(ACCOUNT_FIELDS)


def test_full_pull_lists_100_a_page_and_reads_owners_once(sandbox: HubSpotSandbox) -> None:
    made = {make(sandbox, name=f"Company {i}") for i in range(230)}
    connector = connect(sandbox)
    try:
        found = pulled(connector)
    finally:
        connector.close()
    assert set(found) == made
    assert sandbox.calls("GET", LIST) == 3
    assert sandbox.calls("GET", "/crm/v3/owners/") == 2  # live and archived owners, once


def test_contacts_carry_their_primary_company_at_no_extra_request(
        sandbox: HubSpotSandbox) -> None:
    acme = make(sandbox, name="Acme", domain="acme.com")
    first, second = (record["id"] for record in control_get(sandbox, "records")["results"][:2])
    result(sandbox, "associate", id=first, company_id=acme)
    connector = connect(sandbox)
    try:
        people = {p.record_id: p for page in connector.people() for p in page}
        again, _ = connector.read_by_ids([first, second], NOW.replace(year=2000))
    finally:
        connector.close()
    assert people[first].account_id == acme
    assert people[second].account_id is None
    assert {p.record_id: p.account_id for p in again} == {first: acme, second: None}
    assert sandbox.calls(rule="/crm/v4/associations/<object_type>/<to_type>/batch/read") == 0


def test_company_write_back_lands_beside_contact_writes(sandbox: HubSpotSandbox) -> None:
    acme, globex = make(sandbox, name="Acme"), make(sandbox, name="Globex")
    contact = control_get(sandbox, "records")["results"][0]["id"]
    assert "companies" in ACCOUNT_OBJECT_TYPES
    connector = connect(sandbox)
    try:
        results = connector.push([
            RecordUpdate(acme, "companies", {"syncer_account_grade": "A"}),
            RecordUpdate(contact, "contact", {"syncer_score": "42"}),
            RecordUpdate(globex, "companies", {"syncer_account_score": "77"}),
            RecordUpdate(acme, "companies", {"syncer_account_score": "90"})])
    finally:
        connector.close()
    assert [(r.record_id, r.ok) for r in results] == [
        (acme, True), (contact, True), (globex, True), (acme, True)]
    assert _values(sandbox, acme) == {"syncer_account_grade": "A",
                                      "syncer_account_score": "90"}
    assert _values(sandbox, globex)["syncer_account_score"] == "77"
    assert control_get(sandbox, f"records/{contact}")["syncer_score"] == "42"
    assert sandbox.calls("POST", "/crm/v3/objects/<object_type>/batch/update") == 2


def _values(sandbox: HubSpotSandbox, record_id: str) -> Mapping[str, str | None]:
    properties = company(sandbox, record_id).properties
    return {name: properties.get(name) for name in ACCOUNT_FIELDS}


def test_partial_company_batch_failure_is_reported_per_record(
        sandbox: HubSpotSandbox) -> None:
    good, bad = make(sandbox, name="Good"), make(sandbox, name="Bad")
    connector = connect(sandbox)
    try:
        results = connector.push([
            RecordUpdate(good, "companies", {"syncer_account_score": "12"}),
            RecordUpdate(bad, "companies", {"syncer_account_score": "lots"}),
            RecordUpdate("39999999999", "companies", {"syncer_account_score": "1"})])
    finally:
        connector.close()
    ok, invalid, missing = results
    assert ok.ok and ok.record_id == good
    assert (invalid.ok, invalid.error_code, invalid.retryable, invalid.fields) == (
        False, "INVALID_NUMBER", False, ("syncer_account_score",))
    assert (missing.ok, missing.error_code) == (False, "OBJECT_NOT_FOUND")
    assert _values(sandbox, good)["syncer_account_score"] == "12"
    assert _values(sandbox, bad)["syncer_account_score"] is None


def test_pull_refuses_account_fields_the_portal_lacks(sandbox: HubSpotSandbox) -> None:
    make(sandbox, name="Acme")
    connector = HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), timeout_seconds=5.0,
        account_writeback_fields=("syncer_account_mqa",),
        options={"retry_policy": FAST_RETRY}))
    try:
        with pytest.raises(Exception, match=r"syncer_account_mqa.*syncer setup"):
            pulled(connector)
    finally:
        connector.close()


def test_setup_creates_account_fields_as_company_properties(sandbox: HubSpotSandbox) -> None:
    settings = ConnectorSettings(name="hubspot", kind="hubspot", base_url=sandbox.base_url,
                                 credentials=dict(sandbox.credentials), timeout_seconds=5.0)
    admin = HubSpotFields(settings)
    needs = [FieldNeed("syncer_account_mqa", "text", "Syncer account MQA", "MQA flag"),
             FieldNeed("syncer_account_grade", "text", "Syncer account grade", "grade")]
    try:
        report = set_up(admin, "hubspot", [], dry_run=False, account_needs=needs)
        again = set_up(admin, "hubspot", [], dry_run=False, account_needs=needs)
    finally:
        admin.close()
    assert report.created == ["companies.syncer_account_mqa"]  # the grade existed
    assert again.created == [] and again.lines == ["hubspot: all 2 fields present"]
    created = sandbox.api.objects.companies.properties["syncer_account_mqa"]
    assert (created.group_name, created.type, created.hubspot_defined) == (
        "syncer", "string", False)
    assert "syncer_account_mqa" not in sandbox.state.properties  # not on contacts


def test_a_world_with_companies_links_people_to_their_company() -> None:
    world = World(seed=31, size=60, now=NOW, hubspot_companies=True)
    with HubSpotSandbox(world) as sandbox:
        connector = connect(sandbox, account_fields=())
        try:
            accounts = pulled(connector)
            people = {p.record_id: p for page in connector.people() for p in page}
        finally:
            connector.close()
        seeded = sandbox.records()
    assert len(accounts) == world.companies
    for index in range(world.companies):
        account = accounts[company_id_for(index)]
        company = world.company(index)
        assert (account.name, account.domain, account.employees) == (
            company.name, company.domain, company.employees)
    expected = {contact_id_for(p.index): company_id_for(p.company_index)
                if p.domain == world.company(p.company_index).domain else None
                for p in world.people() if world.flags(p.index) & IN_HUBSPOT}
    assert {i: p.account_id for i, p in people.items()} == expected
    assert len(set(expected.values()) - {None}) > 3 and None in expected.values()
    # asked for nothing, the same world serves the same contacts, without companies
    with HubSpotSandbox(World(seed=31, size=60, now=NOW)) as plain:
        assert plain.api.objects.companies.live() == []
        assert [{**r, "associatedcompanyid": None} for r in seeded] == plain.records()


def test_company_requests_refused_as_rate_limited_are_retried(
        sandbox: HubSpotSandbox) -> None:
    """The companies APIs raise their own ApiException class (hubspot.crm.companies):
    it goes through the connector's one retry layer like the contacts', so a 429 on a
    company list, search or batch update is waited for and sent again, not raised."""
    acme, globex = make(sandbox, name="Acme"), make(sandbox, name="Globex")
    connector = connect(sandbox)
    sandbox.faults.config = FaultConfig(burst_every=2, burst_length=1)  # every 2nd: 429
    try:
        listed, searched = pulled(connector), pulled(connector, NOW.replace(year=2000))
        results = connector.push([RecordUpdate(acme, "companies",
                                               {"syncer_account_score": "61"})])
    finally:
        connector.close()
        sandbox.faults.config = FaultConfig()  # the checks below read with no 429s
    assert set(listed) == set(searched) == {acme, globex}
    assert [(r.record_id, r.ok) for r in results] == [(acme, True)]
    assert _values(sandbox, acme)["syncer_account_score"] == "61"
    assert sandbox.faults.counts()["burst_429"] >= 2
    assert connector.usage.rate_limited == sandbox.faults.counts()["burst_429"]
