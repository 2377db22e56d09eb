"""Conformance of the HubSpot sandbox, checked through the real hubspot-api-client.

Every response is deserialized with `client_side_validation = True`, so a missing required
field (createdAt, correlationId, paging.next.after, ...) fails the test the way it would
fail a strict client against real HubSpot.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import hubspot.crm.associations.v4 as associations_pkg
import hubspot.crm.contacts as contacts_pkg
import hubspot.crm.owners as owners_pkg
import hubspot.crm.properties as properties_pkg
import hubspot.crm.schemas as schemas_pkg
import hubspot.events as events_pkg
import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from hubspot.events.exceptions import ApiException as EventsApiException

from connectors.sandbox.faults import HubSpotLimits
from connectors.sandbox.hubspot.server import UNMATCHED_RULE, HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.world import World
from tests.sandbox_control import control

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=timezone.utc)
BATCH_RULE = "/crm/v3/objects/<object_type>/batch/update"


class Clients:
    """Strict API objects of the real client pointed at one sandbox."""

    def __init__(self, sandbox: HubSpotSandbox, token: str | None = None) -> None:
        self._made: list[Any] = []
        self.base_url = sandbox.base_url
        self.contacts = self._api(contacts_pkg, "BasicApi", sandbox, token)
        self.batch = self._api(contacts_pkg, "BatchApi", sandbox, token)
        self.search = self._api(contacts_pkg, "SearchApi", sandbox, token)
        self.owners = self._api(owners_pkg, "OwnersApi", sandbox, token)
        self.properties = self._api(properties_pkg, "CoreApi", sandbox, token)
        self.events = self._api(events_pkg, "EventsApi", sandbox, token)

    def _api(self, package: Any, name: str, sandbox: HubSpotSandbox,
             token: str | None) -> Any:
        configuration = package.Configuration(host=sandbox.base_url)
        configuration.access_token = token or sandbox.credentials["access_token"]
        configuration.client_side_validation = True
        configuration.retries = False
        api = getattr(package, name)(api_client=package.ApiClient(configuration=configuration))
        self._made.append(api)
        return api

    def close(self) -> None:
        for api in self._made:
            api.api_client.rest_client.pool_manager.clear()


def start(world: World, **kwargs: Any) -> HubSpotSandbox:
    sandbox = HubSpotSandbox(world, **kwargs)
    sandbox.start()
    return sandbox


@pytest.fixture
def world() -> World:
    return World(seed=11, size=180, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[HubSpotSandbox]:
    sandbox = start(world)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def clients(sandbox: HubSpotSandbox) -> Iterator[Clients]:
    made = Clients(sandbox)
    yield made
    made.close()


def hubspot_people(world: World) -> list[Any]:
    return [p for p in world.people() if p.in_hubspot]


def error_body(error: ApiException | OwnersApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


# -- contacts list ----------------------------------------------------------------------
def test_list_walks_every_contact_in_pages(clients: Clients, world: World) -> None:
    expected = {contact_id_for(p.index): p.email for p in hubspot_people(world)}
    seen: dict[str, str] = {}
    after, pages = None, 0
    while True:
        page = clients.contacts.get_page(limit=40, after=after, properties=["email"])
        pages += 1
        assert len(page.results) <= 40
        for contact in page.results:
            assert contact.id not in seen
            assert contact.archived is False and contact.created_at <= contact.updated_at
            seen[contact.id] = contact.properties["email"]
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.endswith(f"after={after}")
    assert seen == expected
    assert pages == -(-len(expected) // 40)


def test_list_default_limit_is_ten_and_unset_properties_are_null(clients: Clients,
                                                                 world: World) -> None:
    page = clients.contacts.get_page(properties=["jobtitle", "industry", "syncer_score",
                                                 "no_such_property"])
    assert len(page.results) == 10 and page.paging.next.after
    people = {contact_id_for(p.index): p for p in hubspot_people(world)}
    for contact in page.results:
        props = contact.properties
        person = people[contact.id]
        assert props["syncer_score"] is None  # requested, never set
        assert props["jobtitle"] == (person.title or None)
        assert props["industry"] == (person.industry or None)
        assert "no_such_property" not in props  # unknown names are left out
        assert props["hs_object_id"] == contact.id and props["lastmodifieddate"]


def test_contacts_carry_realistic_starting_values(sandbox: HubSpotSandbox) -> None:
    records = sandbox.records()
    stages = [r["lifecyclestage"] for r in records]
    assert set(stages) <= {"subscriber", "lead", "salesqualifiedlead", "opportunity",
                           "customer"}
    # Opportunity and customer are the world's planted outcomes (about one in six); a few
    # more are already with sales at SQL.
    reached = sum(s in ("opportunity", "customer") for s in stages)
    assert len(records) * 0.08 < reached < len(records) * 0.3
    assert 0 < stages.count("salesqualifiedlead") < len(records) * 0.1
    owned = sum(r["hubspot_owner_id"] is not None for r in records)
    assert 0 < owned < len(records) * 0.25
    assert {r["numemployees"] for r in records} <= {
        "1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000-5000", "5000-10000",
        "10000+"}


def test_get_by_id_and_unknown_id_is_404(clients: Clients, sandbox: HubSpotSandbox) -> None:
    first = sandbox.records()[0]
    contact = clients.contacts.get_by_id(first["id"], properties=["email"])
    assert contact.properties["email"] == first["email"]
    by_email = clients.contacts.get_by_id(first["email"], id_property="email")
    assert by_email.id == first["id"]
    with pytest.raises(ApiException) as caught:
        clients.contacts.get_by_id("999999999")
    assert caught.value.status == 404
    assert error_body(caught.value)["category"] == "OBJECT_NOT_FOUND"


# -- batch update ---------------------------------------------------------------------
def batch(*inputs: tuple[str, dict[str, Any]]) -> BatchInputSimplePublicObjectBatchInput:
    return BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=record_id, properties=props)
        for record_id, props in inputs])


def test_batch_update_writes_and_bumps_modification_time(clients: Clients,
                                                         sandbox: HubSpotSandbox) -> None:
    a, b = sandbox.records()[:2]
    data, status, _ = clients.batch.update_with_http_info(batch(
        (a["id"], {"syncer_score": "73", "lifecyclestage": "marketingqualifiedlead"}),
        (b["id"], {"syncer_fit_grade": "B", "syncer_reasons": "Visited pricing twice"})))
    assert status == 200 and data.status == "COMPLETE"
    assert {r.id for r in data.results} == {a["id"], b["id"]}
    after_a, after_b = sandbox.record(a["id"]), sandbox.record(b["id"])
    assert after_a["syncer_score"] == "73"
    assert after_a["lifecyclestage"] == "marketingqualifiedlead"
    assert (after_b["syncer_fit_grade"], after_b["syncer_reasons"]) == (
        "B", "Visited pricing twice")
    assert after_a["lastmodifieddate"] > a["lastmodifieddate"]
    fetched = clients.contacts.get_by_id(a["id"], properties=["syncer_score"])
    assert fetched.properties["syncer_score"] == "73"
    assert fetched.updated_at > datetime.fromisoformat(
        a["lastmodifieddate"].replace("Z", "+00:00"))


def test_batch_update_partial_failure_is_207_per_input(clients: Clients,
                                                       sandbox: HubSpotSandbox) -> None:
    good, bad_prop, bad_stage, bad_owner = sandbox.records()[:4]
    archived_owner = sandbox.owner_ids()[next(
        u.email for u in sandbox.world.users if not u.active)]
    data, status, _ = clients.batch.update_with_http_info(batch(
        (good["id"], {"syncer_score": "12"}),
        (bad_prop["id"], {"syncer_score": "5", "favourite_colour": "teal"}),
        (bad_stage["id"], {"lifecyclestage": "hot"}),
        (bad_owner["id"], {"hubspot_owner_id": archived_owner}),
        ("424242424", {"syncer_score": "1"})))
    assert status == 207 and data.num_errors == 4
    assert [r.id for r in data.results] == [good["id"]]
    by_id = {i: e for e in data.errors for i in e.context["ids"]}
    assert by_id["424242424"].category == "OBJECT_NOT_FOUND"
    for record_id, code in ((bad_prop["id"], "PROPERTY_DOESNT_EXIST"),
                            (bad_stage["id"], "INVALID_OPTION"),
                            (bad_owner["id"], "INVALID_OWNER_ID")):
        error = by_id[record_id]
        assert (error.status, error.category) == ("error", "VALIDATION_ERROR")
        assert code in error.message and error.errors == [] and error.links == {}
    assert sandbox.record(good["id"])["syncer_score"] == "12"
    assert sandbox.record(bad_prop["id"]) == bad_prop  # a failed input changes nothing
    assert sandbox.record(bad_stage["id"])["lifecyclestage"] == bad_stage["lifecyclestage"]


def test_batch_update_over_100_inputs_is_400(clients: Clients,
                                             sandbox: HubSpotSandbox) -> None:
    ids = [r["id"] for r in sandbox.records()][:101]
    with pytest.raises(ApiException) as caught:
        clients.batch.update(batch(*[(i, {"syncer_score": "1"}) for i in ids]))
    assert caught.value.status == 400
    body = error_body(caught.value)
    assert body["category"] == "VALIDATION_ERROR" and "100" in body["message"]
    assert all(r["syncer_score"] is None for r in sandbox.records())
    assert sandbox.calls("POST", BATCH_RULE, {400}) == 1


# -- auth, routes ---------------------------------------------------------------------
def test_bad_or_missing_token_is_401_without_echoing_it(sandbox: HubSpotSandbox) -> None:
    wrong = Clients(sandbox, token="pat-na1-not-the-right-token")
    try:
        with pytest.raises(ApiException) as caught:
            wrong.contacts.get_page()
    finally:
        wrong.close()
    assert caught.value.status == 401
    body = error_body(caught.value)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert uuid.UUID(body["correlationId"]) and body["message"]
    assert "not-the-right-token" not in str(caught.value.body)
    response = urllib3.request("GET", sandbox.base_url + "/crm/v3/objects/contacts",
                               retries=False)
    assert response.status == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


def test_unknown_route_is_404_object_not_found(sandbox: HubSpotSandbox) -> None:
    response = urllib3.request("GET", sandbox.base_url + "/crm/v3/objects/widgets",
                               headers={"Authorization": "Bearer hubspot-sandbox-token"},
                               retries=False)
    assert response.status == 404 and response.json()["category"] == "OBJECT_NOT_FOUND"
    response = urllib3.request("GET", sandbox.base_url + "/no/such/api", retries=False)
    assert response.status == 404 and uuid.UUID(response.json()["correlationId"])
    assert sandbox.call_counts[("GET", UNMATCHED_RULE, 404)] == 1


# -- owners, properties ---------------------------------------------------------------
def test_owners_active_and_archived(clients: Clients, world: World) -> None:
    active, after = [], None
    while True:
        page = clients.owners.get_page(limit=3, after=after)
        active.extend(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    archived = clients.owners.get_page(archived=True).results
    assert {o.email for o in active} == {u.email for u in world.users if u.active}
    assert {o.email for o in archived} == {u.email for u in world.users if not u.active}
    for owner in active + archived:
        assert isinstance(owner.id, str) and isinstance(owner.user_id, int)
        assert owner.type == "PERSON" and owner.teams == []
    assert all(o.archived for o in archived) and not any(o.archived for o in active)
    one = clients.owners.get_by_id(int(active[0].id))
    assert one.email == active[0].email


def test_property_list_describes_every_contact_property(clients: Clients,
                                                       sandbox: HubSpotSandbox) -> None:
    listed = {p.name: p for p in clients.properties.get_all("contacts").results}
    assert set(sandbox.records()[0]) - {"id"} == set(listed)
    stage = listed["lifecyclestage"]
    assert (stage.type, stage.field_type) == ("enumeration", "radio")
    assert [o.value for o in stage.options][:3] == ["subscriber", "lead",
                                                    "marketingqualifiedlead"]
    owner_options = {o.value for o in listed["hubspot_owner_id"].options}
    active = {o for e, o in sandbox.owner_ids().items()
              if any(u.email == e and u.active for u in sandbox.world.users)}
    assert owner_options == active
    assert listed["numemployees"].options[-1].value == "10000+"
    assert listed["hs_object_id"].modification_metadata.read_only_value is True
    assert listed["syncer_score"].type == "number"


# -- events ---------------------------------------------------------------------------
def test_events_page_through_every_hubspot_activity(clients: Clients, world: World) -> None:
    expected = sorted((contact_id_for(p.index), a.occurred_at) for p in hubspot_people(world)
                      for a in p.activities if a.channel == "hubspot")
    got, after = [], None
    while True:
        page = clients.events.get_page(object_type="contact", limit=75, after=after,
                                       sort=["ASCENDING"])
        got.extend(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert sorted((e.object_id, e.occurred_at) for e in got) == expected
    assert [e.occurred_at for e in got] == sorted(e.occurred_at for e in got)
    assert len({e.id for e in got}) == len(got)
    assert {e.event_type for e in got} <= set(clients.events.get_types().event_types)
    views = [e for e in got if e.event_type == "e_visited_page"]
    assert views and all(e.properties["hs_url"].startswith("https://") for e in views)
    forms = [e for e in got if e.event_type == "e_submitted_form"]
    assert forms and all(e.properties["hs_form_title"] for e in forms)


def test_events_filter_by_object_time_and_type(clients: Clients, world: World) -> None:
    person = max(hubspot_people(world), key=lambda p: sum(a.channel == "hubspot"
                                                          for a in p.activities))
    own = [a for a in person.activities if a.channel == "hubspot"]
    cid = contact_id_for(person.index)
    page = clients.events.get_page(object_type="contact", object_id=int(cid), limit=500)
    assert sorted(e.occurred_at for e in page.results) == sorted(a.occurred_at for a in own)
    assert [e.occurred_at for e in page.results] == sorted(
        (e.occurred_at for e in page.results), reverse=True)  # newest first by default
    pivot = sorted(a.occurred_at for a in own)[len(own) // 2]
    later = clients.events.get_page(object_type="contact", object_id=int(cid),
                                    occurred_after=pivot, limit=500).results
    assert sorted(e.occurred_at for e in later) == sorted(
        a.occurred_at for a in own if a.occurred_at > pivot)
    opens = clients.events.get_page(object_type="contact", event_type="e_opened_email",
                                    limit=1000).results
    assert opens and {e.event_type for e in opens} == {"e_opened_email"}


# -- search ---------------------------------------------------------------------------
def test_search_filters_sorts_and_pages(world: World) -> None:
    sandbox = start(world, search_requests_per_second=None)
    clients = Clients(sandbox)
    try:
        check_search(clients, sandbox)
    finally:
        clients.close()
        sandbox.stop()


def check_search(clients: Clients, sandbox: HubSpotSandbox) -> None:
    records = sandbox.records()
    pivot = sorted(r["lastmodifieddate"] for r in records)[len(records) // 3]
    pivot_ms = int(datetime.fromisoformat(pivot.replace("Z", "+00:00")).timestamp() * 1000)
    expected = sorted((r["id"] for r in records if r["lastmodifieddate"] >= pivot), key=int)
    groups = [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(pivot_ms)}]}]
    got, after = [], None
    while True:
        page = clients.search.do_search(PublicObjectSearchRequest(
            filter_groups=groups, sorts=["hs_object_id"],
            properties=["email", "lifecyclestage"], limit=7, after=after))
        assert page.total == len(expected)
        assert set(page.results[0].properties) >= {"email", "lifecyclestage"}
        got.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert got == expected
    stages = clients.search.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lifecyclestage", "operator": "IN",
                                     "values": ["customer", "opportunity"]}]}],
        properties=["lifecyclestage"], limit=200))
    assert {r.id for r in stages.results} == {
        r["id"] for r in records if r["lifecyclestage"] in ("customer", "opportunity")}
    newest = clients.search.do_search(PublicObjectSearchRequest(
        sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], limit=3))
    assert [r.id for r in newest.results] == [r["id"] for r in sorted(
        records, key=lambda r: r["lastmodifieddate"], reverse=True)[:3]]


def test_search_has_its_own_per_second_limit(clients: Clients) -> None:
    statuses = []
    for _ in range(7):
        try:
            clients.search.do_search(PublicObjectSearchRequest(limit=1))
            statuses.append(200)
        except ApiException as error:
            statuses.append(error.status)
            assert error_body(error)["policyName"] == "SECONDLY"
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:]


def test_search_cap_answers_400_past_the_last_reachable_result(world: World) -> None:
    sandbox = start(world, search_cap=25, search_requests_per_second=None)
    clients = Clients(sandbox)
    try:
        page = clients.search.do_search(PublicObjectSearchRequest(limit=20, after="20"))
        assert len(page.results) == 5 and page.total > 25
        assert page.paging.next.after == "25"
        with pytest.raises(ApiException) as caught:
            clients.search.do_search(PublicObjectSearchRequest(limit=20, after="25"))
        assert caught.value.status == 400
        assert error_body(caught.value)["category"] == "VALIDATION_ERROR"
    finally:
        clients.close()
        sandbox.stop()


def test_search_cap_is_10000_on_a_large_portal() -> None:
    big = World(seed=5, size=15_400, now=NOW)
    sandbox = start(big)
    clients = Clients(sandbox)
    try:
        page = clients.search.do_search(PublicObjectSearchRequest(limit=200, after="9900"))
        assert page.total > 10_000 and len(page.results) == 100
        with pytest.raises(ApiException) as caught:
            clients.search.do_search(PublicObjectSearchRequest(
                limit=200, after=page.paging.next.after))
        assert caught.value.status == 400
    finally:
        clients.close()
        sandbox.stop()


def test_search_rejects_limits_beyond_hubspots() -> None:
    sandbox = start(World(seed=2, size=60, now=NOW))
    clients = Clients(sandbox)
    try:
        too_many = [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
        for request in (PublicObjectSearchRequest(limit=201),
                        PublicObjectSearchRequest(filter_groups=too_many)):
            with pytest.raises(ApiException) as caught:
                clients.search.do_search(request)
            assert caught.value.status == 400
    finally:
        clients.close()
        sandbox.stop()


# -- rate limits ----------------------------------------------------------------------
def test_rate_limit_headers_and_429_body(world: World) -> None:
    sandbox = start(world, requests_per_10s=5)
    clients = Clients(sandbox)
    try:
        remaining = []
        for _ in range(5):
            _, status, headers = clients.contacts.get_page_with_http_info(limit=1)
            assert status == 200
            assert headers["X-HubSpot-RateLimit-Max"] == "5"
            assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            assert int(headers["X-HubSpot-RateLimit-Daily-Remaining"]) > 0
            remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        with pytest.raises(OwnersApiException) as caught:
            clients.owners.get_page()
        error = caught.value
        assert error.status == 429 and error.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        body = error_body(error)
        assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["category"] == "RATE_LIMITS" and body["message"]
        assert uuid.UUID(body["correlationId"])
        # search has its own limit and carries no rate-limit headers
        _, status, headers = clients.search.do_search_with_http_info(
            PublicObjectSearchRequest(limit=1))
        assert status == 200 and "X-HubSpot-RateLimit-Max" not in headers
        assert sandbox.calls(statuses={429}) == 1
    finally:
        clients.close()
        sandbox.stop()


def test_rate_limit_window_rolls(world: World) -> None:
    # A 10 s window holds three requests however slow the machine; instead of waiting it
    # out, the test then shortens it so the two admitted requests have left it.
    sandbox = start(world, requests_per_10s=2, rate_window_seconds=10,
                    send_retry_after=True)
    clients = Clients(sandbox)
    try:
        clients.contacts.get_page(limit=1)
        clients.contacts.get_page(limit=1)
        with pytest.raises(ApiException) as caught:
            clients.contacts.get_page(limit=1)
        assert caught.value.status == 429
        assert 1 <= int(caught.value.headers["Retry-After"]) <= 10
        sandbox.limiter.window_seconds = 0.0  # the window has rolled past both requests
        assert len(clients.contacts.get_page(limit=1).results) == 1
        assert sandbox.calls(statuses={200}) == 3
    finally:
        clients.close()
        sandbox.stop()


# -- introspection and lifecycle ------------------------------------------------------
def test_edit_is_visible_through_the_api(clients: Clients, sandbox: HubSpotSandbox) -> None:
    record = sandbox.records()[5]
    sandbox.edit(record["id"], "lifecyclestage", "customer")
    fetched = clients.contacts.get_by_id(record["id"], properties=["lifecyclestage"])
    assert fetched.properties["lifecyclestage"] == "customer"
    assert fetched.properties["lastmodifieddate"] > record["lastmodifieddate"]
    with pytest.raises(ValueError):
        sandbox.edit(record["id"], "lifecyclestage", "hot")


def test_stop_releases_the_port_and_sandboxes_restart(world: World) -> None:
    for _ in range(3):
        sandbox = start(world)
        port = sandbox.port
        sandbox.stop()
        sandbox.stop()  # idempotent
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


# -- limits by tier and configuration --------------------------------------------------
def test_tier_limits_show_in_the_headers(world: World) -> None:
    sandbox = start(world, limits=HubSpotLimits.for_tier("starter"))
    clients = Clients(sandbox)
    try:
        _, _, headers = clients.contacts.get_page_with_http_info(limit=1)
        assert (headers["X-HubSpot-RateLimit-Max"], headers["X-HubSpot-RateLimit-Daily"],
                headers["X-HubSpot-RateLimit-Daily-Remaining"]) == ("100", "250000", "249999")
    finally:
        clients.close()
        sandbox.stop()


def test_daily_limit_is_shared_by_search_and_answers_429_daily(world: World) -> None:
    sandbox = start(world, limits=HubSpotLimits(daily=3))
    clients = Clients(sandbox)
    try:
        clients.contacts.get_page(limit=1)
        clients.search.do_search(PublicObjectSearchRequest(limit=1))
        clients.owners.get_page()
        for call in (lambda: clients.contacts.get_page(limit=1),
                     lambda: clients.search.do_search(PublicObjectSearchRequest(limit=1))):
            with pytest.raises((ApiException, OwnersApiException)) as caught:
                call()
            assert caught.value.status == 429
            assert error_body(caught.value)["policyName"] == "DAILY"
    finally:
        clients.close()
        sandbox.stop()


def test_page_and_batch_sizes_are_capped(world: World) -> None:
    sandbox = start(world, limits=HubSpotLimits(list_page_max=20, batch_max=5,
                                                search_page_max=30))
    clients = Clients(sandbox)
    try:
        assert len(clients.contacts.get_page(limit=500).results) == 20
        ids = [r["id"] for r in sandbox.records()[:6]]
        with pytest.raises(ApiException) as caught:
            clients.batch.update(batch(*[(i, {"syncer_score": "1"}) for i in ids]))
        assert caught.value.status == 400 and "at most 5" in error_body(caught.value)["message"]
        with pytest.raises(ApiException):
            clients.search.do_search(PublicObjectSearchRequest(limit=31))
    finally:
        clients.close()
        sandbox.stop()
    default = start(world)
    clients = Clients(default)
    try:
        assert len(clients.contacts.get_page(limit=500).results) == 100
    finally:
        clients.close()
        default.stop()


# -- the rest of the emulated endpoints, through the real client ----------------------
def test_schemas_associations_legacy_properties_and_aliases(sandbox: HubSpotSandbox) -> None:
    configuration = schemas_pkg.Configuration(host=sandbox.base_url)
    configuration.access_token = sandbox.credentials["access_token"]
    configuration.client_side_validation = True
    schemas = schemas_pkg.CoreApi(api_client=schemas_pkg.ApiClient(configuration))
    assert schemas.get_all().results == []
    configuration = associations_pkg.Configuration(host=sandbox.base_url)
    configuration.access_token = sandbox.credentials["access_token"]
    configuration.client_side_validation = True
    associations = associations_pkg.BatchApi(api_client=associations_pkg.ApiClient(
        configuration))
    first = sandbox.records()[0]["id"]
    linked = associations.get_page("contact", "companies",
                                   associations_pkg.BatchInputPublicFetchAssociationsBatchRequest(
                                       inputs=[{"id": first}]))
    assert linked.status == "COMPLETE" and linked.results == []
    client = HubSpot(access_token=sandbox.credentials["access_token"])
    client.config["base_url"] = sandbox.base_url
    legacy = client.api_request({"method": "GET",
                                 "path": "/properties/v2/contact/properties"}).json()
    assert isinstance(legacy, list) and {p["name"] for p in legacy} >= {"email",
                                                                       "lifecyclestage"}
    owners = client.api_request({"method": "GET", "path": "/crm/owners/v3/owners/"}).json()
    assert {o["email"] for o in owners["results"]} == {u.email for u in sandbox.world.users
                                                       if u.active}
    singular = client.api_request({"method": "GET",
                                   "path": f"/crm/v3/objects/contact/{first}"}).json()
    assert singular["id"] == first


# -- events: paging both ways and filters ---------------------------------------------
def test_events_page_backwards_and_filter(clients: Clients, world: World) -> None:
    def walk(**kwargs: Any) -> list[Any]:
        got, after = [], None
        while True:
            page = clients.events.get_page(object_type="contact", limit=60, after=after,
                                           **kwargs)
            got.extend(page.results)
            if page.paging is None:
                return got
            after = page.paging.next.after
    ascending = walk(sort=["ASCENDING"])
    descending = walk()
    assert [e.id for e in descending] == [e.id for e in reversed(ascending)]
    pivot = ascending[len(ascending) // 2].occurred_at
    before = walk(occurred_before=pivot, sort=["ASCENDING"])
    assert [e.id for e in before] == [e.id for e in ascending if e.occurred_at < pivot]
    stage = {r["id"]: r["lifecyclestage"] for r in clients_records(clients)}
    # the generated client cannot send objectProperty.<name> (it sends the placeholder)
    response = urllib3.request(
        "GET", clients.base_url + "/events/v3/events/?objectType=contact&limit=1000"
        "&objectProperty.lifecyclestage=lead", retries=False,
        headers={"Authorization": "Bearer hubspot-sandbox-token"})
    leads = response.json()["results"]
    assert leads and all(stage[e["objectId"]] == "lead" for e in leads)
    assert {e["objectId"] for e in leads} == {e.object_id for e in ascending
                                               if stage[e.object_id] == "lead"}
    with pytest.raises(EventsApiException) as caught:
        clients.events.get_page(object_type="contact", after="not-a-cursor")
    assert caught.value.status == 400


def clients_records(clients: Clients) -> list[dict[str, Any]]:
    records, after = [], None
    while True:
        page = clients.contacts.get_page(limit=100, after=after, properties=["lifecyclestage"])
        records.extend({"id": c.id, **c.properties} for c in page.results)
        if page.paging is None:
            return records
        after = page.paging.next.after


def test_search_sorts_descending_with_missing_values_last(world: World) -> None:
    sandbox = start(world, search_requests_per_second=None)
    control(sandbox, "edit", id=sandbox.records()[4]["id"], field="syncer_score", value="70")
    control(sandbox, "edit", id=sandbox.records()[9]["id"], field="syncer_score", value="9")
    control(sandbox, "edit", id=sandbox.records()[2]["id"], field="syncer_score", value="70")
    clients = Clients(sandbox)
    try:
        found = clients.search.do_search(PublicObjectSearchRequest(
            sorts=[{"propertyName": "syncer_score", "direction": "DESCENDING"}],
            properties=["syncer_score"], limit=5))
    finally:
        clients.close()
        sandbox.stop()
    records = sandbox.records()
    assert [r.id for r in found.results] == [records[2]["id"], records[4]["id"],
                                            records[9]["id"], records[0]["id"],
                                            records[1]["id"]]
    assert found.total == len(records)


# -- scale: a million contacts, generated lazily --------------------------------------
def test_a_million_contacts_serve_at_once_and_only_changes_are_held() -> None:
    big = World(seed=2, size=1_000_000, now=NOW)
    sandbox = start(big)
    clients = Clients(sandbox)
    try:
        first = clients.contacts.get_page(limit=100, properties=["email"])
        assert [c.id for c in first.results][:2] == [
            contact_id_for(i) for i in range(40) if big.person(i).in_hubspot][:2]
        tail = clients.contacts.get_page(limit=100, after=contact_id_for(999_950))
        expected_tail = [contact_id_for(i) for i in range(999_950, 1_000_000)
                         if big.person(i, with_activities=False).in_hubspot]
        assert [c.id for c in tail.results] == expected_tail and tail.paging is None
        last = big.person(max(i for i in range(999_900, 1_000_000)
                              if big.person(i, with_activities=False).in_hubspot))
        by_email = clients.contacts.get_by_id(last.email, id_property="email")
        assert by_email.id == contact_id_for(last.index)
        clients.batch.update(batch((by_email.id, {"syncer_score": "88"}),
                                   (first.results[0].id, {"syncer_fit_grade": "A"})))
        assert [r["id"] for r in sandbox.changed_records()] == sorted(
            [by_email.id, first.results[0].id], key=int)
        own = [a for a in last.activities if a.channel == "hubspot"]
        events = clients.events.get_page(object_type="contact", object_id=int(by_email.id),
                                         limit=100).results
        assert sorted(e.occurred_at for e in events) == sorted(a.occurred_at for a in own)
        assert not big.index_ready()  # one contact's events need no index
    finally:
        clients.close()
        sandbox.stop()
