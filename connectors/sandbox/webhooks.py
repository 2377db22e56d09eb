"""The sandbox portal's webhooks: HubSpot-style signed subscription events when its contacts
change, and form fills, so the hand-raise path is tested end to end without an account.

    sender = attach_webhooks(hubspot_sandbox, "http://127.0.0.1:8089/webhooks/hubspot",
                             client_secret)
    submit_form(hubspot_sandbox, contact_id, "Demo request")   # event + property changes

Like HubSpot: every contact change (API write, UI edit, merge, creation, form fill) becomes
one event per changed property (`contact.propertyChange`, with `changeSource`:
INTEGRATION for API writes, CRM_UI for edits, FORM for forms), sent in batches of up to 100
per request, signed with X-HubSpot-Signature-v3 over method + URI + body + timestamp.
Delivery runs on a thread of its own, never the request thread of the sandbox, and a
delivery that fails (connection refused, timeout, 5xx, 429: the daemon may be down) is
sent again with growing waits, up to `attempts` times, as HubSpot retries.
The same operations are on the control API: POST /_sandbox/webhooks {"url", "secret"} and
POST /_sandbox/form_fill {"id" or "email", "form"}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict, Unpack
from urllib.parse import unquote

from connectors.sandbox.control import Operation
from connectors.sandbox.hubspot.events import SITE, EventRecord
from connectors.sandbox.hubspot.http import iso_millis
from connectors.sandbox.hubspot.portal import Portal
from connectors.sandbox.hubspot.schema import EVENT_SUBMITTED_FORM
from connectors.sandbox.hubspot.state import millis
from syncer.domain.json_values import JSONObject

#: HubSpot's changeSource per sandbox write source
CHANGE_SOURCES = {"API": "INTEGRATION", "CRM_UI": "CRM_UI", "FORM": "FORM"}
#: properties whose change HubSpot does not send (they move on every write)
UNSENT = frozenset({"lastmodifieddate", "hs_object_id", "createdate"})
BATCH = 100
PORTAL_ID = 62515
APP_ID = 3_001_337
#: one queued event: a HubSpot subscription event or an outbound notification (text and
#: numbers only)
Event = dict[str, str | int]


def sign(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3 of one request (what HubSpot computes before sending)."""
    message = method.encode() + unquote(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()
                            ).decode()


@dataclass
class Delivery:
    """What the sender did: for tests and the bench."""

    requests: int = 0
    delivered: int = 0
    failures: int = 0
    dropped: int = 0
    #: event id -> when it was first handed to the sender (time.monotonic)
    queued_at: dict[str, float] = field(default_factory=dict)


class DeliveryOptions(TypedDict, total=False):
    """How a sender retries (WebhookSender's keywords), passed through by `attach_*`."""

    attempts: int
    first_wait: float
    max_wait: float
    clock: Callable[[], float]


