"""Fidelity of the HubSpot sandbox where it used to differ from HubSpot (issue 20, item 1):
exact Retry-After, rate-limit headers on every answer, the daily limit's midnight reset in
the account's time zone, search with a top-level `filters` list, `archived=true` and
`propertiesWithHistory`.

Everything goes over HTTP to the running sandbox (requests, or the real client with strict
validation). Time is the sandbox's injectable clock: no test sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import hubspot.crm.contacts as contacts_pkg
import pytest
import requests
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import ApiException

from connectors.sandbox.faults import HubSpotLimits
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.hubspot.state import contact_id_for
from connectors.sandbox.world import IN_HUBSPOT, World
from tests.sandbox_control import control, control_get

NOW = datetime(2026, 12, 7, 4, 30, tzinfo=timezone.utc)
LIST = "/crm/v3/objects/contacts"
SEARCH = "/crm/v3/objects/contacts/search"


class Clock:
    """The sandbox's base clock, standing still; the test moves the sandbox's time forward
    through the control API (`advance`), as a tester would."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def advance(portal: Portal, seconds: float) -> None:
    """Moves the running sandbox's clock `seconds` forward (POST /_sandbox/clock)."""
    control(portal.sandbox, "clock", advance_seconds=seconds)


class Portal:
    """A running sandbox and a requests session that signs in to it."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {sandbox.credentials['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.sandbox.base_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.sandbox.base_url + path, json=body, timeout=10)

    def client(self, name: str) -> Any:
        configuration = contacts_pkg.Configuration(host=self.sandbox.base_url)
        configuration.access_token = self.sandbox.credentials["access_token"]
        configuration.client_side_validation = True
        configuration.retries = False
        return getattr(contacts_pkg, name)(
            api_client=contacts_pkg.ApiClient(configuration=configuration))


@pytest.fixture
def world() -> World:
    return World(seed=5, size=120, now=NOW)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def running(world: World, clock: Clock, **kwargs: Any) -> Iterator[Portal]:
    sandbox = HubSpotSandbox(world, clock=clock, **kwargs)
    sandbox.start()
    portal = Portal(sandbox)
    try:
        yield portal
    finally:
        portal.session.close()
        sandbox.stop()


@pytest.fixture
def portal(world: World, clock: Clock) -> Iterator[Portal]:
    yield from running(world, clock)


# -- Retry-After ----------------------------------------------------------------------
def test_retry_after_is_exact_for_the_rolling_window(world: World, clock: Clock) -> None:
    for portal in running(world, clock, requests_per_10s=2):
        assert portal.get(LIST, limit=1).status_code == 200
        advance(portal, 2.5)
        assert portal.get(LIST, limit=1).status_code == 200
        refused = portal.get(LIST, limit=1)
        assert refused.status_code == 429
        assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        wait = int(refused.headers["Retry-After"])  # whole seconds, as HTTP wants them
        assert wait == 8  # the first request leaves the window 7.5 s from now
        advance(portal, wait - 1)  # one second too early: still refused, 0.5 s to go
        early = portal.get(LIST, limit=1)
        assert early.status_code == 429 and early.headers["Retry-After"] == "1"
        advance(portal, 1)  # exactly Retry-After after the first refusal
        assert portal.get(LIST, limit=1).status_code == 200


def test_every_retry_after_the_advertised_wait_is_admitted(world: World,
                                                            clock: Clock) -> None:
    """A client that sends as fast as it may and waits exactly Retry-After on each 429
    never meets a second 429 in a row (the old sandbox rounded and 2 of 3 retries did)."""
    for portal in running(world, clock, requests_per_10s=3):
        refusals = retries_refused = 0
        previous_refused = False
        for step in range(40):
            answer = portal.get(LIST, limit=1)
            if answer.status_code == 429:
                refusals += 1
                retries_refused += previous_refused
                previous_refused = True
                advance(portal, int(answer.headers["Retry-After"]))
            else:
                assert answer.status_code == 200
                previous_refused = False
                advance(portal, 0.7 + (step % 3) * 0.45)  # uneven gaps: fractional waits
        assert refusals > 3 and retries_refused == 0


def test_search_429_says_when_to_retry(world: World, clock: Clock) -> None:
    for portal in running(world, clock):
        body = {"filterGroups": [], "limit": 1}
        assert [portal.post(SEARCH, body).status_code for _ in range(5)] == [200] * 5
        refused = portal.post(SEARCH, body)
        assert refused.status_code == 429 and refused.json()["policyName"] == "SECONDLY"
        assert refused.headers["Retry-After"] == "1"
        advance(portal, 1)
        assert portal.post(SEARCH, body).status_code == 200


def test_injected_burst_sends_retry_after_too(world: World, clock: Clock) -> None:
    from connectors.sandbox.faults import FaultConfig
    for portal in running(world, clock, faults=FaultConfig(burst_every=2, burst_length=1)):
        statuses = [portal.get(LIST, limit=1) for _ in range(2)]
        assert [s.status_code for s in statuses] == [200, 429]
        assert statuses[1].headers["Retry-After"] == "1"


# -- rate-limit headers ---------------------------------------------------------------
RATE_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
                "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
                "X-HubSpot-RateLimit-Daily-Remaining")


def test_rate_limit_headers_on_every_answer_even_with_limits_off(world: World,
                                                                 clock: Clock) -> None:
    for portal in running(world, clock, limits=HubSpotLimits.for_tier(
            "starter", requests_per_10s=None)):
        answers = [portal.get(LIST, limit=1), portal.get(LIST + "/999999999"),
                   portal.get("/crm/v3/no-such-route"),
                   portal.post(LIST + "/batch/read", {"inputs": "bad"})]
        anonymous = requests.get(portal.sandbox.base_url + LIST, timeout=10)
        for answer in [*answers, anonymous]:
            assert all(name in answer.headers for name in RATE_HEADERS), answer.status_code
        assert [a.status_code for a in answers] == [200, 404, 404, 400]
        assert anonymous.status_code == 401
        first = answers[0].headers
        assert first["X-HubSpot-RateLimit-Max"] == "100"  # the tier's limit, reported
        assert first["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert int(answers[1].headers["X-HubSpot-RateLimit-Remaining"]) \
            < int(first["X-HubSpot-RateLimit-Remaining"])
        # HubSpot's search answers carry none (shared/specs/HUBSPOT.md)
        searched = portal.post(SEARCH, {"limit": 1})
        assert searched.status_code == 200
        assert "X-HubSpot-RateLimit-Max" not in searched.headers


# -- the daily limit ------------------------------------------------------------------
def test_daily_limit_resets_at_midnight_in_the_account_time_zone(world: World) -> None:
    clock = Clock(datetime(2026, 12, 6, 23, 30, tzinfo=timezone.utc))  # 18:30 in New York
    limits = HubSpotLimits(daily=2, time_zone="America/New_York")
    for portal in running(world, clock, limits=limits):
        assert [portal.get(LIST, limit=1).status_code for _ in range(2)] == [200, 200]
        refused = portal.get(LIST, limit=1)
        assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
        assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        # midnight in New York is 05:00 UTC: 5 h 30 min away
        assert int(refused.headers["Retry-After"]) == 5 * 3600 + 30 * 60
        advance(portal, 3600)  # UTC midnight passes: not the account's
        assert portal.get(LIST, limit=1).status_code == 429
        now = datetime.fromisoformat(control_get(portal.sandbox, "clock")["now"])
        advance(portal, (datetime(2026, 12, 7, 4, 59, 59, tzinfo=timezone.utc)
                         - now).total_seconds())
        late = portal.get(LIST, limit=1)
        assert late.status_code == 429 and late.headers["Retry-After"] == "1"
        advance(portal, 1)  # 00:00:00 in New York
        fresh = portal.get(LIST, limit=1)
        assert fresh.status_code == 200
        assert fresh.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"


# -- search ---------------------------------------------------------------------------
def test_top_level_filters_are_one_and_group(portal: Portal) -> None:
    contacts = portal.get(LIST, limit=20, properties="email,lifecyclestage").json()
    target = contacts["results"][3]["properties"]
    filters = [{"propertyName": "email", "operator": "EQ", "value": target["email"]},
               {"propertyName": "lifecyclestage", "operator": "EQ",
                "value": target["lifecyclestage"]}]
    loose = portal.post(SEARCH, {"filters": filters, "limit": 200,
                                 "properties": ["email"]}).json()
    grouped = portal.post(SEARCH, {"filterGroups": [{"filters": filters}], "limit": 200,
                                   "properties": ["email"]}).json()
    assert loose["total"] == grouped["total"] == 1
    assert [r["id"] for r in loose["results"]] == [r["id"] for r in grouped["results"]]
    # AND, not OR: a second filter that fails empties the result
    miss = [filters[0], {"propertyName": "email", "operator": "EQ", "value": "x@y.z"}]
    assert portal.post(SEARCH, {"filters": miss}).json()["total"] == 0
    both = portal.post(SEARCH, {"filters": filters, "filterGroups": [{"filters": filters}]})
    assert both.status_code == 400
    too_many = portal.post(SEARCH, {"filters": [filters[0]] * 11})
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"


# -- archived -------------------------------------------------------------------------
def test_archived_true_lists_archived_contacts(portal: Portal) -> None:
    basic, batch = portal.client("BasicApi"), portal.client("BatchApi")
    try:
        first = basic.get_page(limit=5).results
        ids = [c.id for c in first]
        assert basic.get_page(limit=5, archived=True).results == []
        basic.archive(ids[0])
        batch.archive(BatchInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=ids[2]), SimplePublicObjectId(id="999999999")]))
        archived = basic.get_page(limit=100, archived=True).results
        assert [c.id for c in archived] == [ids[0], ids[2]]
        assert all(c.archived and c.archived_at is not None for c in archived)
        live = [c.id for c in basic.get_page(limit=5).results]
        assert ids[0] not in live and ids[2] not in live and ids[1] in live
        with pytest.raises(ApiException) as gone:
            basic.get_by_id(ids[0])
        assert gone.value.status == 404
        assert basic.get_by_id(ids[0], archived=True).archived is True
        paged = basic.get_page(limit=1, archived=True)
        assert [c.id for c in paged.results] == [ids[0]] and paged.paging.next.after == ids[2]
        second = basic.get_page(limit=1, archived=True, after=paged.paging.next.after)
        assert [c.id for c in second.results] == [ids[2]] and second.paging is None
    finally:
        for api in (basic, batch):
            api.api_client.rest_client.pool_manager.clear()


# -- propertiesWithHistory ------------------------------------------------------------
def test_properties_with_history_in_hubspots_shape(portal: Portal, clock: Clock) -> None:
    basic = portal.client("BasicApi")
    batch = portal.client("BatchApi")
    try:
        contact = basic.get_page(limit=1, properties=["lifecyclestage"]).results[0]
        seeded = contact.properties["lifecyclestage"]
        advance(portal, 60)
        update = {"inputs": [{"id": contact.id, "properties": {"lifecyclestage": "lead"}}]}
        if seeded == "lead":
            update["inputs"][0]["properties"]["lifecyclestage"] = "subscriber"
        assert portal.post(LIST + "/batch/update", update).status_code == 200
        by_api = update["inputs"][0]["properties"]["lifecyclestage"]
        advance(portal, 60)
        control(portal.sandbox, "edit", id=contact.id, field="lifecyclestage",
                value="marketingqualifiedlead")
        read = basic.get_by_id(contact.id, properties=["email"],
                               properties_with_history=["lifecyclestage", "nosuchprop"])
        history = read.properties_with_history["lifecyclestage"]
        assert [(h.value, h.source_type) for h in history] == [
            ("marketingqualifiedlead", "CRM_UI"), (by_api, "API"), (seeded, "IMPORT")]
        assert history[0].timestamp == NOW + timedelta(seconds=120)
        assert history[1].timestamp == NOW + timedelta(seconds=60)
        assert history[2].timestamp == read.created_at
        assert "nosuchprop" not in read.properties_with_history
        listed = basic.get_page(limit=1, properties_with_history=["lifecyclestage"])
        assert listed.results[0].properties_with_history["lifecyclestage"][0].value \
            == "marketingqualifiedlead"
        many = basic.get_page(limit=100, properties_with_history=["email"]).results
        assert len(many) == 50  # HubSpot's page limit when history is asked for
        unchanged = many[1]
        assert [(h.value, h.source_type) for h in
                unchanged.properties_with_history["email"]] == [
            (unchanged.properties["email"], "IMPORT")]
        batched = batch.read(BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=contact.id)], properties=[],
            properties_with_history=["lifecyclestage"]))
        assert len(batched.results[0].properties_with_history["lifecyclestage"]) == 3
        cleared = {"inputs": [{"id": contact.id, "properties": {"lifecyclestage": ""}}]}
        assert portal.post(LIST + "/batch/update", cleared).status_code == 200
        raw = portal.get(f"{LIST}/{contact.id}",
                         propertiesWithHistory="lifecyclestage").json()
        assert raw["propertiesWithHistory"]["lifecyclestage"][0] == {
            "value": "", "timestamp": "2026-12-07T04:32:00.000Z", "sourceType": "API"}
    finally:
        for api in (basic, batch):
            api.api_client.rest_client.pool_manager.clear()


# -- many activities ------------------------------------------------------------------
def test_events_of_a_person_with_more_than_256_activities(clock: Clock) -> None:
    busy = World(seed=4, size=200, now=NOW, activity_scale=12.0)
    person = max((i for i in range(busy.size) if busy.flags(i) & IN_HUBSPOT),
                 key=lambda i: len(busy.raw_activities(i)))
    drawn = busy.raw_activities(person)
    assert len(drawn) > 256
    expected = sum(1 for _, _, channel, _ in drawn if channel == "hubspot")
    for portal in running(busy, clock):
        found: list[str] = []
        after: str | None = None
        while True:
            page = portal.get("/events/v3/events/", objectType="contact", limit=100,
                              objectId=contact_id_for(person), **({"after": after}
                                                                  if after else {}))
            assert page.status_code == 200, page.text
            found += [event["id"] for event in page.json()["results"]]
            after = page.json().get("paging", {}).get("next", {}).get("after")
            if after is None:
                break
        assert len(found) == len(set(found)) == expected
