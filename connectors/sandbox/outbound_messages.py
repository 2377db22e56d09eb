"""The sandbox org's outbound messages: what a Salesforce outbound message action sends when
a Lead or Contact changes, so a Salesforce change reaches syncer's webhook end to end.

    sender = attach_outbound(salesforce_sandbox,
                             "http://127.0.0.1:8089/webhooks/salesforce/salesforce/<token>")

Like Salesforce: one notification per changed Lead or Contact (its id and type; the
`Id` field only, as the action is configured), up to 100 per SOAP message, and a message
is sent again, with growing waits, until the receiver answers `<Ack>true</Ack>` (the
daemon may be down). Every change is sent, syncer's own writes too: in a real org, a flow
entry condition leaves out the integration user's changes. Control API:
POST /_sandbox/outbound {"url"} ({} stops it).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Unpack
from xml.sax.saxutils import escape

from connectors.sandbox.control import Operation
from connectors.sandbox.salesforce.hands import OrgHands
from connectors.sandbox.salesforce.schema import ORG_ID
from connectors.sandbox.webhooks import DeliveryOptions, Event, WebhookSender
from syncer.domain.json_values import JSONObject

OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SENT_FOR = ("Lead", "Contact")


class OutboundMessageSender(WebhookSender):
    """Delivers the org's Lead and Contact changes as outbound messages."""

    def __init__(self, url: str, organization_id: str = ORG_ID,
                 **options: Unpack[DeliveryOptions]) -> None:
        super().__init__(url, "", **options)
        self.organization_id = organization_id
        self._notifications = itertools.count(1)

    def changed(self, object_type: str, record_id: str, _changes: Mapping[str, object]
                ) -> None:
        """The org's listener: one notification per Lead or Contact write."""
        if object_type in SENT_FOR:
            number = next(self._notifications)
            self.enqueue([{"eventId": f"04l{number:012d}AAA", "type": object_type,
                           "Id": record_id}])

    def encode(self, batch: list[Event]) -> tuple[bytes, dict[str, str]]:
        items = "".join(
            f"<Notification><Id>{escape(str(n['eventId']))}</Id>"
            f'<sObject xsi:type="sf:{n["type"]}" '
            f'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"<sf:Id>{escape(str(n['Id']))}</sf:Id></sObject></Notification>" for n in batch)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            f'<notifications xmlns="{OUTBOUND}">'
            f"<OrganizationId>{self.organization_id}</OrganizationId>"
            "<ActionId>04k000000000001AAA</ActionId><SessionId xsi:nil=\"true\"/>"
            f"{items}</notifications></soapenv:Body></soapenv:Envelope>")
        return body.encode(), {"Content-Type": "text/xml; charset=utf-8",
                               "SOAPAction": '""'}

    def accepted(self, status: int, answer: bytes) -> bool:
        """Salesforce counts a message delivered only when it is acknowledged."""
        return status == 200 and b"<Ack>true</Ack>" in answer


def attach_outbound(sandbox: OrgHands, url: str,
                    **options: Unpack[DeliveryOptions]) -> OutboundMessageSender:
    """Send the org's Lead and Contact changes to `url` from now on (replacing a sender)."""
    detach_outbound(sandbox)
    sender = OutboundMessageSender(url, **options)
    with sandbox.org.lock:
        sandbox.org.listeners.append(sender.changed)
    return sender


def detach_outbound(sandbox: OrgHands) -> None:
    with sandbox.org.lock:
        senders = [getattr(listener, "__self__", None) for listener in sandbox.org.listeners]
        sandbox.org.listeners[:] = [
            listener for listener in sandbox.org.listeners
            if not isinstance(getattr(listener, "__self__", None), OutboundMessageSender)]
    for sender in senders:
        if isinstance(sender, OutboundMessageSender):
            sender.stop()


def control_operations(sandbox: OrgHands) -> dict[str, Operation]:
    """POST /_sandbox/outbound {"url"}: start ({} stops) the outbound messages."""
    def outbound(body: JSONObject) -> dict[str, bool]:
        if not body.get("url"):
            detach_outbound(sandbox)
            return {"sending": False}
        attach_outbound(sandbox, str(body["url"]))
        return {"sending": True}
    return {"outbound": outbound}
