"""Hand-raises in seconds, end to end: the sandbox portal's signed webhooks reach the inbound
endpoint, are stored before the 202, and one focused run writes stage, score, owner and
reasons to both sandbox CRMs, audited; refused requests are counted and leave no trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.webhooks import WebhookSender, attach_webhooks, submit_form
from syncer.domain.types import Stage
from syncer.store.inbound_events import inbound_events as events_table
from tests.conftest import NOW, Sandboxes
from tests.sandbox_control import control
from tests.waiting import wait_until
from tests.webhook_helpers import (
    HUBSPOT_SECRET,
    Daemon,
    hand_raise,
    post_generic,
    post_hubspot,
    running_daemon,
    webhook_config,
)


@pytest.fixture
def daemon(sandboxes: Sandboxes, state_url: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """On SQLite and on PostgreSQL (state_url's parameters)."""
    with running_daemon(webhook_config(sandboxes, state_url, tmp_path, monkeypatch)) as up:
        yield up


def hubspot_of(sandboxes: Sandboxes) -> HubSpotSandbox:
    assert isinstance(sandboxes.hubspot, HubSpotSandbox)
    return sandboxes.hubspot


def unrouted_person(daemon: Daemon) -> tuple[str, str, str]:
    """(person key, HubSpot contact id, Salesforce id) of someone in both CRMs whom the
    first sync left a lead without an owner."""
    store = daemon.runtime.require_store()
    keys = store.person_keys()
    decisions = store.decisions(keys)
    people = store.load_people(keys)
    for key in keys:
        records = {r.source: r.record_id for r in people[key][0]}
        decision = decisions.get(key)
        if decision is not None and decision.stage is Stage.LEAD and \
                decision.owner_email is None and set(records) == {"hubspot", "salesforce"}:
            return key, records["hubspot"], records["salesforce"]
    raise AssertionError("the world has no unrouted lead in both CRMs")


def owner_emails(daemon: Daemon) -> dict[str, dict[str, str]]:
    return {name: {o.owner_id: o.email.lower() for o in c.owners()}
            for name, c in daemon.runtime.connectors.items()}


def test_a_form_fill_reaches_the_owner_in_both_crms(daemon: Daemon,
                                                    sandboxes: Sandboxes) -> None:
    hubspot = hubspot_of(sandboxes)
    key, contact, lead = unrouted_person(daemon)
    sender = attach_webhooks(hubspot, daemon.hubspot_url, HUBSPOT_SECRET)
    try:
        submit_form(hubspot, contact, "Request a demo")
        store = daemon.runtime.require_store()
        wait_until(lambda: (d := store.decisions([key]).get(key)) is not None
                   and d.owner_email is not None and daemon.counts().get("pending", 0) == 0,
                   "the form fill's person to be routed", timeout=60)
    finally:
        sender.flush()
        sender.stop()
    # syncer's own writes came back as webhooks too: stored as echoes, never run
    assert daemon.counts().get("echo", 0) > 0 and daemon.counts().get("pending", 0) == 0
    decision = store.decisions([key])[key]
    assert decision.stage is Stage.SQL  # a demo request is a hand-raise
    owners = owner_emails(daemon)
    hub = hubspot.record(contact)
    sf = next(r for r in sandboxes.salesforce.records() if r["Id"] == lead)
    assert owners["hubspot"][hub["hubspot_owner_id"]] == decision.owner_email
    assert owners["salesforce"][sf["OwnerId"]] == decision.owner_email
    assert hub["lifecyclestage"] == "salesqualifiedlead" and sf["Syncer_Stage__c"] == "SQL"
    assert "demo_request" in (hub["syncer_reasons"] or "")
    # The same audited path as a scheduled sync: one run wrote both CRMs' fields.
    rows = [r for r in store.audit_rows(person_key=key) if r["run_id"] != ""]
    focused = {r["run_id"] for r in rows if r["field"] in ("hubspot_owner_id", "OwnerId")}
    assert len(focused) == 1
    assert {r["connector"] for r in rows if r["run_id"] in focused} == \
        {"hubspot", "salesforce"}
    with store.engine.connect() as connection:
        consumed = connection.execute(select(events_table.c.run_id).where(
            events_table.c.status == "done")).scalars().all()
    assert focused <= set(consumed)


def test_refused_requests_are_counted_and_leave_nothing(daemon: Daemon,
                                                        sandboxes: Sandboxes) -> None:
    _key, contact, _lead = unrouted_person(daemon)
    event = [{"eventId": 1, "subscriptionType": "contact.propertyChange",
              "objectId": int(contact), "propertyName": "jobtitle", "propertyValue": "CTO",
              "changeSource": "CRM_UI", "occurredAt": 0, "portalId": 1}]
    url = daemon.hubspot_url
    assert post_hubspot(url, event, signed=False).status_code == 401
    assert post_hubspot(url, event, secret="not-the-secret").status_code == 401
    stale = int((NOW.timestamp() - 3600) * 1000)
    assert post_hubspot(url, event, stamp=stale).status_code == 401
    assert daemon.counts() == {}  # nothing of them stored
    stamp = int(time.time() * 1000)
    first = post_hubspot(url, event, stamp=stamp)
    assert first.status_code == 202
    assert post_hubspot(url, event, stamp=stamp).status_code == 401  # the same request
    assert post_hubspot(url, event).status_code == 401  # new signature, same event id
    text = daemon.metrics.render().decode()
    for reason in ("unsigned", "bad_signature", "stale", "replay"):
        expected = 2.0 if reason == "replay" else 1.0
        assert f'syncer_webhook_rejected_total{{reason="{reason}",source="hubspot"}} ' \
            f"{expected}" in text
    wait_until(lambda: daemon.counts() == {"done": 1}, "the one accepted event to be consumed",
               timeout=60)


def test_a_generic_hand_raise_joins_the_crm_person_by_email(daemon: Daemon) -> None:
    key, _contact, _lead = unrouted_person(daemon)
    url = f"{daemon.service.url}/webhooks/generic"
    bad = post_generic(url, {"event_id": "x", "person": {"email": "nope"}})
    assert bad.status_code == 400 and "person.email" in bad.text
    assert post_generic(url, hand_raise(key, "w-1"), secret="wrong").status_code == 401
    first = {**hand_raise(key.upper(), "w-1"),
             "person": {"email": key.upper(), "company": "Acme Rockets"}}
    answer = post_generic(url, first)
    assert answer.status_code == 202, answer.text
    store = daemon.runtime.require_store()
    wait_until(lambda: daemon.counts() == {"done": 1},
               f"the hand-raise to be consumed (events: {daemon.counts()})", timeout=60)
    decision = store.decisions([key])[key]
    assert decision.stage is Stage.SQL and decision.owner_email is not None
    records = {r.source for r in store.load_people([key])[key][0]}
    assert records == {"hubspot", "salesforce", "forms"}  # one person, three sources
    assert post_generic(url, hand_raise(key, "w-1")).status_code == 401  # a replay
    # a later hand-raise with the email only leaves what the source said before
    assert post_generic(url, hand_raise(key, "w-2", "webinar_attendance")).status_code == 202
    wait_until(lambda: daemon.counts() == {"done": 2}, "the second hand-raise to be consumed",
               timeout=60)
    forms = [r for r in store.load_people([key])[key][0] if r.source == "forms"]
    assert [r.company for r in forms] == ["Acme Rockets"]


def test_a_burst_coalesces_into_fewer_runs_and_loses_nothing(daemon: Daemon,
                                                             sandboxes: Sandboxes) -> None:
    hubspot = hubspot_of(sandboxes)
    contacts = [str(r["id"]) for r in hubspot.records()[:5]]
    sender: WebhookSender = attach_webhooks(hubspot, daemon.hubspot_url, HUBSPOT_SECRET)
    edits = 200
    try:
        for number in range(edits):
            control(hubspot, "edit", id=contacts[number % len(contacts)],
                    field="jobtitle", value=f"Title {number}")
        assert sender.flush(timeout=120)
    finally:
        sender.stop()
    assert sender.delivery.delivered >= edits and sender.delivery.dropped == 0
    store = daemon.runtime.require_store()
    wait_until(lambda: daemon.counts().get("pending", 0) == 0, "every event to be consumed",
               timeout=60)
    with store.engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(events_table)).scalar()
        runs = connection.execute(select(func.count(events_table.c.run_id.distinct()))
                                  ).scalar()
    assert stored == sender.delivery.delivered  # every event delivered is stored, once
    assert daemon.counts().get("done", 0) + daemon.counts().get("echo", 0) == stored
    assert runs is not None and 1 <= runs < stored / 5  # coalesced per person and burst
    people = store.load_people([k for k in store.person_keys()])
    titles = {r.record_id: r.title for records, _ in people.values() for r in records
              if r.source == "hubspot" and r.record_id in contacts}
    assert titles[contacts[(edits - 1) % len(contacts)]] == f"Title {edits - 1}"
