"""The sandbox portal's events (hubspot-channel activities), served lazily in time order.

HubSpot's events API pages a contact's or the whole portal's events by `occurredAt`. The
sandbox never holds the events: the world's time index says which people have events in
each 15-minute bucket, and a page generates just those people, sorts the bucket exactly by
(occurredAt, id) and keeps a few recent buckets cached. Paging tokens are positions in
that order, so a walk over millions of events costs one bucket at a time.

Events belong to the contact their person's id answers as now: after a merge, the merged
contact's events are served under the survivor (as HubSpot shows both timelines on it).
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from connectors.sandbox.hubspot.http import validation_error
from connectors.sandbox.hubspot.schema import (
    EVENT_ATTENDED_MARKETING_EVENT,
    EVENT_BOUNCED_EMAIL,
    EVENT_CLICKED_EMAIL,
    EVENT_OPENED_EMAIL,
    EVENT_REGISTERED_MARKETING_EVENT,
    EVENT_SUBMITTED_FORM,
    EVENT_UNSUBSCRIBED_EMAIL,
    EVENT_VISITED_PAGE,
    PAGE_TITLES,
)
from connectors.sandbox.hubspot.state import Contact, PortalState, contact_id_for, millis
from connectors.sandbox.index import BUCKETS, unpack
from connectors.sandbox.world import World, WorldActivity, WorldPerson
from syncer.domain.types import ActivityType

_ID_NAMESPACE = uuid.UUID("6f1c2d9e-3b7a-4f51-9a0e-2c5d8b7e4a10")
SITE = "https://www.syncer-sandbox.test"
#: buckets kept generated (each a few hundred events at a million people).
CACHED_BUCKETS = 16
PERSON_BUCKET = -1


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    event_type: str
    object_id: str
    occurred_at: datetime
    properties: dict[str, str] = field(default_factory=dict)


def event_properties(activity: WorldActivity) -> tuple[str, dict[str, str]]:
    """How HubSpot would record one world activity: event type name and its properties."""
    detail = activity.detail
    kind = activity.type
    if kind in (ActivityType.PAGE_VIEW, ActivityType.PRICING_PAGE_VIEW):
        url = detail.get("url", SITE + "/")
        path = url.removeprefix(SITE) or "/"
        viewed = {"hs_url": url, "hs_page_title": PAGE_TITLES.get(path, path)}
        if "duration" in detail:
            viewed["hs_time_on_page"] = detail["duration"]  # seconds
        return EVENT_VISITED_PAGE, viewed
    email_events = {ActivityType.EMAIL_OPEN: EVENT_OPENED_EMAIL,
                    ActivityType.EMAIL_CLICK: EVENT_CLICKED_EMAIL,
                    ActivityType.EMAIL_BOUNCE: EVENT_BOUNCED_EMAIL,
                    ActivityType.UNSUBSCRIBE: EVENT_UNSUBSCRIBED_EMAIL}
    if kind in email_events:
        return email_events[kind], {"hs_email_name": detail.get("email", "")}
    if kind in (ActivityType.WEBINAR_REGISTRATION, ActivityType.WEBINAR_ATTENDANCE):
        name = (EVENT_REGISTERED_MARKETING_EVENT if kind is ActivityType.WEBINAR_REGISTRATION
                else EVENT_ATTENDED_MARKETING_EVENT)
        marketing = {"hs_marketing_event_name": detail.get("campaign", ""),
                     "hs_marketing_event_type": "WEBINAR"}
        if "duration" in detail:
            marketing["hs_attendance_duration"] = detail["duration"]  # minutes
        return name, marketing
    title = detail.get("form", "Contact us")
    properties = {"hs_form_title": title,
                  "hs_form_id": str(uuid.uuid5(_ID_NAMESPACE, "form:" + title)),
                  "hs_url": SITE + "/" + title.lower().replace(" ", "-")}
    if "asset" in detail:
        properties["hs_asset_title"] = detail["asset"]
    return EVENT_SUBMITTED_FORM, properties


def event_for(world: World, person: WorldPerson, ordinal: int) -> EventRecord:
    """The event of `person`'s activity number `ordinal` (which must be hubspot's)."""
    activity = person.activities[ordinal]
    event_type, properties = event_properties(activity)
    event_id = str(uuid.uuid5(_ID_NAMESPACE, f"{world.seed}:{person.index}:{ordinal}"))
    return EventRecord(event_id, event_type, contact_id_for(person.index),
                       millis(activity.occurred_at), properties)


def _order(event: EventRecord) -> tuple[datetime, str]:
    return event.occurred_at, event.id


@dataclass(frozen=True)
class EventQuery:
    """The filters of one events request (HubSpot's query parameters)."""

    #: objectId as the world indices whose events it holds (its own and those of contacts
    #: merged into it); None: every contact
    object_indices: tuple[int, ...] | None = None
    event_type: str | None = None
    after: datetime | None = None  # strictly after
    before: datetime | None = None  # strictly before
    ids: frozenset[str] = frozenset()
    properties: Mapping[str, str] = field(default_factory=dict)
    object_properties: Mapping[str, str] = field(default_factory=dict)
    descending: bool = True
    #: an object type without events, or an unknown contact: an empty answer
    matches_nothing: bool = False


def encode_position(bucket: int, offset: int) -> str:
    raw = f"pos:{bucket}:{offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str) -> tuple[int, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        kind, bucket, offset = base64.urlsafe_b64decode(padded).decode().split(":")
        if kind == "pos":
            return int(bucket), int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise validation_error(f"Invalid paging cursor: '{token}'")


class EventLog:
    """Pages of events over a PortalState and its world's time index."""

    def __init__(self, state: PortalState) -> None:
        self.state = state
        self.world = state.world
        self._cache: OrderedDict[int, list[EventRecord]] = OrderedDict()
        self._lock = threading.Lock()
        #: events recorded since the sandbox started (form fills: connectors/sandbox/webhooks.py)
        self.added: list[EventRecord] = []

    def add(self, event: EventRecord) -> None:
        """Record a new event; pages serve it from now on, in its time order."""
        with self._lock:
            self.added.append(event)

    def _added_in(self, bucket: int | None, contacts: set[str] | None = None
                  ) -> list[EventRecord]:
        """Added events of one bucket (those past the world's last bucket count in it),
        or of these contact ids."""
        with self._lock:
            added = list(self.added)
        if not added:
            return []
        if contacts is not None:
            return [e for e in added if e.object_id in contacts]
        index = self.world.index()
        return [e for e in added
                if min(max(index.bucket_of(e.occurred_at), 0), BUCKETS - 1) == bucket]

    def of_people(self, indices: tuple[int, ...]) -> list[EventRecord]:
        """The events of these world people, oldest first."""
        made: list[EventRecord] = []
        for index in indices:
            person = self.world.person(index)
            made.extend(event_for(self.world, person, k)
                        for k, a in enumerate(person.activities) if a.channel == "hubspot")
        made.extend(self._added_in(None, {contact_id_for(i) for i in indices}))
        return sorted(made, key=_order)

    def _attributed(self, event: EventRecord) -> EventRecord:
        """The event under the contact its contact was merged into, if it was."""
        if event.object_id not in self.state.merged_into:
            return event
        current = self.state.current_id(event.object_id)
        return event if current is None else replace(event, object_id=current)

    def bucket(self, bucket: int) -> list[EventRecord]:
        """Every event of one 15-minute bucket, oldest first (generated ones cached, LRU)."""
        added = self._added_in(bucket)
        generated = self._generated(bucket)
        return sorted([*generated, *added], key=_order) if added else generated

    def _generated(self, bucket: int) -> list[EventRecord]:
        with self._lock:
            cached = self._cache.get(bucket)
            if cached is not None:
                self._cache.move_to_end(bucket)
                return cached
        wanted: defaultdict[int, list[int]] = defaultdict(list)
        for entry in self.world.index().entries("hubspot", bucket):
            person, ordinal = unpack(entry)
            wanted[person].append(ordinal)
        made: list[EventRecord] = []
        for index, ordinals in wanted.items():
            generated = self.world.person(index)
            made.extend(event_for(self.world, generated, k) for k in ordinals)
        made.sort(key=_order)
        with self._lock:
            self._cache[bucket] = made
            while len(self._cache) > CACHED_BUCKETS:
                self._cache.popitem(last=False)
        return made

    def page(self, query: EventQuery, token: str | None,
             limit: int) -> tuple[list[EventRecord], str | None]:
        """Up to `limit` matching events from `token` on, and the next page's token."""
        start = decode_position(token) if token else None
        if query.matches_nothing:
            return [], None
        found: list[EventRecord] = []
        contacts: dict[str, Contact | None] = {}
        for position, generated in self._scan(query, start):
            event = self._attributed(generated)
            if not self._matches(event, query, contacts):
                continue
            if len(found) == limit:
                return found, encode_position(*position)
            found.append(event)
        return found, None

    def _scan(self, query: EventQuery,
              start: tuple[int, int] | None) -> Iterator[tuple[tuple[int, int], EventRecord]]:
        """Every candidate event in answer order with its position, from `start` on."""
        if query.object_indices is not None:
            buckets: list[int] = [PERSON_BUCKET]
        else:
            index = self.world.index()
            low = 0 if query.after is None else max(0, index.bucket_of(query.after))
            high = BUCKETS - 1 if query.before is None else min(BUCKETS - 1,
                                                                 index.bucket_of(query.before))
            buckets = list(range(low, high + 1))
            if query.descending:
                buckets.reverse()
        if start is not None:
            if start[0] not in buckets:
                raise validation_error("Invalid paging cursor: it does not belong to this "
                                       "query")
            buckets = buckets[buckets.index(start[0]):]
        for number, bucket in enumerate(buckets):
            events = (self.of_people(query.object_indices)
                      if bucket == PERSON_BUCKET and query.object_indices is not None
                      else self.bucket(bucket))
            positions = range(len(events) - 1, -1, -1) if query.descending \
                else range(len(events))
            if number == 0 and start is not None:
                positions = (range(min(start[1], len(events) - 1), -1, -1) if query.descending
                             else range(start[1], len(events)))
            for offset in positions:
                yield (bucket, offset), events[offset]

    def _matches(self, event: EventRecord, query: EventQuery,
                 contacts: dict[str, Contact | None]) -> bool:
        if query.event_type and event.event_type != query.event_type:
            return False
        if query.after is not None and not event.occurred_at > query.after:
            return False
        if query.before is not None and not event.occurred_at < query.before:
            return False
        if query.ids and event.id not in query.ids:
            return False
        if any(event.properties.get(k) != v for k, v in query.properties.items()):
            return False
        if query.object_properties:
            if event.object_id not in contacts:
                contacts[event.object_id] = self.state.contact(event.object_id)
            contact = contacts[event.object_id]
            if contact is None or any((contact.properties.get(k) or "").lower() != v
                                      for k, v in query.object_properties.items()):
                return False
        return True
