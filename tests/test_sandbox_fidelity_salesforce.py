"""Fidelity of the Salesforce sandbox where it used to differ from Salesforce (issue 20,
item 1): datetime literals with 0 to 6 fractional digits and offsets, the date literals
YESTERDAY / TODAY / LAST_N_DAYS:n, stamps to the second, required fields, people with
more than 256 activities, and query cursors without an artificial cap.

Everything goes over HTTPS to the running sandbox (requests, or simple-salesforce). Time
is the sandbox's injectable clock: no test sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.sandbox.salesforce.seed import MEMBER_KINDS
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import IN_SALESFORCE, World

WORLD_NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)
#: the moment of the tap-salesforce query of issue 20, with microseconds on the clock.
WRITE_AT = datetime(2026, 12, 5, 17, 38, 32, 654_321, tzinfo=timezone.utc)
VERSION = "59.0"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Org:
    """A running sandbox, a signed-in requests session and a simple-salesforce client."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.verify = sandbox.ca_file
        self.session.trust_env = False
        answer = self.session.post(sandbox.base_url + "/services/oauth2/token",
                                   data={"grant_type": "refresh_token", **sandbox.credentials})
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.sf = Salesforce(instance_url=sandbox.base_url, session_id=token,
                             version=VERSION, session=self.session)

    def url(self, path: str) -> str:
        return f"{self.sandbox.base_url}/services/data/v{VERSION}/{path}"

    def query(self, soql: str, **headers: str) -> requests.Response:
        return self.session.get(self.url("query"), params={"q": soql}, headers=headers,
                                timeout=30)

    def ids(self, soql: str) -> set[str]:
        return {r["Id"] for r in self.sf.query_all(soql)["records"]}


def running(world: World, clock: Clock) -> Iterator[Org]:
    sandbox = SalesforceSandbox(world, clock=clock)
    sandbox.start()
    org = Org(sandbox)
    try:
        yield org
    finally:
        org.session.close()
        sandbox.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock(WRITE_AT)


@pytest.fixture
def org(clock: Clock) -> Iterator[Org]:
    yield from running(World(seed=3, size=400, now=WORLD_NOW), clock)


def new_lead(org: Org, last_name: str = "Fidelity") -> str:
    made = org.session.post(org.url("sobjects/Lead"),
                            json={"LastName": last_name, "Company": "Acme"}, timeout=30)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


# -- datetime literals and stamps -----------------------------------------------------
@pytest.mark.parametrize("literal", [
    "2026-12-05T17:38:32Z", "2026-12-05T17:38:32.0Z", "2026-12-05T17:38:32.00Z",
    "2026-12-05T17:38:32.000Z", "2026-12-05T17:38:32.0000Z", "2026-12-05T17:38:32.00000Z",
    "2026-12-05T17:38:32.000000Z", "2026-12-05T17:38:32.000000+00:00",
    "2026-12-05T18:38:32.000000+01:00", "2026-12-05T12:08:32.000-05:30",
    "2026-12-05T18:38:32+0100",
])
def test_datetime_literals_with_0_to_6_fractional_digits_and_offsets(org: Org,
                                                                     literal: str) -> None:
    lead = new_lead(org)
    query = f"SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= {literal}"
    assert org.ids(query) == {lead}  # the seeded leads were stamped before WORLD_NOW
    # the same literal as an upper bound leaves the new lead out (its stamp is equal)
    assert lead not in org.ids(f"SELECT Id FROM Lead WHERE SystemModstamp < {literal}")


