"""Conformance of the Salesforce sandbox, driven through the real simple-salesforce client
over HTTPS, plus the SOQL parser's quoting guarantees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.sandbox.faults import SalesforceLimits
from connectors.sandbox.salesforce import results as sandbox_results
from connectors.sandbox.salesforce import soql
from connectors.sandbox.salesforce.schema import format_datetime, make_id
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from tests.sandbox_control import control

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
STAGES = ["Subscriber", "Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer"]


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, size=500, now=NOW)


@pytest.fixture(scope="module")
def shared(world: World) -> Iterator[SalesforceSandbox]:
    """A sandbox for read-only tests (no test may write to it)."""
    sandbox = SalesforceSandbox(world)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def fresh(world: World) -> Iterator[SalesforceSandbox]:
    """A sandbox of its own for tests that write."""
    sandbox = SalesforceSandbox(world)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def http_session(sandbox: SalesforceSandbox) -> requests.Session:
    session = requests.Session()
    session.verify = sandbox.ca_file
    session.trust_env = False
    return session


def token_for(sandbox: SalesforceSandbox, session: requests.Session) -> str:
    response = session.post(sandbox.base_url + "/services/oauth2/token",
                            data={"grant_type": "refresh_token", **sandbox.credentials})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Client:
    """A simple-salesforce client on its own session, closed by the fixture."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.session = http_session(sandbox)
        self.sf = Salesforce(instance_url=sandbox.base_url,
                             session_id=token_for(sandbox, self.session), version="59.0",
                             session=self.session)


@pytest.fixture
def sf(shared: SalesforceSandbox) -> Iterator[Salesforce]:
    client = Client(shared)
    yield client.sf
    client.session.close()


@pytest.fixture
def wsf(fresh: SalesforceSandbox) -> Iterator[Salesforce]:
    client = Client(fresh)
    yield client.sf
    client.session.close()


def error_code(error: Exception) -> str:
    content: Any = error.content  # type: ignore[attr-defined]
    return str(content[0]["errorCode"])


def world_emails(world: World, object_type: str) -> set[str]:
    return {p.email for p in world.people()
            if p.in_salesforce and p.salesforce_object == object_type}


# -- OAuth -----------------------------------------------------------------------------

