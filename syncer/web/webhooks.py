"""The inbound endpoint: signed hand-raises in, stored, answered 202 (docs/webhooks.md).

    POST /webhooks/hubspot[/<source>]   HubSpot subscriptions (X-HubSpot-Signature-v3)
    POST /webhooks/generic[/<source>]   any tool: person + activity (X-Syncer-Signature)
    POST /webhooks/salesforce/<source>/<token>   Salesforce outbound messages (SOAP)

Nothing a request carries is parsed before its signature and timestamp pass: an unsigned,
badly signed, stale or replayed request gets 401 and only increments
`syncer_webhook_rejected{source, reason}`. An accepted request's events are committed to
the state (syncer/store/inbound_events.py) before the answer, then the processor is woken
(syncer/ops/inbound.py); the request thread never talks to a CRM.

Salesforce outbound messages (`POST /webhooks/salesforce/<source>/<token>`) are answered
by syncer/web/salesforce_webhooks.py, which says why outbound messages and how they are
authenticated.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from syncer.domain.config import writeback_fields
from syncer.domain.inbound import (
    HandRaiseInvalid,
    check_timestamp,
    generic_signature,
    hubspot_v3_signature,
    parse_hand_raise,
    same_signature,
)
from syncer.store import inbound_events
from syncer.store.inbound_events import DONE, ECHO, PENDING, NewEvent, Replayed
from syncer.web.salesforce_webhooks import salesforce
from syncer.web.webhook_common import MAX_BODY, Inbound, bad_payload, refuse

log = structlog.get_logger(__name__)

#: HubSpot subscription types after which the contact is re-read and re-qualified; others
#: (deletion, privacy deletion) are stored as done: the scheduled pull follows them.
REREAD = frozenset({"contact.creation", "contact.propertyChange", "contact.merge",
                    "contact.restore", "contact.associationChange"})
_NOTHING = object()


def _store(inbound: Inbound, name: str, signature: str,
           events: list[NewEvent]) -> JSONResponse:
    try:
        new = inbound_events.accept(inbound.store, name, signature, events, inbound.clock())
    except Replayed:
        return refuse(inbound, name, "replay")
    for event in events:
        outcome = {PENDING: "pending", ECHO: "echo", DONE: "ignored"}[event.status]
        inbound.metrics.webhook_events.labels(source=name, outcome=outcome).inc()
    if any(e.status == PENDING for e in events):
        inbound.wake()
    log.info("webhook.accepted", source=name, events=len(events), new=new)
    return JSONResponse({"status": "accepted", "events": new}, status_code=202)


#: the signature a request should carry, from the source's secret, the body and the stamp
Expected = Callable[[str, bytes, str], str]


async def _signed_body(inbound: Inbound, request: Request, name: str, signature_header: str,
                       timestamp_header: str, expected: Expected, *, millis: bool
                       ) -> tuple[bytes, str] | JSONResponse:
    """The body and its signature once size, signature and timestamp pass (one place for
    every signed route, so none can skip a check); else the 400 or the counted 401."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return bad_payload([f"(body): over {MAX_BODY} bytes. Fix: send fewer events"])
    signature = request.headers.get(signature_header)
    stamp = request.headers.get(timestamp_header)
    if not signature:
        return refuse(inbound, name, "unsigned")
    late = check_timestamp(stamp, inbound.clock(),
                           inbound.loaded.config.webhooks.max_age_seconds, millis=millis)
    if late is not None:
        return refuse(inbound, name, late)
    if not same_signature(expected(inbound.secrets[name], body, str(stamp)), signature):
        return refuse(inbound, name, "bad_signature")
    return body, signature


async def hubspot(inbound: Inbound, request: Request, name: str | None) -> JSONResponse:
    found = inbound.source(name, "hubspot")
    if found is None:
        return refuse(inbound, "unknown", "unknown_source")
    name, source = found
    uri = source.public_url or str(request.url)
    checked = await _signed_body(
        inbound, request, name, "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp",
        lambda secret, body, stamp: hubspot_v3_signature(secret, request.method, uri, body,
                                                         stamp), millis=True)
    if isinstance(checked, JSONResponse):
        return checked
    body, signature = checked
    try:
        data = json.loads(body)
        assert source.connector is not None
        events = await run_in_threadpool(hubspot_events, inbound, source.connector, data)
    except (ValueError, TypeError, KeyError) as error:
        return bad_payload([f"(body): not HubSpot's array of events ({error}). Fix: send "
                             "the subscription payload unchanged"])
    return await run_in_threadpool(_store, inbound, name, signature, events)


