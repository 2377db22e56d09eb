"""`POST /webhooks/salesforce/<source>/<token>`: Salesforce outbound messages.

Why outbound messages rather than platform events or Change Data Capture: an outbound
message is a plain HTTPS POST that a flow or workflow rule sends when a Lead or Contact
changes, and Salesforce queues it and sends it again, for up to 24 hours, until the
receiver acknowledges it (`<Ack>true</Ack>`). That is exactly "persist, then acknowledge":
the notification is committed to the state before the Ack, so neither a crash nor a down
daemon loses it. Platform events and CDC need a long-lived streaming (CometD/Pub/Sub)
client holding a session and a replay id; an endpoint that only answers POSTs is simpler
to run behind the same port as HubSpot's.

Authentication: outbound messages carry no HMAC. Each source has a secret token that is the
last segment of the endpoint URL configured in Salesforce (compared in constant time; a
wrong or missing one is 401 `bad_signature`), and the message's `OrganizationId` must be
the source's `organization_id` (another org's message is 401 `unknown_source`): the token
proves the sender was given the URL, the org id that the message is about the org whose
records syncer reads. Use TLS, so the token never travels in clear.

Replays: Salesforce resends a notification it saw no Ack for with the same notification
`Id`; an id already stored is acknowledged again and stored no second time (answering 401
would only make Salesforce keep resending for a day). Nothing in a message but the record
ids is used: syncer re-reads the records by id, so a message replayed by someone holding
the token can cause at most a re-read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from syncer.domain.inbound import same_signature
from syncer.store import inbound_events
from syncer.store.inbound_events import NewEvent, Replayed
from syncer.web.webhook_common import MAX_BODY, Inbound, bad_payload, refuse

OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ACK = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP}">'
       f'<soapenv:Body><notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack>'
       "</notificationsResponse></soapenv:Body></soapenv:Envelope>")


def parse_notifications(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(OrganizationId, [(notification id, record id)]) of an outbound message; ValueError
    for anything else."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise ValueError(f"not XML ({error})") from None
    notifications = root.find(f".//{{{OUTBOUND}}}notifications")
    if notifications is None:
        raise ValueError("no <notifications> element")
    org = (notifications.findtext(f"{{{OUTBOUND}}}OrganizationId") or "").strip()
    found: list[tuple[str, str]] = []
    for notification in notifications.findall(f"{{{OUTBOUND}}}Notification"):
        notification_id = (notification.findtext(f"{{{OUTBOUND}}}Id") or "").strip()
        sobject = notification.find(f"{{{OUTBOUND}}}sObject")
        record_id = next((child.text.strip() for child in (sobject if sobject is not None
                                                           else [])
                          if child.tag.endswith("}Id") and child.text), "")
        if not notification_id or not record_id:
            raise ValueError("a <Notification> without its Id or its sObject's Id")
        found.append((notification_id, record_id))
    return org, found


def _ack() -> Response:
    return Response(ACK, status_code=200, media_type="text/xml")


async def salesforce(inbound: Inbound, request: Request, name: str,
                     token: str) -> Response | JSONResponse:
    found = inbound.source(name, "salesforce")
    if found is None:
        return refuse(inbound, "unknown", "unknown_source")
    name, source = found
    if not same_signature(inbound.secrets[name], token):
        return refuse(inbound, name, "bad_signature")
    body = await request.body()
    if len(body) > MAX_BODY:
        return bad_payload([f"(body): over {MAX_BODY} bytes"])
    try:
        org, notifications = parse_notifications(body)
    except ValueError as error:
        return bad_payload([f"(body): not a Salesforce outbound message ({error}). Fix: "
                             "point an outbound message action at this URL"])
    if org[:15] != (source.organization_id or "")[:15]:
        return refuse(inbound, name, "unknown_source")
    assert source.connector is not None
    events = [NewEvent(notification_id, "record", source.connector, record_id,
                       {"organization_id": org})
              for notification_id, record_id in notifications]
    stored = await run_in_threadpool(_accept, inbound, name, events)
    for _ in range(stored):
        inbound.metrics.webhook_events.labels(source=name, outcome="pending").inc()
    if stored:
        inbound.wake()
    return _ack()


def _accept(inbound: Inbound, name: str, events: list[NewEvent]) -> int:
    """Store the notifications (in a worker thread: the state is blocking I/O); a message
    all of whose notifications are known was resent after a lost Ack: 0, nothing stored."""
    try:
        return inbound_events.accept(inbound.store, name, None, events, inbound.clock())
    except Replayed:
        return 0
