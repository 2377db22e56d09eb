"""Contact creation, merges and successions: the HubSpot sandbox through the strict
hubspot-api-client, then the connector's `create`, `successions` and what a merge does to
`activities` and `people`.

HubSpot facts the sandbox follows (see connectors/sandbox/hubspot/identity.py): a create
with a known email is 409 CONFLICT "Contact already exists. Existing ID: <id>" and a batch
create fails as a whole on the first one; a merge fills the survivor's empty properties,
accumulates `hs_merged_object_ids`, and the merged id answers GET as the survivor while it
leaves lists, searches and batch reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import urllib3
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.creation import BatchAnswer, ContactCreation
from connectors.hubspot.errors import Conflict, ErrorBody, property_names, read_error
from connectors.retry import RetryPolicy
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.settings import FaultConfig
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import NewPerson, RecordUpdate, Succession
from tests.sandbox_control import control, result
from tests.test_hubspot_sandbox import Clients

NOW = datetime(2026, 3, 9, 14, 0, tzinfo=timezone.utc)
LONG_AGO = NOW - timedelta(days=400)
SEARCH_RULE = "/crm/v3/objects/<object_type>/search"
CREATE_RULE = "/crm/v3/objects/<object_type>/batch/create"
FAST_RETRY = RetryPolicy(attempts=8, initial=0.05, maximum=0.5)


@pytest.fixture
def world() -> World:
    return World(seed=31, size=90, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[HubSpotSandbox]:
    made = HubSpotSandbox(world, search_requests_per_second=None,
                          merge_mode="keep_primary")
    made.start()
    yield made
    made.stop()


@pytest.fixture
def clients(sandbox: HubSpotSandbox) -> Iterator[Clients]:
    made = Clients(sandbox)
    yield made
    made.close()


def connect(sandbox: HubSpotSandbox, **options: Any) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials),
        writeback_fields=("lifecyclestage", "syncer_score"), timeout_seconds=5.0,
        options={"retry_policy": FAST_RETRY, **options}))


@pytest.fixture
def connector(sandbox: HubSpotSandbox) -> Iterator[HubSpotConnector]:
    made = connect(sandbox)
    yield made
    made.close()


def error_body(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def by_email(clients: Clients, email: str) -> list[str]:
    page = clients.search.do_search(PublicObjectSearchRequest(filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": email}]}], limit=10))
    return [r.id for r in page.results]


def listed_ids(clients: Clients) -> list[str]:
    ids, after = [], None
    while True:
        page = clients.contacts.get_page(limit=100, after=after)
        ids += [c.id for c in page.results]
        if page.paging is None:
            return ids
        after = page.paging.next.after


def with_events(world: World, count: int) -> list[str]:
    """Contact ids of HubSpot people who have HubSpot events, most events first."""
    people = [p for p in world.people() if p.in_hubspot]
    people.sort(key=lambda p: -sum(a.channel == "hubspot" for a in p.activities))
    return [contact_id_for(p.index) for p in people[:count]]


def creation(*inputs: dict[str, str]) -> BatchInputSimplePublicObjectBatchInputForCreate:
    return BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties=props, associations=[],
                                              object_write_trace_id=f"t{i}")
        for i, props in enumerate(inputs)])


# -- sandbox: creating ----------------------------------------------------------------
def test_a_created_contact_is_listed_searched_read_and_updated(
        clients: Clients, sandbox: HubSpotSandbox) -> None:
    before = sandbox.records()
    started = sandbox.now()
    made, status, _ = clients.contacts.create_with_http_info(SimplePublicObjectInputForCreate(
        properties={"email": "Ada.Byron@newco.example", "firstname": "Ada",
                    "lifecyclestage": "lead"}))
    assert status == 201
    assert int(made.id) > max(int(r["id"]) for r in before)
    assert made.properties["firstname"] == "Ada" and made.properties["hs_object_id"] == made.id
    assert made.created_at == made.updated_at and made.created_at >= started - timedelta(
        seconds=1)
    assert listed_ids(clients)[-1] == made.id
    assert by_email(clients, "ada.byron@newco.example") == [made.id]
    recent = clients.search.do_search(PublicObjectSearchRequest(filter_groups=[{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE",
         "value": str(int(started.timestamp() * 1000) - 1000)}]}], limit=100))
    assert made.id in {r.id for r in recent.results}
    read = clients.batch.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": made.id}, {"id": before[0]["id"]}], properties=["firstname"]))
    assert {r.id: r.properties["firstname"] for r in read.results} == {
        made.id: "Ada", before[0]["id"]: before[0]["firstname"]}
    clients.batch.update({"inputs": [{"id": made.id, "properties": {"syncer_score": "12"}}]})
    assert sandbox.record(made.id)["syncer_score"] == "12"
    assert clients.contacts.get_by_id(made.id, properties=["email"]).properties["email"] == \
        "Ada.Byron@newco.example"


def test_a_known_email_is_409_conflict_naming_the_existing_contact(
        clients: Clients, sandbox: HubSpotSandbox) -> None:
    known = sandbox.records()[4]
    count = len(sandbox.records())
    with pytest.raises(ApiException) as caught:
        clients.contacts.create(SimplePublicObjectInputForCreate(
            properties={"email": known["email"].upper()}))
    body = error_body(caught.value)
    assert caught.value.status == 409 and body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {known['id']}"
    assert body["correlationId"] and len(sandbox.records()) == count


def test_batch_create_is_201_and_all_or_nothing(clients: Clients,
                                                sandbox: HubSpotSandbox) -> None:
    known = sandbox.records()[2]
    data, status, _ = clients.batch.create_with_http_info(creation(
        {"email": "one@newco.example", "jobtitle": "VP Sales"},
        {"email": "two@newco.example", "industry": "Software"}))
    assert status == 201 and data.status == "COMPLETE" and data.started_at
    assert [r.object_write_trace_id for r in data.results] == ["t0", "t1"]
    created = {r.properties["email"]: r.id for r in data.results}
    assert sandbox.record(created["one@newco.example"])["jobtitle"] == "VP Sales"
    count = len(sandbox.records())
    for bad in ({"email": known["email"]}, {"email": "four@newco.example"}), \
               ({"email": "four@newco.example", "lifecyclestage": "hot"},), \
               ({"email": "four@newco.example"}, {"email": "FOUR@newco.example"}):
        with pytest.raises(ApiException) as caught:
            clients.batch.create(creation({"email": "three@newco.example"}, *bad))
        assert caught.value.status in (400, 409)
        assert len(sandbox.records()) == count  # nothing of a failed batch is created
    assert error_body(caught.value)["category"] == "CONFLICT"
    with pytest.raises(ApiException) as too_many:
        clients.batch.create(creation(*({"email": f"x{i}@newco.example"} for i in range(101))))
    assert too_many.value.status == 400 and "100" in error_body(too_many.value)["message"]


def test_creation_validation_names_the_property(clients: Clients) -> None:
    for properties, code, name in (
            ({"email": "v@newco.example", "lifecyclestage": "hot"}, "INVALID_OPTION",
             "lifecyclestage"),
            ({"email": "v@newco.example", "favourite_colour": "teal"},
             "PROPERTY_DOESNT_EXIST", "favourite_colour"),
            ({"email": "v@newco.example", "hs_merged_object_ids": "1"}, "READ_ONLY_VALUE",
             "hs_merged_object_ids")):
        with pytest.raises(ApiException) as caught:
            clients.contacts.create(SimplePublicObjectInputForCreate(properties=properties))
        body = error_body(caught.value)
        assert caught.value.status == 400 and body["category"] == "VALIDATION_ERROR"
        assert code in body["message"]
        assert property_names(body["message"]) == (name,)


# -- sandbox: merging -----------------------------------------------------------------
def test_merge_keeps_the_primary_and_retires_the_merged_id(
        clients: Clients, sandbox: HubSpotSandbox, world: World) -> None:
    primary, merged = with_events(world, 2)
    control(sandbox, "edit", id=primary, field="jobtitle", value=None)
    control(sandbox, "edit", id=merged, field="jobtitle", value="Head of Revenue Operations")
    before = sandbox.record(primary)
    survivor = clients.contacts.merge(PublicMergeInput(primary_object_id=primary,
                                                       object_id_to_merge=merged))
    assert survivor.id == primary and survivor.updated_at > datetime.fromisoformat(
        before["lastmodifieddate"].replace("Z", "+00:00"))
    after = sandbox.record(primary)
    assert after["hs_merged_object_ids"] == merged
    assert after["jobtitle"] == "Head of Revenue Operations"  # empty: filled from merged
    assert after["email"] == before["email"]  # set: the primary's value stays
    # the old id answers GET as the survivor, and is gone everywhere else
    assert clients.contacts.get_by_id(merged).id == primary
    assert merged not in listed_ids(clients) and primary in listed_ids(clients)
    read = clients.batch.read_with_http_info(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": merged}, {"id": primary}], properties=["email"]))
    assert read[1] == 207 and [r.id for r in read[0].results] == [primary]
    assert read[0].errors[0].context["ids"] == [merged]
    old_email = sandbox.world.person(int(merged) - 1001).email
    assert by_email(clients, old_email) == []
    has = clients.search.do_search(PublicObjectSearchRequest(filter_groups=[{"filters": [
        {"propertyName": "hs_merged_object_ids", "operator": "HAS_PROPERTY"}]}],
        properties=["hs_merged_object_ids"]))
    assert [(r.id, r.properties["hs_merged_object_ids"]) for r in has.results] == [
        (primary, merged)]
    written = clients.batch.update_with_http_info(
        {"inputs": [{"id": merged, "properties": {"syncer_score": "1"}}]})
    assert written[1] == 207 and written[0].errors[0].category == "OBJECT_NOT_FOUND"
    with pytest.raises(ApiException) as caught:
        clients.contacts.create(SimplePublicObjectInputForCreate(
            properties={"email": old_email}))
    assert error_body(caught.value)["message"].endswith(f"Existing ID: {primary}")


def test_merged_events_belong_to_the_survivor(clients: Clients, sandbox: HubSpotSandbox,
                                              world: World) -> None:
    primary, merged = with_events(world, 2)
    own = {pid: clients.events.get_page(object_type="contact", object_id=int(pid),
                                        limit=1000).results for pid in (primary, merged)}
    assert own[primary] and own[merged]
    control(sandbox, "merge", primary_id=primary, merged_id=merged)
    now_own = clients.events.get_page(object_type="contact", object_id=int(primary),
                                      limit=1000).results
    assert sorted(e.id for e in now_own) == sorted(e.id for e in own[primary] + own[merged])
    assert {e.object_id for e in now_own} == {primary}
    assert clients.events.get_page(object_type="contact", object_id=int(merged),
                                   limit=1000).results == []
    everything = clients.events.get_page(object_type="contact", limit=1000).results
    assert merged not in {e.object_id for e in everything}


def test_merged_ids_accumulate_and_bad_merges_are_refused(
        clients: Clients, sandbox: HubSpotSandbox) -> None:
    a, b, c, d = (r["id"] for r in sandbox.records()[:4])
    control(sandbox, "merge", primary_id=a, merged_id=b)
    control(sandbox, "merge", primary_id=a, merged_id=c)
    assert sandbox.record(a)["hs_merged_object_ids"] == f"{b};{c}"
    control(sandbox, "merge", primary_id=d, merged_id=a)
    assert sandbox.record(d)["hs_merged_object_ids"] == f"{b};{c};{a}"
    assert clients.contacts.get_by_id(b).id == d  # a merge of a merge still leads there
    for primary, merged, status in ((d, d, 400), (d, b, 404), ("987654321", d, 404)):
        with pytest.raises(ApiException) as caught:
            clients.contacts.merge(PublicMergeInput(primary_object_id=primary,
                                                    object_id_to_merge=merged))
        assert caught.value.status == status
    with pytest.raises(ValueError, match="No contact with id"):
        sandbox.merge(d, b)


def test_new_record_merges_make_a_new_contact(world: World) -> None:
    sandbox = HubSpotSandbox(world, merge_mode="new_record")
    sandbox.start()
    clients = Clients(sandbox)
    try:
        primary, merged = with_events(world, 2)
        emails = {i: sandbox.record(i)["email"] for i in (primary, merged)}
        survivor = clients.contacts.merge(PublicMergeInput(primary_object_id=primary,
                                                           object_id_to_merge=merged))
        assert survivor.id not in (primary, merged)
        record = sandbox.record(survivor.id)
        assert record["hs_merged_object_ids"] == f"{primary};{merged}"
        assert record["email"] == emails[primary]
        assert {clients.contacts.get_by_id(i).id for i in (primary, merged)} == {survivor.id}
        assert not {primary, merged} & set(listed_ids(clients))
        events = clients.events.get_page(object_type="contact", object_id=int(survivor.id),
                                         limit=1000).results
        assert events and {e.object_id for e in events} == {survivor.id}
    finally:
        clients.close()
        sandbox.stop()


def test_an_email_change_moves_search_and_lookups(clients: Clients,
                                                  sandbox: HubSpotSandbox) -> None:
    record = sandbox.records()[6]
    control(sandbox, "edit", id=record["id"], field="email", value="moved@elsewhere.example")
    assert by_email(clients, "moved@elsewhere.example") == [record["id"]]
    assert by_email(clients, record["email"]) == []
    assert clients.contacts.get_by_id("moved@elsewhere.example", id_property="email").id == \
        record["id"]
    with pytest.raises(ApiException):
        clients.contacts.get_by_id(record["email"], id_property="email")
    freed = clients.contacts.create(SimplePublicObjectInputForCreate(
        properties={"email": record["email"]}))  # the old address is free again
    assert freed.id != record["id"]


# -- connector: create ----------------------------------------------------------------
def person(key: str, email: str, **fields: Any) -> NewPerson:
    return NewPerson(key=key, email=email, **fields)


def test_create_makes_contacts_that_read_back(connector: HubSpotConnector,
                                              sandbox: HubSpotSandbox) -> None:
    since = sandbox.now()
    people = [person("p1", "grace@newco.example", first_name="Grace", last_name="Hopper",
                     title="VP Engineering", company="Newco", industry="Software",
                     country="United States", employees=120,
                     values={"syncer_score": "64", "lifecyclestage": "marketingqualifiedlead",
                             "syncer_fit_grade": None}),
              person("p2", "alan@newco.example")]
    results = connector.create(people)
    assert [(r.key, r.ok, r.existed, r.object_type) for r in results] == [
        ("p1", True, False, "contact"), ("p2", True, False, "contact")]
    record = sandbox.record(results[0].record_id or "")
    assert {k: record[k] for k in ("email", "firstname", "lastname", "jobtitle", "company",
                                   "industry", "country", "syncer_score", "lifecyclestage")} \
        == {"email": "grace@newco.example", "firstname": "Grace", "lastname": "Hopper",
            "jobtitle": "VP Engineering", "company": "Newco", "industry": "Software",
            "country": "United States", "syncer_score": "64",
            "lifecyclestage": "marketingqualifiedlead"}
    pulled = {p.record_id: p for page in connector.people(since) for p in page}
    assert set(pulled) == {r.record_id for r in results}
    assert pulled[results[0].record_id or ""].crm_values["syncer_score"] == "64"
    assert sandbox.calls("POST", CREATE_RULE) == 1


def test_a_known_email_is_linked_and_the_rest_are_created(connector: HubSpotConnector,
                                                          sandbox: HubSpotSandbox) -> None:
    known = sandbox.records()[3:6]
    count = len(sandbox.records())
    people = [person(f"n{i}", f"new{i}@newco.example") for i in range(120)]
    for at, record in zip((10, 40, 70), known, strict=True):
        people.insert(at, person(f"known{at}", record["email"].upper()))
    people.append(person("again", "NEW7@newco.example"))  # one email twice: one contact
    results = connector.create(people)
    assert all(r.ok for r in results) and [r.key for r in results] == [p.key for p in people]
    linked = {r.key: r.record_id for r in results if r.existed}
    assert linked == {"known10": known[0]["id"], "known40": known[1]["id"],
                      "known70": known[2]["id"],
                      "again": next(r.record_id for r in results if r.key == "n7")}
    made = [r.record_id for r in results if not r.existed]
    assert len(set(made)) == 120 and len(sandbox.records()) == count + 120
    # 100 + 20 inputs; the 409 costs one batch read by email and one resend, however
    # many of the batch were known
    assert sandbox.calls("POST", CREATE_RULE) == 3
    assert sandbox.calls("POST", CREATE_RULE, {409}) == 1
    assert sandbox.calls("POST", "/crm/v3/objects/<object_type>/batch/read") == 1


def test_create_failures_are_per_person_and_name_the_property(
        connector: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    count = len(sandbox.records())
    results = connector.create([
        person("ok1", "fine1@newco.example"),
        person("stage", "bad1@newco.example", values={"lifecyclestage": "hot"}),
        person("prop", "bad2@newco.example", values={"lead_temperature": "warm"}),
        person("ok2", "fine2@newco.example"),
        person("nomail", "  ")])
    outcome = {r.key: r for r in results}
    assert outcome["ok1"].ok and outcome["ok2"].ok
    assert (outcome["stage"].ok, outcome["stage"].error_code) == (False, "INVALID_OPTION")
    assert (outcome["stage"].message or "").startswith("lifecyclestage: ")
    assert outcome["prop"].error_code == "PROPERTY_DOESNT_EXIST"
    assert (outcome["prop"].message or "").startswith("lead_temperature: ")
    assert outcome["nomail"].error_code == "MISSING_EMAIL"
    assert len(sandbox.records()) == count + 2


def test_create_retries_rate_limits_without_duplicates(world: World) -> None:
    # every second request refused, however slowly a busy machine sends them
    sandbox = HubSpotSandbox(world, requests_per_10s=None,
                             faults=FaultConfig(burst_every=2, burst_length=1))
    sandbox.start()
    made = connect(sandbox, respect_rate_limit_headers=False)
    try:
        count = len(sandbox.records())
        results = made.create([person(f"r{i}", f"r{i}@newco.example") for i in range(3)]
                              + [person("k", sandbox.records()[0]["email"])])
        assert all(r.ok for r in results) and results[-1].existed
        assert sandbox.calls(statuses={429}) > 0
        assert len(sandbox.records()) == count + 3
    finally:
        made.close()
        sandbox.stop()


def test_a_lost_answer_is_retried_and_links_what_it_made(connector: HubSpotConnector,
                                                         sandbox: HubSpotSandbox) -> None:
    real = connector._writes.batch.create_with_http_info
    lost: list[int] = []

    def answer_lost_once(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)  # HubSpot made the contacts ...
        if not lost:
            lost.append(1)  # ... but the answer never arrived
            raise urllib3.exceptions.ReadTimeoutError(None, "/batch/create", "timed out")
        return answer
    connector._writes.batch.create_with_http_info = answer_lost_once
    count = len(sandbox.records())
    results = connector.create([person(f"l{i}", f"lost{i}@newco.example") for i in range(4)])
    assert all(r.ok for r in results) and lost
    assert len({r.record_id for r in results}) == 4
    assert len(sandbox.records()) == count + 4  # linked on the retry, never duplicated
    emails = {r["id"]: r["email"] for r in sandbox.records()}
    assert [emails[r.record_id or ""] for r in results] == [
        f"lost{i}@newco.example" for i in range(4)]


# -- connector: successions, events, email changes ------------------------------------
def test_successions_report_merges_at_or_after_since(connector: HubSpotConnector,
                                                     sandbox: HubSpotSandbox) -> None:
    a, b, c = (r["id"] for r in sandbox.records()[5:8])
    before = sandbox.now()
    assert list(connector.successions(before)) == []
    assert sandbox.calls("POST", SEARCH_RULE) == 1  # nothing merged: one search
    control(sandbox, "merge", primary_id=a, merged_id=b)
    pages = list(connector.successions(before))
    assert [s for page in pages for s in page] == [Succession(
        source="hubspot", old_id=b, new_id=a, cause="merged", new_object_type="contact",
        at=pages[0][0].at)]
    merged_at = pages[0][0].at
    assert merged_at is not None and merged_at >= before
    later = merged_at + timedelta(milliseconds=1)
    assert list(connector.successions(later)) == []  # before `since`: not reported again
    # ids accumulate: both come with the survivor's new change
    control(sandbox, "merge", primary_id=a, merged_id=c)
    assert sorted((s.old_id, s.new_id) for page in connector.successions(later)
                  for s in page) == sorted([(b, a), (c, a)])
    assert sandbox.record(a)["hs_merged_object_ids"] == f"{b};{c}"


def test_successions_walk_past_the_search_cap_each_merge_once(world: World) -> None:
    sandbox = HubSpotSandbox(world, search_cap=6, search_requests_per_second=None,
                             merge_mode="keep_primary")
    sandbox.start()
    made = connect(sandbox, search_cap=6)
    made._search_gate.interval = 0  # the sandbox has no search rate limit here
    try:
        ids = [r["id"] for r in sandbox.records()[:30]]
        before = sandbox.now()
        for primary, merged in zip(ids[::2], ids[1::2], strict=True):
            control(sandbox, "merge", primary_id=primary, merged_id=merged)
        found = [(s.old_id, s.new_id) for page in made.successions(before) for s in page]
        assert found == list(zip(ids[1::2], ids[::2], strict=True))
        assert sandbox.calls("POST", SEARCH_RULE, {400}) == 0
        assert sandbox.calls("POST", SEARCH_RULE) == 3  # 6 + 6 + 3 survivors
    finally:
        made.close()
        sandbox.stop()


def test_successions_in_new_record_mode_name_both_old_ids(world: World) -> None:
    sandbox = HubSpotSandbox(world, merge_mode="new_record")
    sandbox.start()
    made = connect(sandbox)
    try:
        a, b = (r["id"] for r in sandbox.records()[:2])
        before = sandbox.now()
        survivor = result(sandbox, "merge", primary_id=a, merged_id=b)["id"]
        found = [s for page in made.successions(before) for s in page]
        assert {(s.old_id, s.new_id) for s in found} == {(a, survivor), (b, survivor)}
        pulled = [p.record_id for page in made.people(before) for p in page]
        assert pulled == [survivor]
    finally:
        made.close()
        sandbox.stop()


def test_activities_of_a_merged_contact_come_under_the_survivor(
        connector: HubSpotConnector, sandbox: HubSpotSandbox, world: World) -> None:
    primary, merged = with_events(world, 2)

    def counts() -> dict[str, int]:
        got: dict[str, int] = {}
        for page in connector.activities(LONG_AGO):
            for activity in page:
                got[activity.record_id] = got.get(activity.record_id, 0) + 1
        return got
    before = counts()
    assert before[primary] and before[merged]
    control(sandbox, "merge", primary_id=primary, merged_id=merged)
    after = counts()
    assert merged not in after
    assert after[primary] == before[primary] + before[merged]
    assert sum(after.values()) == sum(before.values())


def test_an_email_change_is_pulled_with_people_since(connector: HubSpotConnector,
                                                     sandbox: HubSpotSandbox) -> None:
    record = sandbox.records()[9]
    since = sandbox.now()
    control(sandbox, "edit", id=record["id"], field="email", value="changed@elsewhere.example")
    pulled = [p for page in connector.people(since) for p in page]
    assert [(p.record_id, p.email) for p in pulled] == [
        (record["id"], "changed@elsewhere.example")]
    results = connector.push([RecordUpdate(record["id"], "contact", {"syncer_score": "3"})])
    assert results[0].ok


# -- errors and the creation rules without a server -----------------------------------
def test_error_bodies_name_properties_and_the_existing_contact() -> None:
    newer = json.dumps({
        "status": "error", "category": "OBJECT_ALREADY_EXISTS",
        "message": "Contact already exists. Existing ID: 2926551",
        "errors": [{"message": "A contact with email a@b.example already exists. "
                               "Existing ID: 2926551", "in": "email"}]})
    body = read_error(newer)
    assert (body.category, body.existing_id, body.fields) == (
        "OBJECT_ALREADY_EXISTS", "2926551", ("email",))
    assert property_names("bad", {"propertyName": ["industry"]},
                          [{"context": {"propertyName": ["country"]}}]) == (
        "industry", "country")
    assert read_error("not json") == ErrorBody("UNKNOWN", "")


class _FakeHubSpot:
    """Batch create over a dict of known emails (a conflict names only the first known
    one); `find` knows only `findable` (others are addresses a merge left behind)."""

    def __init__(self, known: dict[str, str], findable: set[str],
                 drop: frozenset[str] = frozenset(), find_fails: bool = False) -> None:
        self.known = known
        self.findable = findable
        self.drop = drop
        self.find_fails = find_fails
        self.sent: list[list[str]] = []
        self.next_id = 5000

    def send(self, inputs: list[tuple[str, dict[str, str]]]) -> BatchAnswer:
        self.sent.append([props["email"] for _, props in inputs])
        for _, props in inputs:
            existing = self.known.get(props["email"].lower())
            if existing is not None:
                raise Conflict("409", ErrorBody("CONFLICT", "exists", (),
                                                existing if existing != "-" else None))
        created = {}
        for trace, props in inputs:
            if props["email"] not in self.drop:
                self.next_id += 1
                created[trace] = str(self.next_id)
        return BatchAnswer(created, {})

    def find(self, emails: list[str]) -> dict[str, str]:
        if self.find_fails:
            raise ConnectorError("batch read failed")
        return {e: self.known[e] for e in emails if e in self.known and e in self.findable}


@pytest.mark.parametrize("find_fails", [False, True])
def test_conflicts_the_lookup_cannot_explain_are_bisected(find_fails: bool) -> None:
    fake = _FakeHubSpot(known={"m@x.example": "77", "q@x.example": "-", "f@x.example": "88"},
                        findable={"f@x.example"}, drop=frozenset({"d@x.example"}),
                        find_fails=find_fails)
    emails = ["a@x.example", "m@x.example", "b@x.example", "f@x.example", "c@x.example",
              "q@x.example", "d@x.example"]
    results = ContactCreation(fake.send, fake.find, batch_size=5).run(
        [NewPerson(key=e, email=e) for e in emails])
    outcome = {r.key: r for r in results}
    assert (outcome["m@x.example"].existed, outcome["m@x.example"].record_id) == (True, "77")
    assert (outcome["f@x.example"].existed, outcome["f@x.example"].record_id) == (True, "88")
    assert outcome["q@x.example"].error_code == "CONFLICT"  # 409 without an id: not linked
    assert outcome["d@x.example"].error_code == "UNCONFIRMED"
    assert all(outcome[e].ok and not outcome[e].existed
               for e in ("a@x.example", "b@x.example", "c@x.example"))
    assert fake.sent[0] == emails[:5] and len(fake.sent) < 14