def hubspot_events(inbound: Inbound, connector: str, data: object) -> list[NewEvent]:
    """HubSpot's array of events as rows. Syncer's own write coming back is an `echo`,
    stored but not run: a change of a field syncer writes to the value it last wrote
    there, or of a field syncer decides made through the API."""
    if not isinstance(data, list):
        raise ValueError("expected a JSON array")
    config = inbound.loaded.connector(connector)
    ours = {f.lower() for f in writeback_fields(inbound.loaded, config)}
    decided = {f.lower() for f in config.fields.decided()}
    ids = [str(e["objectId"]) for e in data]
    written = inbound.store.written_values(connector, sorted(set(ids)))
    events: list[NewEvent] = []
    for event, record_id in zip(data, ids, strict=True):
        kind = str(event["subscriptionType"])
        prop = str(event.get("propertyName") or "")
        status = PENDING if kind in REREAD else DONE
        if kind == "contact.propertyChange" and prop.lower() in ours:
            mine = {f.lower(): v for (r, f), v in written.items() if r == record_id}
            last = mine.get(prop.lower(), _NOTHING)
            # A field syncer decides, changed through the API, is syncer's write too: its
            # webhook may arrive before the write's outcome is stored. Another
            # integration's change there is still seen by the next scheduled sync.
            if last == event.get("propertyValue") or (
                    prop.lower() in decided and event.get("changeSource") == "INTEGRATION"):
                status = ECHO
        payload = {k: event.get(k) for k in ("subscriptionType", "propertyName",
                                             "changeSource", "occurredAt", "portalId")}
        events.append(NewEvent(str(event["eventId"]), "record", connector, record_id,
                               payload, status))
    return events


async def generic(inbound: Inbound, request: Request, name: str | None) -> JSONResponse:
    name = name or request.headers.get("X-Syncer-Source")
    found = inbound.source(name, "generic") if name else None
    if found is None:
        return refuse(inbound, "unknown", "unknown_source")
    name, _source = found
    checked = await _signed_body(
        inbound, request, name, "X-Syncer-Signature", "X-Syncer-Timestamp",
        lambda secret, body, stamp: generic_signature(secret, stamp, body), millis=False)
    if isinstance(checked, JSONResponse):
        return checked
    body, signature = checked
    try:
        data = json.loads(body)
    except ValueError:
        return bad_payload(["(body): not JSON. Fix: send one hand-raise object or an "
                             "array of them (docs/webhooks.md)"])
    items = data if isinstance(data, list) else [data]
    events: list[NewEvent] = []
    problems: list[str] = []
    for number, item in enumerate(items):
        try:
            raised = parse_hand_raise(item, now=inbound.clock())
        except HandRaiseInvalid as invalid:
            where = f"[{number}] " if isinstance(data, list) else ""
            problems.extend(where + p for p in invalid.problems)
            continue
        events.append(NewEvent(raised.event_id, "person", name, raised.email,
                               raised.as_json()))
    if problems:
        return bad_payload(problems)
    return await run_in_threadpool(_store, inbound, name, signature, events)


def create_webhook_app(inbound: Inbound) -> FastAPI:
    """The FastAPI app of the inbound endpoint (served by syncer/web/webhook_server.py)."""
    app = FastAPI(title="syncer webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/hubspot")
    async def hubspot_default(request: Request) -> JSONResponse:
        return await hubspot(inbound, request, None)

    @app.post("/webhooks/hubspot/{source}")
    async def hubspot_named(source: str, request: Request) -> JSONResponse:
        return await hubspot(inbound, request, source)

    @app.post("/webhooks/salesforce/{source}/{token}")
    async def salesforce_named(source: str, token: str, request: Request) -> Response:
        return await salesforce(inbound, request, source, token)

    @app.post("/webhooks/generic")
    async def generic_default(request: Request) -> JSONResponse:
        return await generic(inbound, request, None)

    @app.post("/webhooks/generic/{source}")
    async def generic_named(source: str, request: Request) -> JSONResponse:
        return await generic(inbound, request, source)

    return app
