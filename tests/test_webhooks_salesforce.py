"""Salesforce outbound messages: authenticated by the URL's token and the org id, stored
before the Ack, re-read by id, acknowledged again (and stored once) when resent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.sandbox.outbound_messages import attach_outbound
from connectors.sandbox.salesforce.schema import ORG_ID
from connectors.sandbox.salesforce.server import SalesforceSandbox
from syncer.domain.types import Stage
from tests.conftest import Sandboxes
from tests.sandbox_control import control
from tests.waiting import wait_until
from tests.webhook_helpers import (
    SALESFORCE_TOKEN,
    Daemon,
    running_daemon,
    webhook_config,
)


def outbound_message(org: str, notifications: list[tuple[str, str]]) -> bytes:
    """A Salesforce outbound message as Salesforce sends it (SOAP 1.1)."""
    items = "".join(
        f"<Notification><Id>{nid}</Id><sObject xsi:type=\"sf:Lead\" "
        f"xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>{rid}</sf:Id>"
        f"<sf:Title>ignored</sf:Title></sObject></Notification>"
        for nid, rid in notifications)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>").encode()


@pytest.fixture
def daemon(sandboxes: Sandboxes, sqlite_url: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    with running_daemon(webhook_config(sandboxes, sqlite_url, tmp_path, monkeypatch)) as up:
        yield up


def test_an_outbound_message_re_reads_the_lead(daemon: Daemon,
                                               sandboxes: Sandboxes) -> None:
    lead = next(r for r in sandboxes.salesforce.records() if r["Id"].startswith("00Q")
                and not r.get("IsConverted"))
    control(sandboxes.salesforce, "edit", id=lead["Id"], field="Title",
            value="Chief Revenue Officer")
    url = f"{daemon.service.url}/webhooks/salesforce/salesforce"
    message = outbound_message(ORG_ID, [("04l000000000001AAA", lead["Id"])])
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}

    wrong = requests.post(f"{url}/not-the-token", data=message, headers=headers, timeout=30)
    other_org = requests.post(f"{url}/{SALESFORCE_TOKEN}", headers=headers, timeout=30,
                              data=outbound_message("00D000000000009AAA",
                                                    [("04l000000000001AAA", lead["Id"])]))
    assert (wrong.status_code, other_org.status_code) == (401, 401)
    assert daemon.counts() == {}

    answer = requests.post(f"{url}/{SALESFORCE_TOKEN}", data=message, headers=headers,
                           timeout=30)
    assert answer.status_code == 200 and "<Ack>true</Ack>" in answer.text
    store = daemon.runtime.require_store()
    wait_until(lambda: daemon.counts() == {"done": 1}, "the notification to be consumed",
               timeout=60)
    key = next(iter(store.person_keys_of("salesforce", [lead["Id"]])))
    record = next(r for r in store.load_people([key])[key][0] if r.record_id == lead["Id"])
    assert record.title == "Chief Revenue Officer"  # read from the org, not the message

    again = requests.post(f"{url}/{SALESFORCE_TOKEN}", data=message, headers=headers,
                          timeout=30)  # resent after a lost Ack
    assert again.status_code == 200 and "<Ack>true</Ack>" in again.text
    assert daemon.counts() == {"done": 1}
    text = daemon.metrics.render().decode()
    assert 'syncer_webhook_rejected_total{reason="bad_signature",source="salesforce"} 1.0' \
        in text
    assert 'syncer_webhook_rejected_total{reason="unknown_source",source="salesforce"} 1.0' \
        in text


def test_a_rep_qualifying_in_salesforce_shows_in_hubspot_at_once(
        daemon: Daemon, sandboxes: Sandboxes) -> None:
    store = daemon.runtime.require_store()
    keys = store.person_keys()
    decisions = store.decisions(keys)
    people = store.load_people(keys)
    key, records = next((k, {r.source: r.record_id for r in people[k][0]}) for k in keys
                        if decisions[k].stage is Stage.LEAD
                        and {r.source for r in people[k][0]} == {"hubspot", "salesforce"})
    assert isinstance(sandboxes.salesforce, SalesforceSandbox)
    sender = attach_outbound(
        sandboxes.salesforce,
        f"{daemon.service.url}/webhooks/salesforce/salesforce/{SALESFORCE_TOKEN}")
    try:
        control(sandboxes.salesforce, "edit", id=records["salesforce"], field="Syncer_Stage__c",
                value="SQL")
        wait_until(lambda: sandboxes.hubspot.record(records["hubspot"])["lifecyclestage"]
                   == "salesqualifiedlead", "HubSpot to show the stage the rep set", timeout=60)
        assert sender.flush()
    finally:
        sender.stop()
    assert store.decisions([key])[key].stage is Stage.SQL
    wait_until(lambda: daemon.counts().get("pending", 0) == 0, "every notification consumed",
               timeout=60)
    written = store.audit_rows(person_key=key, connector="hubspot", field="lifecyclestage")
    assert written[-1]["new_value"] == "salesqualifiedlead"
    assert sender.delivery.dropped == 0