def test_a_fraction_past_the_stamp_excludes_it_and_seven_digits_are_refused(org: Org) -> None:
    lead = new_lead(org)
    later = org.ids("SELECT Id FROM Lead WHERE SystemModstamp >= 2026-12-05T17:38:32.000001Z")
    assert lead not in later
    refused = org.query("SELECT Id FROM Lead WHERE SystemModstamp >= "
                        "2026-12-05T17:38:32.0000000Z")
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_stamps_are_whole_seconds(org: Org, clock: Clock) -> None:
    lead = new_lead(org)
    fields = "CreatedDate, LastModifiedDate, SystemModstamp"
    read = org.sf.query(f"SELECT {fields} FROM Lead WHERE Id = '{lead}'")["records"][0]
    assert [read[f] for f in fields.split(", ")] == ["2026-12-05T17:38:32.000+0000"] * 3
    clock.now = WRITE_AT + timedelta(seconds=3, microseconds=420_000)  # 17:38:36.074
    org.sf.Lead.update(lead, {"Title": "VP"})
    read = org.sf.Lead.get(lead)
    assert read["SystemModstamp"] == read["LastModifiedDate"] == "2026-12-05T17:38:36.000+0000"
    assert read["CreatedDate"] == "2026-12-05T17:38:32.000+0000"


# -- date literals --------------------------------------------------------------------
@pytest.mark.parametrize(("literal", "explicit"), [
    ("CreatedDate = TODAY", "CreatedDate >= 2026-12-05T00:00:00Z AND "
                            "CreatedDate < 2026-12-06T00:00:00Z"),
    ("CreatedDate = YESTERDAY", "CreatedDate >= 2026-12-04T00:00:00Z AND "
                                "CreatedDate < 2026-12-05T00:00:00Z"),
    ("CreatedDate = LAST_N_DAYS:30", "CreatedDate >= 2026-11-05T00:00:00Z AND "
                                     "CreatedDate < 2026-12-06T00:00:00Z"),
    ("CreatedDate > LAST_N_DAYS:30", "CreatedDate >= 2026-12-06T00:00:00Z"),
    ("CreatedDate < LAST_N_DAYS:30", "CreatedDate < 2026-11-05T00:00:00Z"),
    ("CreatedDate >= YESTERDAY", "CreatedDate >= 2026-12-04T00:00:00Z"),
    ("CreatedDate <= yesterday", "CreatedDate < 2026-12-05T00:00:00Z"),
    ("CreatedDate != LAST_N_DAYS:2", "CreatedDate < 2026-12-03T00:00:00Z"),
    ("CreatedDate IN (TODAY, YESTERDAY)", "CreatedDate >= 2026-12-04T00:00:00Z AND "
                                          "CreatedDate < 2026-12-06T00:00:00Z"),
])
def test_date_literals_are_ranges_of_days(org: Org, literal: str, explicit: str) -> None:
    relative = org.ids(f"SELECT Id FROM Task WHERE {literal}")
    assert relative == org.ids(f"SELECT Id FROM Task WHERE {explicit}")
    if "LAST_N_DAYS:30" in literal and "=" in literal:
        assert relative  # the world has tasks in the last month


def test_last_n_days_counts_today_and_the_days_before(org: Org, clock: Clock) -> None:
    world = org.sandbox.world
    moments = [world.now - timedelta(seconds=offset)
               for i in range(world.size) if world.flags(i) & IN_SALESFORCE
               for offset, kind, channel, _ in world.raw_activities(i)
               if channel == "salesforce" and kind not in MEMBER_KINDS]
    since = datetime(2026, 11, 28, tzinfo=timezone.utc)  # LAST_N_DAYS:7 on Dec 5
    expected = sum(1 for moment in moments if moment >= since)
    found = org.sf.query("SELECT COUNT() FROM Task WHERE CreatedDate = LAST_N_DAYS:7 "
                         "AND WhoId != null")
    assert found["totalSize"] == expected > 0


def test_date_literals_on_a_date_field(org: Org, clock: Clock) -> None:
    lead = new_lead(org)
    org.sandbox.convert_lead(lead)
    assert lead in org.ids("SELECT Id FROM Lead WHERE ConvertedDate = TODAY")
    assert lead not in org.ids("SELECT Id FROM Lead WHERE ConvertedDate = YESTERDAY")
    assert lead in org.ids("SELECT Id FROM Lead WHERE ConvertedDate > YESTERDAY")
    clock.now += timedelta(days=1)
    assert lead in org.ids("SELECT Id FROM Lead WHERE ConvertedDate = YESTERDAY")


