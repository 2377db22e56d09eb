"""The HubSpot connector against the sandbox, through the real hubspot-api-client.

Expectations are computed from the World, not from the sandbox's own tables, so a mapping
mistake on either side shows up as a mismatch.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hubspot.crm.contacts.exceptions import ApiException

from connectors.hubspot import mapping
from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.settings import FaultConfig
from connectors.sandbox.world import World
from syncer.domain.api_usage import RetriesExhausted
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import ActivityType, RecordUpdate

FAST_RETRY = RetryPolicy(attempts=10, initial=0.05, maximum=0.5)

NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)
WRITEBACK = ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
             "syncer_reasons")
#: Lower bound of HubSpot's numemployees range for a head count, written out by hand.
EMPLOYEE_BOUNDS = (10000, 5000, 1000, 500, 100, 50, 25, 5, 1)


def expected_employees(count: int) -> int:
    return next(bound for bound in EMPLOYEE_BOUNDS if count >= bound)


def connect(sandbox: HubSpotSandbox, **options: Any) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=WRITEBACK,
        timeout_seconds=5.0, options={"retry_policy": FAST_RETRY, **options}))


@pytest.fixture
def world() -> World:
    return World(seed=23, size=220, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[HubSpotSandbox]:
    sandbox = HubSpotSandbox(world)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def connector(sandbox: HubSpotSandbox) -> Iterator[HubSpotConnector]:
    made = connect(sandbox)
    yield made
    made.close()


def hubspot_people(world: World) -> list[Any]:
    return [p for p in world.people() if p.in_hubspot]


# -- people -------------------------------------------------------------------------
def test_people_maps_every_contact(connector: HubSpotConnector, world: World,
                                   sandbox: HubSpotSandbox) -> None:
    pages = list(connector.people())
    assert all(0 < len(page) <= 100 for page in pages)
    people = {p.record_id: p for page in pages for p in page}
    expected = {contact_id_for(p.index): p for p in hubspot_people(world)}
    assert set(people) == set(expected)
    records = {r["id"]: r for r in sandbox.records()}
    for record_id, person in people.items():
        source = expected[record_id]
        assert (person.source, person.object_type) == ("hubspot", "contact")
        assert (person.email, person.first_name, person.last_name) == (
            source.email, source.first_name, source.last_name)
        assert person.title == (source.title or None)
        assert person.company == source.company
        assert person.industry == (source.industry or None)
        assert person.country == (source.country or None)
        assert person.employees == expected_employees(source.employees)
        assert person.updated_at == datetime.fromisoformat(
            records[record_id]["lastmodifieddate"].replace("Z", "+00:00"))
        assert dict(person.crm_values) == {f: records[record_id][f] for f in WRITEBACK}
    assert connector.api_calls == len(pages) == sandbox.calls(statuses={200})


# -- activities ---------------------------------------------------------------------
def test_activities_round_trip_every_hubspot_activity(connector: HubSpotConnector,
                                                      world: World) -> None:
    since = NOW - timedelta(days=400)
    got = [a for page in connector.activities(since) for a in page]
    expected = Counter((contact_id_for(p.index), a.type, a.occurred_at)
                       for p in hubspot_people(world) for a in p.activities
                       if a.channel == "hubspot")
    assert Counter((a.record_id, a.type, a.occurred_at) for a in got) == expected
    assert len({a.source_id for a in got}) == len(got)
    assert all(a.source == "hubspot" and a.occurred_at.tzinfo is not None for a in got)
    by_type = {a.type: a for a in got}
    assert "/pricing" in by_type[ActivityType.PRICING_PAGE_VIEW].attributes["url"]
    assert by_type[ActivityType.CONTENT_DOWNLOAD].attributes["asset"]
    assert by_type[ActivityType.EMAIL_OPEN].attributes["email"]
    assert by_type[ActivityType.WEBINAR_REGISTRATION].attributes["campaign"]


def test_activities_since_is_inclusive(connector: HubSpotConnector, world: World) -> None:
    times = sorted(a.occurred_at for p in hubspot_people(world) for a in p.activities
                   if a.channel == "hubspot")
    since = times[len(times) // 2]
    got = [a for page in connector.activities(since) for a in page]
    assert sorted(a.occurred_at for a in got) == [t for t in times if t >= since]


# -- owners -------------------------------------------------------------------------
def test_owners_include_archived(connector: HubSpotConnector, world: World,
                                 sandbox: HubSpotSandbox) -> None:
    owners = connector.owners()
    assert {(o.email, o.active) for o in owners} == {(u.email, u.active)
                                                     for u in world.users}
    ids = sandbox.owner_ids()
    assert all(o.owner_id == ids[o.email] and o.source == "hubspot" for o in owners)
    assert any(not o.active for o in owners)
    assert all(o.name == f"{u.first_name} {u.last_name}" for o in owners
               for u in world.users if u.email == o.email)


# -- push ---------------------------------------------------------------------------
def test_push_writes_values_in_batches_of_100(connector: HubSpotConnector,
                                              sandbox: HubSpotSandbox) -> None:
    records = sandbox.records()[:130]
    owner = next(o for o in connector.owners() if o.active)
    updates = [RecordUpdate(r["id"], "contact", {
        "syncer_score": str(i), "syncer_fit_grade": "A" if i % 2 else "C",
        "lifecyclestage": "marketingqualifiedlead", "hubspot_owner_id": owner.owner_id,
        "syncer_reasons": f"score {i}: visited pricing"}) for i, r in enumerate(records)]
    results = connector.push(updates)
    assert [r.record_id for r in results] == [u.record_id for u in updates]
    assert all(r.ok for r in results)
    after = {r["id"]: r for r in sandbox.records()}
    for update in updates:
        assert {k: after[update.record_id][k] for k in update.values} == dict(update.values)
    assert sandbox.calls("POST", "/crm/v3/objects/<object_type>/batch/update") == 2
    pulled = {p.record_id: p for page in connector.people() for p in page}
    assert pulled[records[7]["id"]].crm_values["syncer_score"] == "7"


def test_push_reports_per_record_failures(connector: HubSpotConnector,
                                          sandbox: HubSpotSandbox) -> None:
    good, bad_stage, bad_prop, other = sandbox.records()[:4]
    updates = [
        RecordUpdate(good["id"], "contact", {"syncer_score": "55"}),
        RecordUpdate(bad_stage["id"], "contact", {"lifecyclestage": "sal"}),
        RecordUpdate("31337", "contact", {"syncer_score": "1"}),
        RecordUpdate(bad_prop["id"], "contact", {"lead_temperature": "hot"}),
        RecordUpdate(other["id"], "contact", {"syncer_fit_grade": "B"}),
    ]
    results = connector.push(updates)
    assert [r.record_id for r in results] == [u.record_id for u in updates]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert [r.error_code for r in results] == [None, "INVALID_OPTION", "OBJECT_NOT_FOUND",
                                               "PROPERTY_DOESNT_EXIST", None]
    assert not any(r.retryable for r in results)
    assert all(r.message for r in results if not r.ok)
    assert [r.fields for r in results] == [(), ("lifecyclestage",), (), ("lead_temperature",),
                                           ()]
    assert sandbox.record(good["id"])["syncer_score"] == "55"
    assert sandbox.record(other["id"])["syncer_fit_grade"] == "B"
    assert sandbox.record(bad_stage["id"])["lifecyclestage"] == bad_stage["lifecyclestage"]


def test_push_merges_two_updates_of_one_record(connector: HubSpotConnector,
                                               sandbox: HubSpotSandbox) -> None:
    record = sandbox.records()[3]
    results = connector.push([RecordUpdate(record["id"], "contact", {"syncer_score": "1"}),
                              RecordUpdate(record["id"], "contact", {"syncer_fit_grade": "D"})])
    assert [r.ok for r in results] == [True, True]
    assert (sandbox.record(record["id"])["syncer_score"],
            sandbox.record(record["id"])["syncer_fit_grade"]) == ("1", "D")


# -- failures and retries -------------------------------------------------------------
def test_429_is_retried_until_it_succeeds(world: World) -> None:
    # every third request refused, however slowly a busy machine sends them
    sandbox = HubSpotSandbox(world, requests_per_10s=None,
                             faults=FaultConfig(burst_every=3, burst_length=1))
    sandbox.start()
    made = connect(sandbox, page_size=20, respect_rate_limit_headers=False)
    try:
        people = [p for page in made.people() for p in page]
        assert len(people) == len(hubspot_people(world))
        rejected = sandbox.calls(statuses={429})
        assert rejected > 0
        assert made.api_calls == sandbox.calls() == sandbox.calls(statuses={200}) + rejected
    finally:
        made.close()
        sandbox.stop()


def test_rate_limit_headers_are_spent_before_a_429(world: World) -> None:
    sandbox = HubSpotSandbox(world, requests_per_10s=3, rate_window_seconds=0.3)
    sandbox.start()
    made = connect(sandbox, page_size=20)
    try:
        people = [p for page in made.people() for p in page]
        assert len(people) == len(hubspot_people(world))
        assert sandbox.calls(statuses={429}) == 0
        assert sandbox.calls(statuses={200}) == made.api_calls > 6
    finally:
        made.close()
        sandbox.stop()


def test_bad_token_is_a_connector_error_without_the_token(sandbox: HubSpotSandbox) -> None:
    secret = "pat-na1-this-one-is-wrong"
    made = HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials={"access_token": secret}, options={"retry_policy": FAST_RETRY}))
    try:
        with pytest.raises(ConnectorError) as caught:
            made.owners()
    finally:
        made.close()
    assert "401" in str(caught.value) and "INVALID_AUTHENTICATION" in str(caught.value)
    assert secret not in str(caught.value) and caught.value.__cause__ is None
    assert made.api_calls == 1  # an auth failure is not retried


def test_unreachable_hubspot_is_transient_then_exhausted(sandbox: HubSpotSandbox) -> None:
    made = connect(sandbox, retry_policy=RetryPolicy(attempts=3, initial=0.01, maximum=0.02))
    sandbox.stop()
    try:
        with pytest.raises(RetriesExhausted):
            list(made.people())
    finally:
        made.close()
    assert made.api_calls == 3


def test_a_hanging_server_times_out_and_is_retried() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        made = HubSpotConnector(ConnectorSettings(
            name="hubspot", kind="hubspot",
            base_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            credentials={"access_token": "t"}, timeout_seconds=0.2,
            options={"retry_policy": RetryPolicy(attempts=2, initial=0.01, maximum=0.02)}))
        with pytest.raises(RetriesExhausted):  # without the timeout this would hang forever
            made.owners()
        made.close()
    assert made.api_calls == 2


def test_missing_token_is_reported_at_construction() -> None:
    with pytest.raises(ConnectorError, match="access_token"):
        HubSpotConnector(ConnectorSettings(name="hs", kind="hubspot",
                                           base_url="http://127.0.0.1:9", credentials={}))


class _RejectingBatchApi:
    """Answers like HubSpot does for some portals: a whole batch 400s for one bad input."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.calls: list[list[str]] = []

    def update_with_http_info(self, body: Any, **kwargs: Any) -> Any:
        ids = [item.id for item in body.inputs]
        self.calls.append(ids)
        if self.bad & set(ids):
            error = ApiException(status=400, reason="Bad Request")
            error.body = json.dumps({
                "status": "error", "category": "VALIDATION_ERROR", "correlationId": "x",
                "message": 'Property values were not valid: [{"isValid":false,"message":'
                           '"x","error":"INVALID_OPTION","name":"lifecyclestage"}]'})
            error.headers = {}
            raise error

        class _Response:  # what the client returns with _preload_content=False
            data = json.dumps({"status": "COMPLETE", "results": [
                {"id": i, "properties": {}} for i in ids]}).encode()
            status = 200
            headers: dict[str, str] = {}

        return _Response()