class WebhookSender:
    """Queues a portal's changes as subscription events and delivers them in order."""

    def __init__(self, url: str, secret: str, *, attempts: int = 10,
                 first_wait: float = 0.1, max_wait: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.clock = clock
        self.delivery = Delivery()
        self._queue: deque[Event] = deque()
        self._ids = itertools.count(int(clock() * 1000))
        self._wake = threading.Condition()
        self._busy = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks",
                                        daemon=True)
        self._thread.start()

    # -- the state's listener -------------------------------------------------------------
    def __call__(self, kind: str, contact_id: str, values: dict[str, str | None],
                 source: str) -> None:
        now = int(self.clock() * 1000)
        base: Event = {"objectId": int(contact_id), "portalId": PORTAL_ID, "appId": APP_ID,
                "occurredAt": now, "attemptNumber": 0,
                "changeSource": CHANGE_SOURCES.get(source, source)}
        events: list[Event] = []
        if kind == "contact.propertyChange":
            events = [{**base, "subscriptionType": kind, "propertyName": name,
                       "propertyValue": value or ""}
                      for name, value in sorted(values.items()) if name not in UNSENT]
        else:
            events = [{**base, "subscriptionType": kind}]
        for event in events:
            event["eventId"] = next(self._ids)
        self.enqueue(events)

    # -- delivery -------------------------------------------------------------------------
    def enqueue(self, events: list[Event]) -> None:
        """Queue events (each with its `eventId`) for delivery, in order."""
        with self._wake:
            for event in events:
                self.delivery.queued_at[str(event["eventId"])] = time.monotonic()
                self._queue.append(event)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopped:
                    self._wake.wait()
                if self._stopped and not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._busy = True
            try:
                self._deliver(batch)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _deliver(self, batch: list[Event]) -> None:
        wait = self.first_wait
        for attempt in range(self.attempts):
            for event in batch:
                event["attemptNumber"] = attempt
            outcome = self._post(batch)
            if outcome == "ok":
                self.delivery.delivered += len(batch)
                return
            if outcome == "refused":
                break
            self.delivery.failures += 1
            if self._stopped:
                break
            time.sleep(wait)
            wait = min(wait * 2, self.max_wait)
        self.delivery.dropped += len(batch)

    def encode(self, batch: list[Event]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one delivery: HubSpot's signed JSON array."""
        body = json.dumps(batch).encode()
        stamp = str(int(self.clock() * 1000))
        return body, {
            "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-v3": sign(self.secret, "POST", self.url, body, stamp),
            "X-HubSpot-Signature-Version": "v3"}

    def accepted(self, status: int, answer: bytes) -> bool:
        return 200 <= status < 300

    def _post(self, batch: list[Event]) -> str:
        """One request: "ok" (taken), "retry" (no answer, 5xx, 429, not taken) or
        "refused" (another 4xx, final: sending it again would be refused again)."""
        body, headers = self.encode(batch)
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        self.delivery.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return "ok" if self.accepted(int(answer.status), answer.read()) else "retry"
        except urllib.error.HTTPError as error:
            return "retry" if error.code == 429 or error.code >= 500 else "refused"
        except (urllib.error.URLError, OSError):
            return "retry"

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was delivered or given up (tests)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(timeout=left)
        return True

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._thread.join(timeout=15)


def attach_webhooks(sandbox: Portal, url: str, secret: str,
                    **options: Unpack[DeliveryOptions]) -> WebhookSender:
    """Send the portal's changes to `url` from now on (replacing an earlier sender)."""
    detach_webhooks(sandbox)
    sender = WebhookSender(url, secret, **options)
    with sandbox.state.lock:
        sandbox.state.listeners.append(sender)
    return sender


def detach_webhooks(sandbox: Portal) -> None:
    with sandbox.state.lock:
        senders = [s for s in sandbox.state.listeners if isinstance(s, WebhookSender)]
        sandbox.state.listeners[:] = [s for s in sandbox.state.listeners
                                      if not isinstance(s, WebhookSender)]
    for sender in senders:
        sender.stop()


def submit_form(sandbox: Portal, contact_id: str, form: str) -> str:
    """A form submission on a contact, as HubSpot records it: a submitted-form event on its
    timeline and its conversion properties updated (which sends webhooks). Returns the
    event id."""
    state = sandbox.state
    if state.contact(contact_id) is None:
        raise ValueError(f"no contact with id {contact_id}")
    at = millis(sandbox.now())
    event_id = str(uuid.uuid4())
    sandbox.api.events.add(EventRecord(event_id, EVENT_SUBMITTED_FORM, contact_id, at, {
        "hs_form_title": form, "hs_form_id": str(uuid.uuid5(uuid.NAMESPACE_URL, form)),
        "hs_url": SITE + "/" + form.lower().replace(" ", "-")}))
    state.apply(contact_id, {"recent_conversion_event_name": form,
                             "recent_conversion_date": iso_millis(at)}, source="FORM")
    return event_id


def control_operations(sandbox: Portal) -> dict[str, Operation]:
    """The control API's webhook operations (connectors/sandbox/control.py)."""
    def webhooks(body: JSONObject) -> dict[str, bool]:
        if not body.get("url"):
            detach_webhooks(sandbox)
            return {"sending": False}
        attach_webhooks(sandbox, str(body["url"]), str(body["secret"]))
        return {"sending": True}

    def form_fill(body: JSONObject) -> dict[str, str]:
        contact_id = str(body.get("id") or "")
        if not contact_id:
            found = sandbox.state.find("email", str(body["email"]))
            if found is None:
                raise ValueError(f"no contact with email {body['email']}")
            contact_id = found.id
        form = str(body.get("form") or "Request a demo")
        return {"event_id": submit_form(sandbox, contact_id, form), "id": contact_id}
    return {"webhooks": webhooks, "form_fill": form_fill}
