"""The Salesforce connector's incremental reads through the Composite resource
(connectors/salesforce/composite.py), counted on the sandbox's request log: the first pages
of several queries in one call, the rest by query-more; the same people and activities as
each query read alone; a query that fails inside a composite is run alone and explained as
before; a composite refused or failing as a whole falls back or is retried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import Activity, Person
from tests.sandbox_control import result

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LONG_AGO = NOW - timedelta(days=3650)
NO_WAIT = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, sleep=lambda _: None)


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(World(seed=11, size=600, now=NOW), clock=lambda: NOW) as box:
        yield box


def settings(box: SalesforceSandbox, **person_fields: str | None) -> ConnectorSettings:
    return ConnectorSettings(name="sf", kind="salesforce", base_url=box.base_url,
                             credentials=dict(box.credentials), ca_file=box.ca_file,
                             timeout_seconds=10.0, options={"page_size": 200},
                             person_fields=person_fields)


def spent(box: SalesforceSandbox, before: Counter[tuple[str, str, int]]
          ) -> Counter[tuple[str, str, int]]:
    return Counter(box.call_counts) - before


def by_id(people: list[Person]) -> dict[str, Person]:
    return {p.record_id: p for p in people}


def test_changed_people_read_both_first_pages_in_one_call_then_query_more(
        sandbox: SalesforceSandbox) -> None:
    with SalesforceConnector(settings(sandbox), retry=NO_WAIT) as connector:
        full = [p for page in connector.people() for p in page]
        before = Counter(sandbox.call_counts)
        changed = [p for page in connector.people(LONG_AGO) for p in page]
        used = spent(sandbox, before)
    # the same people as the full pull (every live Lead and Contact changed since)
    assert by_id(changed) == by_id(full) and len(changed) == len(full) > 300
    assert used[("POST", "composite", 200)] == 1
    assert used[("GET", "queryAll", 200)] == 0  # no first page read alone
    # pages of 200: each object's further pages by query-more
    leads = sum(1 for p in full if p.record_id.startswith("00Q"))
    contacts = len(full) - leads
    more = used[("GET", "queryAll/<locator>", 200)]
    assert more >= (leads - 1) // 200 + (contacts - 1) // 200 > 0
    assert set(used) == {("POST", "composite", 200), ("GET", "queryAll/<locator>", 200)}


def test_a_query_failing_inside_the_composite_is_run_alone_and_explained(
        sandbox: SalesforceSandbox) -> None:
    """Department is a Contact field Lead lacks: the Lead subrequest fails, the Contact one
    answers; the Lead query alone fails the same way and the describe names the field."""
    chosen = settings(sandbox, department="Department")
    with SalesforceConnector(chosen, retry=NO_WAIT) as connector:
        before = Counter(sandbox.call_counts)
        with pytest.raises(ConnectorError, match="Lead has no field 'Department'") as failed:
            list(connector.people(LONG_AGO))
        used = spent(sandbox, before)
    assert "person_fields.department" in str(failed.value)
    assert used[("POST", "composite", 200)] == 1
    assert used[("GET", "queryAll", 400)] == 1  # the Lead query alone: INVALID_FIELD
    assert used[("GET", "sobjects/<type>/describe", 200)] >= 1  # the explanation


def test_activities_are_the_same_through_the_composite_as_each_query_alone(
        sandbox: SalesforceSandbox) -> None:
    lead = next(str(r["Id"]) for r in sandbox.records() if str(r["Id"]).startswith("00Q"))
    made = {str(result(sandbox, "log_activity", id=lead, kind=kind,
                            owner=sandbox.seeder.active_reps[0])["id"])
            for kind in ("call", "meeting", "email")}
    with SalesforceConnector(settings(sandbox), retry=NO_WAIT) as connector:
        before = Counter(sandbox.call_counts)
        together = [a for page in connector.activities(LONG_AGO) for a in page]
        used = spent(sandbox, before)
        # a composite refused as a whole (a 400 the retry layer keeps): each query alone
        sandbox.fail_next(1, status=400, error_code="INVALID_INPUT")
        before = Counter(sandbox.call_counts)
        alone = [a for page in connector.activities(LONG_AGO) for a in page]
        fallback = spent(sandbox, before)
    assert used[("POST", "composite", 200)] == 1
    assert not any(route == "query" for _, route, _ in used)  # no first page alone
    assert fallback[("POST", "composite", 400)] == 1
    assert fallback[("GET", "query", 200)] == 4  # CampaignMember, Task, Event, Opportunity
    assert len(together) > 3 and key(together) == key(alone)
    assert {a.source_id for a in together if a.record_id == lead} >= made


def key(activities: list[Activity]) -> list[tuple[str, str, str, datetime]]:
    return [(a.source_id, a.record_id, a.type.value, a.occurred_at) for a in activities]


def test_a_5xx_on_the_composite_is_retried_like_any_call(sandbox: SalesforceSandbox) -> None:
    with SalesforceConnector(settings(sandbox), retry=NO_WAIT) as connector:
        expected = connector.newest_stamp()
        sandbox.fail_next(1, status=503)
        before = Counter(sandbox.call_counts)
        assert connector.newest_stamp() == expected is not None
        used = spent(sandbox, before)
    assert used == Counter({("POST", "composite", 503): 1, ("POST", "composite", 200): 1})