def test_whole_batch_400_is_bisected_to_the_bad_records(sandbox: HubSpotSandbox) -> None:
    made = connect(sandbox)
    made.close()  # its real API objects are not used below
    fake = _RejectingBatchApi(bad={"3", "6"})
    made._writes.batch = fake
    updates = [RecordUpdate(str(i), "contact", {"lifecyclestage": "lead"}) for i in range(8)]
    results = made.push(updates)
    assert [r.ok for r in results] == [i not in (3, 6) for i in range(8)]
    assert {r.error_code for r in results if not r.ok} == {"INVALID_OPTION"}
    assert {r.fields for r in results if not r.ok} == {("lifecyclestage",)}
    assert len(fake.calls) < 16


# -- mapping rules --------------------------------------------------------------------
@pytest.mark.parametrize(("title", "kind"), [
    ("Request a demo", ActivityType.DEMO_REQUEST),
    ("Contact sales", ActivityType.CONTACT_SALES),
    ("Pricing request", ActivityType.PRICING_REQUEST),
    ("Newsletter", ActivityType.NEWSLETTER_SIGNUP),
    ("Content download", ActivityType.CONTENT_DOWNLOAD),
    ("Event sign-up", ActivityType.FORM_FILL),
    ("", ActivityType.FORM_FILL),
])
def test_form_titles(title: str, kind: ActivityType) -> None:
    assert mapping.activity_type("e_submitted_form", {"hs_form_title": title}) is kind


def test_page_views_and_unknown_events() -> None:
    assert mapping.activity_type("e_visited_page", {
        "hs_url": "https://x.test/pricing?plan=pro"}) is ActivityType.PRICING_PAGE_VIEW
    assert mapping.activity_type("e_visited_page", {"hs_url": "https://x.test/docs"}) is \
        ActivityType.PAGE_VIEW
    assert mapping.to_activity("hs", "1", "2", "e_call_started", NOW, {}) is None


@pytest.mark.parametrize(("value", "count"), [
    ("1-5", 1), ("25-50", 25), ("10000+", 10000), ("250", 250), ("", None), (None, None),
    ("lots", None)])
def test_employees_from_range(value: str | None, count: int | None) -> None:
    assert mapping.employees_from_range(value) == count
