"""The sandbox portal's webhook sender and form fills, against a plain receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors import build_connector
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.webhooks import WebhookSender, attach_webhooks, sign
from syncer.domain.connector import ConnectorSettings
from syncer.domain.types import ActivityType
from tests.conftest import NOW, Sandboxes
from tests.sandbox_control import control, result

SECRET = "client-secret"


class Receiver:
    """A webhook endpoint that checks the v3 signature, refuses the first `failures`
    requests with 503 and keeps every event it accepted."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.got_event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-HubSpot-Request-Timestamp"]
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                if sign(SECRET, "POST", url, body, stamp) != \
                        self.headers["X-HubSpot-Signature-v3"]:
                    receiver.bad_signatures += 1
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver.got_event:
                    receiver.events.extend(json.loads(body))
                    receiver.got_event.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/hubspot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=2)
    yield running
    running.server.shutdown()
    running.server.server_close()


def hubspot_of(sandboxes: Sandboxes) -> HubSpotSandbox:
    assert isinstance(sandboxes.hubspot, HubSpotSandbox)
    return sandboxes.hubspot


def test_edits_and_form_fills_are_sent_signed_and_retried(sandboxes: Sandboxes,
                                                          receiver: Receiver) -> None:
    hubspot = hubspot_of(sandboxes)
    sender = attach_webhooks(hubspot, receiver.url, SECRET, first_wait=0.01)
    contact = str(hubspot.records()[0]["id"])
    assert control(hubspot, "edit", id=contact, field="jobtitle", value="CTO")["jobtitle"] \
        == "CTO"
    filled = result(hubspot, "form_fill", id=contact, form="Request a demo")
    assert sender.flush()
    sender.stop()

    assert receiver.bad_signatures == 0
    assert sender.delivery.failures == 2 and sender.delivery.dropped == 0  # 503s retried
    changes = {(e["propertyName"], e["changeSource"]) for e in receiver.events}
    assert ("jobtitle", "CRM_UI") in changes
    assert ("recent_conversion_event_name", "FORM") in changes
    assert {e["objectId"] for e in receiver.events} == {int(contact)}
    assert len({e["eventId"] for e in receiver.events}) == len(receiver.events)

    # The form fill is on the contact's timeline, as the real client reads it.
    connector = build_connector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=hubspot.base_url,
        credentials=hubspot.credentials))
    people, activities = connector.read_by_ids([contact], NOW - timedelta(days=1))
    assert [p.title for p in people] == ["CTO"]
    demo = [a for a in activities if a.source_id == filled["event_id"]]
    assert [a.type for a in demo] == [ActivityType.DEMO_REQUEST]
    connector.close()


def test_nothing_is_sent_after_the_sender_is_detached(sandboxes: Sandboxes,
                                                      receiver: Receiver) -> None:
    hubspot = hubspot_of(sandboxes)
    receiver.failures = 0
    on = control(hubspot, "webhooks", url=receiver.url, secret=SECRET)
    assert on == {"result": {"sending": True}}
    contact = str(hubspot.records()[1]["id"])
    control(hubspot, "edit", id=contact, field="jobtitle", value="VP")
    with receiver.got_event:
        assert receiver.got_event.wait_for(lambda: len(receiver.events) == 1, timeout=30)
    off = control(hubspot, "webhooks")
    assert off == {"result": {"sending": False}}
    control(hubspot, "edit", id=contact, field="jobtitle", value="CEO")
    # the portal's own listener (associations.py: associatedcompanyid) stays
    assert not [s for s in hubspot.state.listeners if isinstance(s, WebhookSender)]
    assert [e["propertyValue"] for e in receiver.events] == ["VP"]
