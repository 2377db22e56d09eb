"""Sales activity from Salesforce (issue 20, item 2): a rep's calls, emails, tasks and
meetings (Tasks and Events) and closed deals (Opportunities), made through the sandbox's
HTTP control API and pulled by the real connector, with who did them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorSettings
from syncer.domain.types import Activity, ActivityType
from tests.sandbox_control import ControlRefused, result

NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DANA, MARCO = "dana.whitfield@syncer-sandbox.test", "marco.bellini@syncer-sandbox.test"


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(World(seed=5, size=120, now=NOW), clock=lambda: NOW) as running:
        yield running




def connector_for(box: SalesforceSandbox) -> SalesforceConnector:
    return SalesforceConnector(ConnectorSettings(
        name="sf", kind="salesforce", base_url=box.base_url,
        credentials=dict(box.credentials), writeback_fields=("Syncer_Stage__c",),
        ca_file=box.ca_file, timeout_seconds=10.0, options={"page_size": 200}), retry=NO_WAIT)


def pulled(box: SalesforceSandbox, since: datetime) -> list[Activity]:
    with connector_for(box) as connector:
        return [a for page in connector.activities(since) for a in page]


def people(box: SalesforceSandbox, kind: str) -> list[dict[str, Any]]:
    return [r for r in box.records()
            if r["type"] == kind and not r.get("IsConverted") and r.get("Email")]


def test_logged_calls_meetings_and_deals_are_pulled_with_who_did_them(
        sandbox: SalesforceSandbox) -> None:
    lead, contact = people(sandbox, "Lead")[0], people(sandbox, "Contact")[0]
    call = result(sandbox, "log_activity", id=lead["Id"], kind="call", owner=DANA,
                   subject="Intro call", duration_minutes=12)
    meeting = result(sandbox, "log_activity", id=contact["Id"], kind="meeting", owner=MARCO)
    email = result(sandbox, "log_activity", id=contact["Id"], kind="email", owner=DANA)
    assert (call["type"], meeting["type"], email["type"]) == ("Task", "Event", "Task")
    deal = result(sandbox, "close_deal", id=contact["Id"], won=True, owner=MARCO,
                   amount=12000)
    assert sandbox.record(deal["id"])["IsWon"] is True

    found = {a.source_id: a for a in pulled(sandbox, NOW - timedelta(minutes=1))}
    assert found[call["id"]].type is ActivityType.CALL
    assert (found[call["id"]].record_id, found[call["id"]].actor) == (lead["Id"], DANA)
    assert found[call["id"]].actor_id == sandbox.record(call["id"])["OwnerId"]
    assert found[meeting["id"]].type is ActivityType.MEETING
    assert (found[meeting["id"]].record_id, found[meeting["id"]].actor) == (contact["Id"],
                                                                            MARCO)
    assert found[email["id"]].type is ActivityType.SALES_EMAIL
    created, closed = found[f"{deal['id']}:created"], found[f"{deal['id']}:closed"]
    assert (created.type, closed.type) == (ActivityType.OPPORTUNITY_CREATED,
                                           ActivityType.OPPORTUNITY_WON)
    assert closed.record_id == contact["Id"] and closed.actor == MARCO
    assert closed.attributes["amount"] == "12000.00"


def test_a_lost_deal_on_a_converted_lead_lands_on_its_contact(
        sandbox: SalesforceSandbox) -> None:
    lead = people(sandbox, "Lead")[1]
    converted = result(sandbox, "convert", lead_id=lead["Id"])
    deal = result(sandbox, "close_deal", id=lead["Id"], won=False)
    assert deal["contact_id"] == converted["contact_id"]
    found = {a.source_id: a for a in pulled(sandbox, NOW - timedelta(minutes=1))}
    assert found[f"{deal['id']}:closed"].type is ActivityType.OPPORTUNITY_LOST
    assert found[f"{deal['id']}:closed"].record_id == converted["contact_id"]


def test_an_unconverted_lead_cannot_close_a_deal_and_kinds_are_checked(
        sandbox: SalesforceSandbox) -> None:
    lead = people(sandbox, "Lead")[2]
    for operation, body, expected in (
            ("close_deal", {"id": lead["Id"]}, "convert it first"),
            ("log_activity", {"id": lead["Id"], "kind": "fax", "owner": DANA}, "kind:"),
            ("log_activity", {"id": lead["Id"], "kind": "call", "owner": "no@x.test"},
             "owner: no User"),
            ("log_activity", {"id": "00Q000000000000AAA", "kind": "call", "owner": DANA},
             "Who Id")):
        with pytest.raises(ControlRefused) as refused:
            result(sandbox, operation, **body)
        assert refused.value.status == 400 and expected in refused.value.message, \
            refused.value.body


def test_the_pull_is_incremental() -> None:
    clock = {"now": NOW}
    with SalesforceSandbox(World(seed=5, size=60, now=NOW),
                           clock=lambda: clock["now"]) as box:
        lead = people(box, "Lead")[0]
        first = result(box, "log_activity", id=lead["Id"], kind="call", owner=DANA)
        clock["now"] = NOW + timedelta(hours=1)
        second = result(box, "log_activity", id=lead["Id"], kind="meeting", owner=DANA)
        later = {a.source_id for a in pulled(box, NOW + timedelta(minutes=30))}
        assert second["id"] in later and first["id"] not in later


def query_calls(box: SalesforceSandbox) -> int:
    """Query calls: plain ones, query-more pages and Composite calls of first pages."""
    return sum(n for (method, route, _), n in box.call_counts.items()
               if (method == "GET" and route.startswith("query"))
               or (method, route) == ("POST", "composite"))


@pytest.mark.parametrize("spread", [5, 50])
def test_calls_grow_with_pages_of_activities_not_with_people(spread: int) -> None:
    """250 calls over 5 or over 50 people: the same queries; 50 calls: one page less."""
    with SalesforceSandbox(World(seed=5, size=120, now=NOW), clock=lambda: NOW) as box:
        leads = people(box, "Lead")[:spread]
        assert len(leads) == spread
        counts = []
        for total in (50, 200):  # 50, then 250 in all: Task pages of 200
            for n in range(total):
                result(box, "log_activity", id=leads[n % spread]["Id"], kind="call",
                        owner=DANA)
            before = query_calls(box)
            found = pulled(box, NOW)
            counts.append(query_calls(box) - before)
            assert sum(a.type is ActivityType.CALL for a in found) == sum(
                (50, 200)[:len(counts)])
        # CampaignMember, Task, Event, Opportunity: their first pages in one Composite
        # call; 250 Tasks: one more page (query-more)
        assert counts == [1, 2]


def test_a_focused_re_read_brings_meetings_and_deals_too(sandbox: SalesforceSandbox) -> None:
    """What a webhook's focused run reads of one person: the Event and the Opportunity as
    well as the Task, each with who did it; another person's are left out."""
    contact, other = people(sandbox, "Contact")[:2]
    call = result(sandbox, "log_activity", id=contact["Id"], kind="call", owner=DANA)
    meeting = result(sandbox, "log_activity", id=contact["Id"], kind="meeting", owner=MARCO)
    deal = result(sandbox, "close_deal", id=contact["Id"], won=True, owner=MARCO)
    elsewhere = result(sandbox, "log_activity", id=other["Id"], kind="meeting", owner=DANA)
    with connector_for(sandbox) as connector:
        _, activities = connector.read_by_ids([contact["Id"]], NOW - timedelta(minutes=1))
    found = {a.source_id: a for a in activities}
    assert found[call["id"]].type is ActivityType.CALL
    assert (found[meeting["id"]].type, found[meeting["id"]].actor) == (ActivityType.MEETING,
                                                                      MARCO)
    assert found[f"{deal['id']}:closed"].type is ActivityType.OPPORTUNITY_WON
    assert elsewhere["id"] not in found
    assert {a.record_id for a in activities} == {contact["Id"]}
