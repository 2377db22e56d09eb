"""HubSpot engagements (issue 20, item 2): calls, meetings, emails, notes and tasks logged
through the sandbox's HTTP control API, served on the CRM v3 objects search and the
associations v4 batch read, pulled by the real connector with who logged them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import Activity, ActivityType
from tests.conftest import Sandboxes, sandbox_config_data, sync_once, write_config
from tests.sandbox_control import ControlRefused, result

FAST_RETRY = RetryPolicy(attempts=10, initial=0.05, maximum=0.5)
NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)
DANA, MARCO = "dana.whitfield@syncer-sandbox.test", "marco.bellini@syncer-sandbox.test"


@pytest.fixture
def clock() -> dict[str, datetime]:
    return {"now": NOW}


@pytest.fixture
def sandbox(clock: dict[str, datetime]) -> Iterator[HubSpotSandbox]:
    # The clock stands still, so rolling rate windows would never free up: no limits.
    box = HubSpotSandbox(World(seed=4, size=120, now=NOW), clock=lambda: clock["now"],
                         requests_per_10s=None, search_requests_per_second=None)
    box.start()
    try:
        yield box
    finally:
        box.stop()




def connect(box: HubSpotSandbox, **options: Any) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=box.base_url,
        credentials=dict(box.credentials), writeback_fields=("lifecyclestage",),
        timeout_seconds=5.0, options={"retry_policy": FAST_RETRY, "engagements": True,
                                      **options}))


def engagements(box: HubSpotSandbox, since: datetime) -> list[Activity]:
    connector = connect(box)
    try:
        return [a for page in connector.activities(since) for a in page
                if a.source_id.split(":")[0] in ("calls", "meetings", "emails", "notes",
                                                 "tasks")]
    finally:
        connector.close()


def contact_ids(box: HubSpotSandbox, count: int) -> list[str]:
    return [str(r["id"]) for r in box.records()[:count]]


def test_each_engagement_type_is_pulled_with_its_owner(sandbox: HubSpotSandbox) -> None:
    first, second = contact_ids(sandbox, 2)
    logged = {kind: result(sandbox, "log_activity", id=first, kind=kind, owner=DANA)
              for kind in ("call", "meeting", "email", "note", "task")}
    by_email = result(sandbox, "log_activity", email=sandbox.record(second)["email"],
                       kind="call", owner=MARCO, subject="Follow-up")
    found = {a.source_id: a for a in engagements(sandbox, NOW - timedelta(minutes=1))}
    expected = {"call": ActivityType.CALL, "meeting": ActivityType.MEETING,
                "email": ActivityType.SALES_EMAIL, "note": ActivityType.NOTE,
                "task": ActivityType.TASK}
    for kind, made in logged.items():
        activity = found[f"{kind}s:{made['id']}:{first}"]
        assert activity.type is expected[kind]
        assert (activity.record_id, activity.actor, activity.occurred_at) == (first, DANA, NOW)
        assert activity.actor_id == made["owner_id"]
    call = found[f"calls:{by_email['id']}:{second}"]
    assert (call.actor, call.attributes["title"], call.attributes["direction"]) == (
        MARCO, "Follow-up", "OUTBOUND")


def test_the_pull_is_incremental_on_the_modification_stamp(
        sandbox: HubSpotSandbox, clock: dict[str, datetime]) -> None:
    (contact,) = contact_ids(sandbox, 1)
    old = result(sandbox, "log_activity", id=contact, kind="call", owner=DANA)
    clock["now"] = NOW + timedelta(hours=2)
    new = result(sandbox, "log_activity", id=contact, kind="meeting", owner=DANA)
    found = {a.source_id for a in engagements(sandbox, NOW + timedelta(hours=1))}
    assert found == {f"meetings:{new['id']}:{contact}"}
    assert f"calls:{old['id']}:{contact}" not in found


def test_the_sandbox_serves_the_real_paths_and_refuses_what_it_does_not(
        sandbox: HubSpotSandbox) -> None:
    (contact,) = contact_ids(sandbox, 1)
    made = result(sandbox, "log_activity", id=contact, kind="note", owner=DANA,
                   subject="Spoke at the booth")
    auth = {"Authorization": f"Bearer {sandbox.credentials['access_token']}"}
    one = requests.get(f"{sandbox.base_url}/crm/v3/objects/0-46/{made['id']}",
                       params={"properties": "hs_note_body"}, headers=auth, timeout=10)
    assert one.json()["properties"]["hs_note_body"] == "Spoke at the booth"
    listed = requests.get(f"{sandbox.base_url}/crm/v3/objects/notes",
                          params={"associations": "contacts"}, headers=auth, timeout=10)
    (row,) = listed.json()["results"]
    assert row["associations"]["contacts"]["results"] == [
        {"id": contact, "type": "note_to_contact"}]
    links = requests.post(f"{sandbox.base_url}/crm/v4/associations/notes/contacts/batch/read",
                          json={"inputs": [{"id": made["id"]}, {"id": "1"}]}, headers=auth,
                          timeout=10)
    (link,) = links.json()["results"]
    assert link["to"][0]["toObjectId"] == int(contact)
    assert link["to"][0]["associationTypes"][0]["typeId"] == 202
    bad = requests.post(f"{sandbox.base_url}/crm/v3/objects/calls/search", headers=auth,
                        json={"filterGroups": [{"filters": [
                            {"propertyName": "hs_call_body", "operator": "EQ",
                             "value": "x"}]}]}, timeout=10)
    assert bad.status_code == 400 and "hs_call_body" in bad.json()["message"]
    with pytest.raises(ControlRefused) as refused:
        result(sandbox, "log_activity", id=contact, kind="fax", owner=DANA)
    assert refused.value.status == 400 and "kind" in refused.value.message


def test_an_unknown_engagement_type_in_the_options_is_named() -> None:
    with pytest.raises(ConnectorError, match=r"options\.engagements: \['calls', 'faxes'\]"):
        HubSpotConnector(ConnectorSettings(
            name="hubspot", kind="hubspot", base_url="http://127.0.0.1:1",
            credentials={"access_token": "x"}, writeback_fields=(),
            options={"engagements": ["calls", "faxes"]}))


def engagement_calls(box: HubSpotSandbox) -> int:
    return sum(n for (method, rule, _), n in box.call_counts.items()
               if method == "POST" and ("search" in rule or "associations" in rule))


@pytest.mark.parametrize("spread", [4, 40])
def test_calls_grow_with_pages_of_engagements_not_with_people(
        sandbox: HubSpotSandbox, spread: int) -> None:
    """The same 250 calls over 4 or over 40 contacts cost the same requests; 50 calls cost
    one search and one association read less (pages of 200)."""
    contacts = contact_ids(sandbox, spread)
    counts = []
    for total in (50, 200):
        for n in range(total):
            result(sandbox, "log_activity", id=contacts[n % spread], kind="call",
                    owner=DANA)
        before = engagement_calls(sandbox)
        found = engagements(sandbox, NOW)
        counts.append(engagement_calls(sandbox) - before)
        assert len(found) == 50 if total == 50 else len(found) == 250
    # five searches (one per type) plus one association read per non-empty page
    assert counts == [5 + 1, 5 + 1 + 2]


@pytest.mark.parametrize("setting", [{}, {"engagements": False}, {"engagements": []}])
def test_no_engagements_unless_asked_for(sandbox: HubSpotSandbox,
                                         setting: dict[str, Any]) -> None:
    (contact,) = contact_ids(sandbox, 1)
    result(sandbox, "log_activity", id=contact, kind="call", owner=DANA)
    connector = HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=("lifecyclestage",),
        timeout_seconds=5.0, options={"retry_policy": FAST_RETRY, **setting}))
    try:
        found = [a for page in connector.activities(NOW) for a in page]
    finally:
        connector.close()
    assert not any(a.type is ActivityType.CALL for a in found)
    assert engagement_calls(sandbox) == 0


def test_a_refused_search_is_a_connector_error(sandbox: HubSpotSandbox) -> None:
    """The objects and associations clients' errors go through the connector's own
    classification (a bad token says which setting to fix), not out raw."""
    connector = HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=sandbox.base_url,
        credentials={"access_token": "not-the-token"}, writeback_fields=(),
        timeout_seconds=5.0, options={"retry_policy": FAST_RETRY, "engagements": ["calls"]}))
    with pytest.raises(ConnectorError, match=r"calls\.search: HubSpot answered 401"):
        list(connector._engagements.activities(NOW))


def test_a_sync_with_engagements_on_stores_a_logged_call_with_its_rep(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`connectors[].engagements: true` in syncer.yaml: the whole pipeline pulls a call a
    rep logged through the control API into the state, on the contact, with the rep."""
    box = sandboxes.hubspot
    assert isinstance(box, HubSpotSandbox)
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    for connector in data["connectors"]:
        if connector["kind"] == "hubspot":
            connector["engagements"] = True
    loaded = write_config(tmp_path / "syncer.yaml", data)
    sync_once(loaded, box.now())
    (contact,) = contact_ids(box, 1)
    made = result(box, "log_activity", id=contact, kind="call", owner=DANA)
    sync_once(loaded, box.now())
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        (key,) = store.person_keys_of("hubspot", [contact])
        _, activities = store.load_people([key])[key]
    (call,) = [a for a in activities if a.source_id == f"calls:{made['id']}:{contact}"]
    assert (call.type, call.actor) == (ActivityType.CALL, DANA)


def test_engagements_is_a_hubspot_setting(sandboxes: Sandboxes, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    for connector in data["connectors"]:
        connector["engagements"] = True
    with pytest.raises(ConfigError, match="`engagements` is a HubSpot setting"):
        write_config(tmp_path / "syncer.yaml", data)