def test_a_date_literal_on_a_text_field_is_refused(org: Org) -> None:
    refused = org.query("SELECT Id FROM Lead WHERE LastName = TODAY")
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"


# -- required fields ------------------------------------------------------------------
@pytest.mark.parametrize(("body", "missing"), [
    ({"Company": "Acme"}, ["LastName"]),
    ({"LastName": "", "Company": "Acme"}, ["LastName"]),
    ({"LastName": "Doe"}, ["Company"]),
    ({"FirstName": "Ann", "LastName": None, "Company": ""}, ["LastName", "Company"]),
])
def test_lead_create_requires_last_name_and_company(org: Org, body: dict[str, Any],
                                                    missing: list[str]) -> None:
    answer = org.session.post(org.url("sobjects/Lead"), json=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json() == [{"message": f"Required fields are missing: [{', '.join(missing)}]",
                              "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}]


def test_required_fields_in_collections_and_updates(org: Org) -> None:
    answer = org.session.post(org.url("composite/sobjects"), json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "LastName": "Ok", "Company": "Acme"},
            {"attributes": {"type": "Lead"}, "LastName": "", "Company": "Acme"}]},
        timeout=30)
    assert answer.status_code == 200
    made, refused = answer.json()
    assert made["success"] is True and made["errors"] == []
    assert refused["success"] is False
    assert refused["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                  "message": "Required fields are missing: [LastName]",
                                  "fields": ["LastName"]}]
    emptied = org.session.patch(org.url(f"sobjects/Lead/{made['id']}"),
                                json={"LastName": ""}, timeout=30)
    assert emptied.status_code == 400
    assert emptied.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert emptied.json()[0]["fields"] == ["LastName"]
    assert org.sf.Lead.get(made["id"])["LastName"] == "Ok"


# -- many activities ------------------------------------------------------------------
def test_a_person_with_more_than_256_activities(clock: Clock) -> None:
    world = World(seed=4, size=200, now=WORLD_NOW, activity_scale=12.0)
    busiest = max((i for i in range(world.size) if world.flags(i) & IN_SALESFORCE),
                  key=lambda i: len(world.raw_activities(i)))
    drawn = world.raw_activities(busiest)
    assert len(drawn) > 256
    tasks = sum(1 for _, kind, channel, _ in drawn
                if channel == "salesforce" and kind not in MEMBER_KINDS)
    for org in running(world, clock):
        who = org.sandbox.seeder.record_id(busiest)
        found = org.sf.query_all(f"SELECT Id, CreatedDate FROM Task WHERE WhoId = '{who}' "
                                 "ORDER BY CreatedDate, Id")["records"]
        assert len(found) == tasks
        assert len({r["Id"] for r in found}) == tasks
        timed = org.sf.query("SELECT COUNT() FROM Task WHERE CreatedDate >= "
                             "2020-01-01T00:00:00Z")
        assert timed["totalSize"] >= tasks
        last = found[-1]["Id"]
        assert org.sf.Task.get(last)["WhoId"] == who


def test_activity_scale_beyond_what_the_sandboxes_number_is_refused() -> None:
    with pytest.raises(ValueError, match="lower activity_scale"):
        World(seed=1, size=10, now=WORLD_NOW, activity_scale=500.0)


# -- query cursors ----------------------------------------------------------------------
def test_no_cap_on_open_cursors_and_they_last_two_days(org: Org, clock: Clock) -> None:
    options = {"Sforce-Query-Options": "batchSize=200"}
    first_pages = [org.query("SELECT Id FROM Task ORDER BY Id", **options).json()
                   for _ in range(60)]
    assert all(not page["done"] for page in first_pages)
    oldest = first_pages[0]["nextRecordsUrl"]
    more = org.session.get(org.sandbox.base_url + oldest, timeout=30)
    assert more.status_code == 200  # the first of 60 open cursors still answers
    assert more.json()["records"][0]["Id"] != first_pages[0]["records"][0]["Id"]
    clock.now += timedelta(days=2)
    expired = org.session.get(org.sandbox.base_url + oldest, timeout=30)
    assert expired.status_code == 400
    assert expired.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