def test_token_endpoint_issues_a_signed_session(shared: SalesforceSandbox) -> None:
    with http_session(shared) as session:
        response = session.post(shared.base_url + "/services/oauth2/token",
                                data={"grant_type": "refresh_token", **shared.credentials})
        body = response.json()
        assert response.status_code == 200
        assert body["token_type"] == "Bearer"
        assert body["instance_url"] == shared.base_url
        expected = base64.b64encode(hmac.new(
            shared.credentials["client_secret"].encode(),
            (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()).decode()
        assert body["signature"] == expected
        sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                        version="59.0", session=session)
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 9


@pytest.mark.parametrize(("change", "expected"), [
    ({"client_secret": "wrong"}, "invalid_client"),
    ({"client_id": "someone-else"}, "invalid_client_id"),
    ({"refresh_token": "stale"}, "invalid_grant"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
])
def test_token_endpoint_refuses_bad_credentials(shared: SalesforceSandbox,
                                                change: dict[str, str], expected: str) -> None:
    form = {"grant_type": "refresh_token", **shared.credentials, **change}
    with http_session(shared) as session:
        response = session.post(shared.base_url + "/services/oauth2/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == expected
    assert "access_token" not in response.json()


# -- query -------------------------------------------------------------------------------

def test_query_pages_follow_next_records_url(sf: Salesforce, world: World) -> None:
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id, Email FROM Lead WHERE IsConverted = false", headers=headers)
    leads = world_emails(world, "Lead")
    assert len(leads) > 200
    assert first["totalSize"] == len(leads)
    assert first["done"] is False and len(first["records"]) == 200
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-200", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
    assert second["done"] is True and "nextRecordsUrl" not in second
    records = first["records"] + second["records"]
    assert {r["Email"] for r in records} == leads
    assert len({r["Id"] for r in records}) == len(leads)
    assert all(r["attributes"] == {"type": "Lead",
                                   "url": f"/services/data/v59.0/sobjects/Lead/{r['Id']}"}
               for r in records)


def test_query_all_counts_match_the_world(sf: Salesforce, world: World) -> None:
    contacts = sf.query_all("SELECT Id, Email FROM Contact")
    assert {r["Email"] for r in contacts["records"]} == world_emails(world, "Contact")
    deleted_too = sf.query_all("SELECT Id FROM Lead WHERE IsConverted = false",
                               include_deleted=True)
    assert deleted_too["totalSize"] == len(world_emails(world, "Lead"))
    members = sf.query_all("SELECT Id FROM CampaignMember",
                           headers={"Sforce-Query-Options": "batchSize=250"})
    tasks = sf.query_all("SELECT Id FROM Task")
    salesforce_activities = [a for p in world.people() if p.in_salesforce
                             for a in p.activities if a.channel == "salesforce"]
    assert members["totalSize"] + tasks["totalSize"] == len(salesforce_activities)


def test_default_page_is_2000_records(sf: Salesforce) -> None:
    page = sf.query("SELECT Id FROM CampaignMember")
    assert len(page["records"]) == min(2000, page["totalSize"])


def test_every_salesforce_activity_is_one_row_at_its_time(sf: Salesforce, world: World) -> None:
    members = sf.query_all("SELECT Id, Lead.Email, Contact.Email, Status, Campaign.Type, "
                           "Campaign.Name, CreatedDate FROM CampaignMember")["records"]
    tasks = sf.query_all("SELECT Id, WhoId, Subject, Type, CreatedDate FROM Task")["records"]
    emails = {r["Id"]: r["Email"] for r in sf.query_all(
        "SELECT Id, Email FROM Lead")["records"] + sf.query_all(
        "SELECT Id, Email FROM Contact")["records"]}
    seen = Counter(((m["Contact"] or m["Lead"])["Email"], m["CreatedDate"]) for m in members)
    seen.update((emails[t["WhoId"]], t["CreatedDate"]) for t in tasks)
    expected = Counter((p.email, format_datetime(a.occurred_at)) for p in world.people()
                       if p.in_salesforce for a in p.activities if a.channel == "salesforce")
    assert seen == expected
    assert {m["Campaign"]["Type"] for m in members} <= {"Webinar", "Content", "Email",
                                                        "Website"}
    assert all(t["Type"] == "Web Activity" and t["Subject"].startswith("Visited page: https://")
               for t in tasks)


def test_relationship_fields_are_nested_objects(sf: Salesforce, world: World) -> None:
    people = {p.email: p for p in world.people()}
    contacts = sf.query_all("SELECT Id, Email, Account.Name, Account.Industry, "
                            "Account.NumberOfEmployees, Owner.Name FROM Contact")["records"]
    for contact in contacts:
        person = people[contact["Email"]]
        assert contact["Account"]["attributes"]["type"] == "Account"
        assert contact["Account"]["Name"] == person.company
        assert contact["Account"]["Industry"] == (person.industry or None)
        assert contact["Account"]["NumberOfEmployees"] == person.employees
        assert contact["Owner"]["Name"]
    lead = sf.query("SELECT Id, ConvertedContact.Email FROM Lead WHERE IsConverted = false "
                    "LIMIT 1")["records"][0]
    assert lead["ConvertedContact"] is None
    converted = sf.query_all("SELECT Id, Email, ConvertedContact.Email FROM Lead "
                             "WHERE IsConverted = true")["records"]
    assert converted and all(r["ConvertedContact"]["Email"] == r["Email"] for r in converted)


def rows(sandbox: SalesforceSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.records() if r["type"] == "Lead"]


def ids(result: dict[str, Any]) -> list[str]:
    return [r["Id"] for r in result["records"]]


def test_where_semantics_match_soql(sf: Salesforce, shared: SalesforceSandbox) -> None:
    leads = rows(shared)
    base = "SELECT Id FROM Lead WHERE IsConverted = false AND "

    def check(where: str, predicate: Any) -> None:
        expected = {r["Id"] for r in leads if predicate(r)}
        assert 0 < len(expected) < len(leads), where  # the filter must discriminate
        got = set(ids(sf.query_all(base + where)))
        assert got == expected, where
    check("Country = 'GERMANY'", lambda r: r["Country"] == "Germany")
    check("Industry != 'Software'", lambda r: r["Industry"] != "Software")
    check("Title = null", lambda r: r["Title"] is None)
    check("Title != null", lambda r: r["Title"] is not None)
    check("NumberOfEmployees >= 100", lambda r: r["NumberOfEmployees"] >= 100)
    check("NumberOfEmployees < 20.5", lambda r: r["NumberOfEmployees"] < 20.5)
    check("(Industry = 'Software' OR Industry = 'Retail') AND NumberOfEmployees > 50",
          lambda r: r["Industry"] in ("Software", "Retail") and r["NumberOfEmployees"] > 50)
    check("Country IN ('france', 'Spain')", lambda r: r["Country"] in ("France", "Spain"))
    check("Country NOT IN ('France', 'Spain')",
          lambda r: r["Country"] is not None and r["Country"] not in ("France", "Spain"))
    check("NOT Country = 'France'", lambda r: r["Country"] != "France")
    check("Email LIKE '%analytics%'", lambda r: "analytics" in r["Email"])
    check("Email LIKE 'a_a.%'", lambda r: re.match(r"^a.a\.", r["Email"]) is not None)
    cutoff = NOW - timedelta(days=400)
    check(f"CreatedDate >= {cutoff:%Y-%m-%dT%H:%M:%S}Z",
          lambda r: r["CreatedDate"] >= format_datetime(cutoff))
    check(f"CreatedDate < {cutoff:%Y-%m-%dT%H:%M:%S}.000+00:00",
          lambda r: r["CreatedDate"] < format_datetime(cutoff))
    check("Syncer_Stage__c IN ('SQL', 'Opportunity', 'Customer')",
          lambda r: r["Syncer_Stage__c"] in ("SQL", "Opportunity", "Customer"))


def test_escaped_strings_match_exactly(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    lead = rows(fresh)[0]
    control(fresh, "edit", id=lead["Id"], field="LastName", value="O'Brien \\ 100%_done")
    query = ("SELECT Id, LastName FROM Lead WHERE LastName = " +
             soql.quote("O'Brien \\ 100%_done"))
    assert ids(wsf.query(query)) == [lead["Id"]]
    assert ids(wsf.query(r"SELECT Id FROM Lead WHERE LastName LIKE '%100\%\_done'")) == \
        [lead["Id"]]
    assert ids(wsf.query(r"SELECT Id FROM Lead WHERE LastName LIKE '%100\%X%'")) == []


def test_order_by_limit_offset(sf: Salesforce, shared: SalesforceSandbox) -> None:
    leads = [r for r in rows(shared)]
    result = sf.query("SELECT Id, NumberOfEmployees, Email FROM Lead WHERE IsConverted = false "
                      "ORDER BY NumberOfEmployees DESC, Email ASC LIMIT 25 OFFSET 5")
    expected = sorted(leads, key=lambda r: (-r["NumberOfEmployees"], r["Email"].lower()))
    assert ids(result) == [r["Id"] for r in expected[5:30]]
    assert result["totalSize"] == 25
    ascending = sf.query_all("SELECT Id, Title FROM Lead WHERE IsConverted = false "
                             "ORDER BY Title, Id")["records"]
    titles = [r["Title"] for r in ascending]
    nulls = titles.count(None)
    assert nulls and titles[:nulls] == [None] * nulls
    assert titles[nulls:] == sorted(titles[nulls:], key=str.lower)
    descending = sf.query_all("SELECT Id, Title FROM Lead WHERE IsConverted = false "
                              "ORDER BY Title DESC")["records"]
    assert descending[-1]["Title"] is None and descending[0]["Title"] is not None
    nulls_first = sf.query("SELECT Id, Title FROM Lead ORDER BY Title DESC NULLS FIRST LIMIT 1")
    assert nulls_first["records"][0]["Title"] is None


def test_count_query(sf: Salesforce, world: World) -> None:
    result = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")
    assert result == {"totalSize": len(world_emails(world, "Lead")), "done": True,
                      "records": []}


@pytest.mark.parametrize("query", [
    "SELECT FROM Lead",
    "SELECT Id FROM Lead WHERE",
    "SELECT Id FROM Lead WHERE Country = 'x' AND Title = 'y' OR Email = 'z'",
    "SELECT Id FROM Lead GROUP BY Id",
    "SELECT Id, id FROM Lead",
    "SELECT Id FROM Lead WHERE Email = 'unterminated",
    "SELECT Id FROM Lead WHERE Email = 'bad \\q escape'",
    "SELECT Id FROM Lead LIMIT ten",
    "SELECT Id FROM Lead WHERE CreatedDate > LAST_N_DAYS:",  # LAST_N_DAYS without its n
    "SELECT Id FROM Lead ORDER BY",
    "DELETE FROM Lead",
])
def test_malformed_queries(sf: Salesforce, query: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(query)
    assert error_code(raised.value) == "MALFORMED_QUERY"


@pytest.mark.parametrize(("query", "code"), [
    ("SELECT Id, Bogus__c FROM Lead", "INVALID_FIELD"),
    ("SELECT Id, Account.Bogus FROM Contact", "INVALID_FIELD"),
    ("SELECT Id, Nope.Name FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2026-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE OwnerId = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
])
def test_invalid_fields_and_types(sf: Salesforce, query: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(query)
    assert error_code(raised.value) == code


def test_unknown_query_locator(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_more("01g8c0000000zzzAAA-200")
    assert error_code(raised.value) == "INVALID_QUERY_LOCATOR"


# -- describe and limits ---------------------------------------------------------------

def test_describe_lists_fields_with_types_and_picklists(sf: Salesforce) -> None:
    lead = sf.restful("sobjects/Lead/describe")
    fields = {f["name"]: f for f in lead["fields"]}
    assert lead["keyPrefix"] == "00Q"
    stage = fields["Syncer_Stage__c"]
    assert stage["type"] == "picklist" and stage["updateable"] and stage["restrictedPicklist"]
    assert [p["value"] for p in stage["picklistValues"]] == STAGES
    assert fields["Syncer_Reasons__c"]["length"] == 255
    assert fields["Syncer_Fit_Grade__c"]["length"] == 2
    assert fields["Syncer_Score__c"]["type"] == "double"
    assert fields["CreatedDate"]["updateable"] is False
    assert fields["Address"]["type"] == "address"
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"]
    for field in lead["fields"]:
        assert {"name", "type", "updateable", "createable", "nillable", "length",
                "picklistValues"} <= field.keys()
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert contact["AccountId"]["relationshipName"] == "Account"
    assert "Company" not in contact and "MailingCountry" in contact
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Account", "User", "CampaignMember", "Task"} <= names


def test_limits_and_api_usage_header(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    wsf.query("SELECT Id FROM User LIMIT 1")
    first = wsf.api_usage["api-usage"]
    wsf.query("SELECT Id FROM User LIMIT 1")
    second = wsf.api_usage["api-usage"]
    assert (first.total, second.total) == (100_000, 100_000)
    assert second.used == first.used + 1 == fresh.api_used
    limits = wsf.limits()
    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - fresh.api_used}


def test_daily_limit_answers_request_limit_exceeded(world: World) -> None:
    with SalesforceSandbox(world, daily_api_limit=3) as sandbox:
        client = Client(sandbox)
        for _ in range(3):
            client.sf.query("SELECT Id FROM User LIMIT 1")
        with pytest.raises(SalesforceRefusedRequest) as raised:
            client.sf.query("SELECT Id FROM User LIMIT 1")
        client.session.close()
    assert raised.value.status == 403
    assert raised.value.content == [{"message": "TotalRequests Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sandbox.call_counts[("GET", "query", 403)] == 1


def test_expired_and_unknown_sessions_answer_401(world: World) -> None:
    with SalesforceSandbox(world, session_ttl_seconds=3600) as sandbox:
        client = Client(sandbox)
        assert client.sf.query("SELECT COUNT() FROM User")["totalSize"] == 9
        sandbox.session_ttl_seconds = 0.0  # the session is now older than the TTL: no sleep
        with pytest.raises(SalesforceExpiredSession) as raised:
            client.sf.query("SELECT COUNT() FROM User")
        stranger = Salesforce(instance_url=sandbox.base_url, session_id="00Dbogus!token",
                              version="59.0", session=client.session)
        with pytest.raises(SalesforceExpiredSession):
            stranger.query("SELECT COUNT() FROM User")
        client.session.close()
    assert raised.value.content == [{"message": "Session expired or invalid",
                                     "errorCode": "INVALID_SESSION_ID"}]


# -- writes ------------------------------------------------------------------------------

def collection(records: list[dict[str, Any]], all_or_none: bool = False) -> dict[str, Any]:
    return {"allOrNone": all_or_none, "records": records}


def lead_update(record_id: str, **values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "id": record_id, **values}


def pick(sandbox: SalesforceSandbox, count: int, **match: Any) -> list[dict[str, Any]]:
    found = [r for r in sandbox.records(include_converted=True)
             if all(r.get(k) == v for k, v in match.items())]
    assert len(found) >= count
    return found[:count]


def test_collection_update_writes_and_bumps_modstamp(fresh: SalesforceSandbox,
                                                     wsf: Salesforce) -> None:
    leads = pick(fresh, 2, type="Lead", IsConverted=False)
    contact = pick(fresh, 1, type="Contact")[0]
    rep = next(r for r in wsf.query_all("SELECT Id FROM User WHERE IsActive = true AND "
                                        "Email LIKE '%syncer-sandbox.test'")["records"])
    before = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=1))
    results = wsf.restful("composite/sobjects", method="PATCH", json=collection([
        lead_update(leads[0]["Id"], Syncer_Stage__c="MQL", Syncer_Score__c=87,
                    Syncer_Fit_Grade__c="A", Syncer_Reasons__c="Requested a demo"),
        lead_update(leads[1]["Id"], OwnerId=rep["Id"][:15], Syncer_Score__c="12"),
        {"attributes": {"type": "Contact"}, "id": contact["Id"], "Syncer_Stage__c": "SAL"},
    ]))
    assert results == [{"id": leads[0]["Id"], "success": True, "errors": []},
                       {"id": leads[1]["Id"], "success": True, "errors": []},
                       {"id": contact["Id"], "success": True, "errors": []}]
    first = fresh.record(leads[0]["Id"])
    assert (first["Syncer_Stage__c"], first["Syncer_Score__c"], first["Syncer_Fit_Grade__c"],
            first["Syncer_Reasons__c"]) == ("MQL", 87.0, "A", "Requested a demo")
    assert first["SystemModstamp"] > before and first["LastModifiedDate"] > before
    assert fresh.record(leads[1]["Id"])["OwnerId"] == rep["Id"]
    assert fresh.record(contact["Id"])["Syncer_Stage__c"] == "SAL"
    again = wsf.query(f"SELECT Syncer_Stage__c FROM Lead WHERE Id = '{leads[0]['Id'][:15]}'")
    assert again["records"][0]["Syncer_Stage__c"] == "MQL"


def test_collection_partial_failure_reports_each_record(fresh: SalesforceSandbox,
                                                        wsf: Salesforce) -> None:
    good, bad_pick, too_long, fake, locked = pick(fresh, 5, type="Lead", IsConverted=False)
    converted = pick(fresh, 1, type="Lead", IsConverted=True)[0]
    contact = pick(fresh, 1, type="Contact")[0]
    users = wsf.query_all("SELECT Id, IsActive FROM User")["records"]
    inactive = next(u["Id"] for u in users if not u["IsActive"])
    queue = wsf.query("SELECT Id FROM Group WHERE Type = 'Queue'")["records"][0]["Id"]
    control(fresh, "lock_rows", ids=[locked["Id"]])
    results = wsf.restful("composite/sobjects", method="PATCH", json=collection([
        lead_update(good["Id"], Syncer_Stage__c="MQL"),
        lead_update(bad_pick["Id"], Syncer_Stage__c="Hot"),
        lead_update(too_long["Id"], Syncer_Reasons__c="x" * 256, Syncer_Fit_Grade__c="ABC"),
        lead_update(converted["Id"], Syncer_Stage__c="MQL"),
        lead_update(fake["Id"], OwnerId=inactive),
        lead_update(make_id("00Q", 999_999), Syncer_Stage__c="MQL"),
        lead_update("not-an-id", Syncer_Stage__c="MQL"),
        {"attributes": {"type": "Contact"}, "id": contact["Id"], "OwnerId": queue},
        lead_update(good["Id"], CreatedDate="2020-01-01T00:00:00Z"),
        lead_update(locked["Id"], Syncer_Stage__c="MQL"),
        lead_update(good["Id"], OwnerId=make_id("005", 999)),
    ]))
    codes = [[e["statusCode"] for e in r["errors"]] for r in results]
    assert codes == [
        [], ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"], ["STRING_TOO_LONG", "STRING_TOO_LONG"],
        ["CANNOT_UPDATE_CONVERTED_LEAD"], ["INACTIVE_OWNER_OR_USER"], ["ENTITY_IS_DELETED"],
        ["MALFORMED_ID"], ["INVALID_CROSS_REFERENCE_KEY"], ["INVALID_FIELD_FOR_INSERT_UPDATE"],
        ["UNABLE_TO_LOCK_ROW"], ["INVALID_CROSS_REFERENCE_KEY"]]
    assert [r["success"] for r in results] == [True] + [False] * 10
    assert "id" not in results[1]
    assert results[2]["errors"][0]["fields"] == ["Syncer_Reasons__c"]
    assert fresh.record(good["Id"])["Syncer_Stage__c"] == "MQL"
    assert fresh.record(bad_pick["Id"])["Syncer_Stage__c"] == bad_pick["Syncer_Stage__c"]
    assert fresh.record(fake["Id"])["OwnerId"] == fake["OwnerId"]
    assert fresh.record(contact["Id"])["OwnerId"] == contact["OwnerId"]


def test_all_or_none_rolls_everything_back(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    first, second, third = pick(fresh, 3, type="Lead", IsConverted=False)
    results = wsf.restful("composite/sobjects", method="PATCH", json=collection([
        lead_update(first["Id"], Syncer_Stage__c="MQL"),
        lead_update(second["Id"], Syncer_Stage__c="Nope"),
        lead_update(third["Id"], Syncer_Score__c=5),
    ], all_or_none=True))
    assert [r["success"] for r in results] == [False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    for before in (first, second, third):
        assert fresh.record(before["Id"]) == before


def test_more_than_200_records_is_refused(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    leads = pick(fresh, 201, type="Lead", IsConverted=False)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        wsf.restful("composite/sobjects", method="PATCH", json=collection(
            [lead_update(r["Id"], Syncer_Stage__c="MQL") for r in leads]))
    assert error_code(raised.value) == "EXCEEDED_ID_LIMIT"
    assert all(fresh.record(r["Id"])["Syncer_Stage__c"] == r["Syncer_Stage__c"] for r in leads)
    results = wsf.restful("composite/sobjects", method="PATCH", json=collection(
        [lead_update(r["Id"], Syncer_Stage__c="MQL") for r in leads[:200]]))
    assert len(results) == 200 and all(r["success"] for r in results)


@pytest.mark.parametrize(("values", "code"), [
    ({"Bogus__c": "x"}, "INVALID_FIELD"),
    ({"Syncer_Score__c": "lots"}, "JSON_PARSER_ERROR"),
])
def test_undeserializable_bodies_fail_the_whole_request(
        fresh: SalesforceSandbox, wsf: Salesforce, values: dict[str, Any], code: str) -> None:
    good, bad = pick(fresh, 2, type="Lead", IsConverted=False)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        wsf.restful("composite/sobjects", method="PATCH", json=collection([
            lead_update(good["Id"], Syncer_Stage__c="MQL"), lead_update(bad["Id"], **values)]))
    assert error_code(raised.value) == code
    assert fresh.record(good["Id"]) == good


def test_single_record_patch(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    lead = pick(fresh, 1, type="Lead", IsConverted=False)[0]
    assert wsf.Lead.update(lead["Id"], {"Syncer_Fit_Grade__c": "B"}) == 204
    assert fresh.record(lead["Id"])["Syncer_Fit_Grade__c"] == "B"
    assert wsf.Lead.get(lead["Id"])["Syncer_Fit_Grade__c"] == "B"
    with pytest.raises(SalesforceMalformedRequest) as raised:
        wsf.Lead.update(lead["Id"], {"Syncer_Stage__c": "Warm"})
    assert error_code(raised.value) == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceResourceNotFound):
        wsf.Lead.update(make_id("00Q", 999_999), {"Syncer_Fit_Grade__c": "B"})
    assert fresh.call_counts[("PATCH", "sobjects/<type>/<id>", 204)] == 1


# -- inserts -----------------------------------------------------------------------------

def test_inserted_records_are_visible_to_every_read(fresh: SalesforceSandbox,
                                                    wsf: Salesforce) -> None:
    generated = {r["Id"] for r in fresh.records(include_converted=True)}
    leads_before = wsf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")["totalSize"]
    since = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=1))
    created = wsf.Lead.create({"LastName": "Nguyen", "FirstName": "Kim", "Company": "Northwind",
                               "Email": "kim@northwind.example", "Syncer_Stage__c": "MQL",
                               "Syncer_Score__c": 61})
    assert created["success"] is True and created["errors"] == []
    lead_id = created["id"]
    assert lead_id.startswith("00Q") and lead_id not in generated
    assert fresh.call_counts[("POST", "sobjects/<type>", 201)] == 1
    fetched = wsf.Lead.get(lead_id)
    integration = wsf.query("SELECT Id FROM User WHERE Username = "
                            "'integration@syncer-sandbox.test'")["records"][0]["Id"]
    assert (fetched["Name"], fetched["Status"], fetched["OwnerId"], fetched["IsConverted"],
            fetched["Syncer_Score__c"]) == ("Kim Nguyen", "Open - Not Contacted", integration,
                                            False, 61.0)
    assert fetched["CreatedDate"] == fetched["SystemModstamp"] >= since
    since_literal = since[:19] + "Z"
    for where in ("Email = 'KIM@northwind.example'", "Name = 'kim nguyen'",
                  f"SystemModstamp >= {since_literal} AND IsConverted = false"):
        assert ids(wsf.query(f"SELECT Id FROM Lead WHERE {where}")) == [lead_id], where
    assert wsf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")["totalSize"] == \
        leads_before + 1
    newest = wsf.query("SELECT Id FROM Lead ORDER BY CreatedDate DESC LIMIT 1")
    assert ids(newest) == [lead_id]
    paged = ids(wsf.query_all("SELECT Id FROM Lead WHERE IsConverted = false",
                              headers={"Sforce-Query-Options": "batchSize=200"}))
    assert len(paged) == leads_before + 1 and paged[-1] == lead_id  # ids sort after
    assert wsf.Lead.update(lead_id, {"Syncer_Fit_Grade__c": "B"}) == 204
    assert fresh.record(lead_id)["Syncer_Fit_Grade__c"] == "B"
    # Duplicate rules are off by default: a second Lead may share the Email.
    twin = wsf.Lead.create({"LastName": "Nguyen", "Company": "Northwind",
                            "Email": "kim@northwind.example"})["id"]
    assert sorted(ids(wsf.query("SELECT Id FROM Lead WHERE Email = 'kim@northwind.example'"))) \
        == sorted([lead_id, twin])
    account = wsf.Account.create({"Name": "Northwind Traders",
                                  "Website": "https://northwind.example"})["id"]
    contact = wsf.Contact.create({"LastName": "Ito", "AccountId": account[:15]})["id"]
    record = wsf.query(f"SELECT Id, Account.Name, AccountId FROM Contact WHERE Id = "
                       f"{soql.quote(contact)}")["records"][0]
    assert (record["AccountId"], record["Account"]["Name"]) == (account, "Northwind Traders")


def new_lead(**values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, **values}


def test_collection_insert_reports_each_record(fresh: SalesforceSandbox,
                                               wsf: Salesforce) -> None:
    count = "SELECT COUNT() FROM Lead WHERE Company = 'Insert Co'"
    existing = pick(fresh, 1, type="Lead", IsConverted=False)[0]
    results = wsf.restful("composite/sobjects", method="POST", json=collection([
        new_lead(LastName="Good", Company="Insert Co"),
        new_lead(Email="nobody@insert.example"),
        {"attributes": {"type": "Contact"}, "FirstName": "No", "Email": "no@last.example"},
        new_lead(id=existing["Id"], LastName="Again", Company="Insert Co"),
        new_lead(LastName="Converted", Company="Insert Co", IsConverted=True),
        new_lead(LastName="Picky", Company="Insert Co", Syncer_Stage__c="Warm"),
        {"attributes": {"type": "User"}, "LastName": "Rep"},  # (Task takes inserts)
        new_lead(LastName="Second", Company="Insert Co", Status=""),
    ]))
    codes = [[e["statusCode"] for e in r["errors"]] for r in results]
    assert codes == [[], ["REQUIRED_FIELD_MISSING"], ["REQUIRED_FIELD_MISSING"],
                     ["INVALID_FIELD"], ["INVALID_FIELD_FOR_INSERT_UPDATE"],
                     ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"],
                     ["INVALID_TYPE_FOR_OPERATION"], []]
    assert results[1]["errors"][0]["fields"] == ["LastName", "Company"]
    assert results[2]["errors"][0]["fields"] == ["LastName"]
    assert [("id" in r) for r in results] == [True] + [False] * 6 + [True]
    assert wsf.query(count)["totalSize"] == 2
    assert fresh.record(results[7]["id"])["Status"] == "Open - Not Contacted"
    assert fresh.record(existing["Id"]) == existing
    rolled_back = wsf.restful("composite/sobjects", method="POST", json=collection([
        new_lead(LastName="Kept?", Company="Insert Co"), new_lead(LastName="No company"),
    ], all_or_none=True))
    assert [[e["statusCode"] for e in r["errors"]] for r in rolled_back] == [
        ["ALL_OR_NONE_OPERATION_ROLLED_BACK"], ["REQUIRED_FIELD_MISSING"]]
    assert all("id" not in r for r in rolled_back)
    assert wsf.query(count)["totalSize"] == 2
    with pytest.raises(SalesforceMalformedRequest) as raised:
        wsf.restful("composite/sobjects", method="POST", json=collection(
            [new_lead(LastName=f"L{i}", Company="Insert Co") for i in range(201)]))
    assert error_code(raised.value) == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest) as raised:
        wsf.Lead.create({"LastName": "X", "Company": "Insert Co", "Bogus__c": 1})
    assert error_code(raised.value) == "INVALID_FIELD"
    assert wsf.query(count)["totalSize"] == 2


def test_describe_says_what_an_insert_may_set(sf: Salesforce) -> None:
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert all(lead[name]["createable"] for name in ("LastName", "Company", "Email",
                                                     "Syncer_Stage__c", "OwnerId"))
    assert not any(lead[name]["createable"] for name in ("Id", "Name", "IsConverted",
                                                         "MasterRecordId", "CreatedDate"))
    assert lead["Status"]["defaultedOnCreate"] and lead["OwnerId"]["defaultedOnCreate"]
    assert [p["value"] for p in lead["Status"]["picklistValues"] if p["defaultValue"]] == [
        "Open - Not Contacted"]
    assert not lead["LastName"]["nillable"] and not lead["LastName"]["defaultedOnCreate"]
    objects = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert [name for name, o in objects.items() if o["createable"]] == [
        "Lead", "Contact", "Account", "Task", "Event", "Opportunity"]


def test_edit_acts_like_the_ui(fresh: SalesforceSandbox) -> None:
    lead = pick(fresh, 1, type="Lead", IsConverted=False)[0]
    fresh.edit(lead["Id"], "Syncer_Stage__c", "SQL")
    after = fresh.record(lead["Id"])
    assert after["Syncer_Stage__c"] == "SQL"
    assert after["SystemModstamp"] > lead["SystemModstamp"]
    with pytest.raises(ValueError, match="restricted picklist"):
        fresh.edit(lead["Id"], "Syncer_Stage__c", "Hot")
    fresh.edit(lead["Id"], "Syncer_Score__c", "55")
    assert fresh.record(lead["Id"])["Syncer_Score__c"] == 55.0


def test_injected_server_failure(fresh: SalesforceSandbox, wsf: Salesforce) -> None:
    fresh.fail_next(1, status=503, retry_after=2)
    with pytest.raises(SalesforceGeneralError) as raised:
        wsf.query("SELECT Id FROM User")
    assert raised.value.status == 503
    assert wsf.query("SELECT COUNT() FROM User")["totalSize"] == 9
    assert fresh.call_counts[("GET", "query", 503)] == 1


def test_seeded_ownership_looks_like_a_real_org(shared: SalesforceSandbox,
                                                world: World) -> None:
    records = shared.records()
    owners = Counter(r["OwnerId"][:3] for r in records if r["type"] == "Lead")
    assert owners["00G"] > owners["005"] > 0
    staged = [r for r in records if r["Syncer_Stage__c"]]
    # Opportunity and Customer are the world's planted outcomes (about one in six); a few
    # more are already at SQL.
    reached = [r for r in staged if r["Syncer_Stage__c"] in ("Opportunity", "Customer")]
    assert len(records) * 0.08 < len(reached) < len(records) * 0.3
    assert 0 < len(staged) - len(reached) < len(records) * 0.1
    assert {r["Syncer_Stage__c"] for r in staged} <= {"SQL", "Opportunity", "Customer"}
    assert all(r["OwnerId"].startswith("005") for r in staged)
    assert len(records) == sum(1 for p in world.people() if p.in_salesforce)


def test_stop_removes_the_ca_file(world: World) -> None:
    sandbox = SalesforceSandbox(world)
    sandbox.start()
    path = sandbox.ca_file
    assert path is not None and os.path.exists(path)
    sandbox.stop()
    assert not os.path.exists(path)


# -- SOQL quoting ------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text())
def test_quote_round_trips_any_text(text: str) -> None:
    parsed = soql.parse(f"SELECT Id FROM Lead WHERE LastName = {soql.quote(text)}")
    assert isinstance(parsed.where, soql.Comparison)
    assert parsed.where.value == soql.Literal("string", text)


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1700, 1, 2), max_value=datetime(4000, 12, 30),
                    timezones=st.just(timezone.utc)))
def test_datetime_literal_parses_back(moment: datetime) -> None:
    parsed = soql.parse(f"SELECT Id FROM Lead WHERE CreatedDate >= "
                        f"{soql.datetime_literal(moment)}")
    assert isinstance(parsed.where, soql.Comparison)
    assert parsed.where.value.value == moment.replace(microsecond=0)


# -- the rest of the emulated endpoints ----------------------------------------------------

def test_versions_resources_and_object_info(sf: Salesforce, shared: SalesforceSandbox) -> None:
    with http_session(shared) as session:
        versions = session.get(shared.base_url + "/services/data").json()
    assert {"label", "url", "version"} <= versions[-1].keys()
    assert "59.0" in {v["version"] for v in versions}
    resources = sf.restful("")
    assert {"sobjects", "query", "queryAll", "limits", "composite"} <= resources.keys()
    info = sf.Lead.metadata()
    assert info["objectDescribe"]["keyPrefix"] == "00Q" and info["recentItems"] == []
    assert sf.describe()["maxBatchSize"] == 200
    lead = rows(shared)[0]
    fetched = sf.Lead.get(lead["Id"])
    assert fetched["attributes"] == {"type": "Lead",
                                     "url": f"/services/data/v59.0/sobjects/Lead/{lead['Id']}"}
    assert fetched["Email"] == lead["Email"]


def test_limits_are_configurable(world: World) -> None:
    limits = SalesforceLimits(query_batch=300, collection_max=50, daily=500)
    with SalesforceSandbox(world, limits=limits) as sandbox:
        client = Client(sandbox)
        page = client.sf.query("SELECT Id FROM CampaignMember")
        assert len(page["records"]) == 300 and page["totalSize"] > 300
        bigger = client.sf.query("SELECT Id FROM CampaignMember",
                                 headers={"Sforce-Query-Options": "batchSize=1000"})
        assert len(bigger["records"]) == 300
        assert client.sf.describe()["maxBatchSize"] == 50
        leads = [r for r in sandbox.records() if r["type"] == "Lead"][:51]
        with pytest.raises(SalesforceMalformedRequest) as raised:
            client.sf.restful("composite/sobjects", method="PATCH", json=collection(
                [lead_update(r["Id"], Syncer_Stage__c="MQL") for r in leads]))
        assert error_code(raised.value) == "EXCEEDED_ID_LIMIT" and "50" in str(
            raised.value.content)
        assert client.sf.api_usage["api-usage"].total == 500
        client.session.close()


# -- query plans: streamed pages must equal the plain answer -----------------------------

def ordered(records: list[dict[str, Any]]) -> list[str]:
    return [r["Id"] for r in sorted(records, key=lambda r: (r["CreatedDate"], r["Id"]))]


def test_time_ordered_activity_pages_match_a_full_scan(fresh: SalesforceSandbox,
                                                        wsf: Salesforce) -> None:
    everything = wsf.query_all("SELECT Id, WhoId, CreatedDate FROM Task")["records"]
    cutoff = sorted(r["CreatedDate"] for r in everything)[len(everything) // 3]
    since = cutoff.replace(".000+0000", "Z")
    gone = next(r for r in everything if r["CreatedDate"] > cutoff)
    wsf.restful(f"sobjects/Task/{gone['Id']}", method="PATCH", json={"WhoId": None})
    query = (f"SELECT Id, WhoId, CreatedDate FROM Task WHERE CreatedDate >= {since} "
             "AND WhoId != null ORDER BY CreatedDate, Id")
    first = wsf.query(query, headers={"Sforce-Query-Options": "batchSize=200"})
    streamed = wsf.query_all(query, headers={"Sforce-Query-Options": "batchSize=200"})
    expected = ordered([r for r in everything if r["CreatedDate"] >= cutoff
                        and r["Id"] != gone["Id"]])
    assert [r["Id"] for r in streamed["records"]] == expected
    assert first["totalSize"] == len(expected) and len(first["records"]) == 200
    members = wsf.query_all("SELECT Id, CreatedDate FROM CampaignMember")["records"]
    low, high = sorted(r["CreatedDate"] for r in members)[100], \
        sorted(r["CreatedDate"] for r in members)[-100]
    window = wsf.query_all(
        f"SELECT Id, CreatedDate FROM CampaignMember WHERE CreatedDate > "
        f"{low.replace('.000+0000', 'Z')} AND CreatedDate <= {high.replace('.000+0000', 'Z')}")
    assert sorted(r["Id"] for r in window["records"]) == sorted(
        r["Id"] for r in members if low < r["CreatedDate"] <= high)


def test_sorted_pages_are_the_same_in_memory_and_by_selection(
        sf: Salesforce, monkeypatch: pytest.MonkeyPatch) -> None:
    query = ("SELECT Id, Title, NumberOfEmployees FROM Lead WHERE IsConverted = false "
             "ORDER BY Title DESC NULLS FIRST, NumberOfEmployees")
    headers = {"Sforce-Query-Options": "batchSize=200"}
    in_memory = [r["Id"] for r in sf.query_all(query, headers=headers)["records"]]
    monkeypatch.setattr(sandbox_results, "SORT_IN_MEMORY_LIMIT", 0)
    monkeypatch.setattr(sandbox_results, "SELECTION_CHUNK", 45)
    selected = [r["Id"] for r in sf.query_all(query, headers=headers)["records"]]
    assert selected == in_memory and len(in_memory) > 200


def test_limit_and_offset_page_through_a_stream(sf: Salesforce) -> None:
    every = [r["Id"] for r in sf.query_all("SELECT Id FROM CampaignMember ORDER BY Id")[
        "records"]]
    headers = {"Sforce-Query-Options": "batchSize=200"}
    window = sf.query_all("SELECT Id FROM CampaignMember ORDER BY Id LIMIT 450 OFFSET 10",
                          headers=headers)
    assert window["totalSize"] == 450
    assert [r["Id"] for r in window["records"]] == every[10:460]


# -- scale: a million people, generated lazily ---------------------------------------------

def test_a_million_people_serve_at_once_and_only_changes_are_held() -> None:
    big = World(seed=4, size=1_000_000, now=NOW)
    index = next(i for i in range(999_000, 1_000_000)
                 if big.person(i, with_activities=False).in_salesforce)
    person = big.person(index, with_activities=False)
    prefix = "003" if person.salesforce_object == "Contact" else "00Q"
    record_id = make_id(prefix, index + 1)
    with SalesforceSandbox(big) as sandbox:
        client = Client(sandbox)
        sobject = client.sf.Contact if prefix == "003" else client.sf.Lead
        assert sobject.get(record_id)["Email"] == person.email
        assert sobject.update(record_id, {"Syncer_Score__c": 61}) == 204
        assert [r["Id"] for r in sandbox.changed_records()] == [record_id]
        accounts = client.sf.query("SELECT Id, Name FROM Account ORDER BY Id LIMIT 3")
        assert [a["Name"] for a in accounts["records"]] == [big.company(i).name
                                                            for i in range(3)]
        client.session.close()
    assert not big.index_ready()


def test_id_order_and_id_comparisons_agree(sf: Salesforce) -> None:
    """Chunking by `Id > last ORDER BY Id` must visit every row once."""
    every = [r["Id"] for r in sf.query_all("SELECT Id FROM Contact ORDER BY Id")["records"]]
    chunked: list[str] = []
    last = None
    while True:
        where = f" WHERE Id > {soql.quote(last)}" if last else ""
        page = sf.query(f"SELECT Id FROM Contact{where} ORDER BY Id LIMIT 7")["records"]
        if not page:
            break
        chunked.extend(r["Id"] for r in page)
        last = page[-1]["Id"]
    assert chunked == every and len(set(every)) == len(every) > 7
    owners = sf.query_all("SELECT Id, OwnerId FROM Contact ORDER BY OwnerId, Id")["records"]
    keys = [(r["OwnerId"], r["Id"]) for r in owners]
    assert keys == sorted(keys)
