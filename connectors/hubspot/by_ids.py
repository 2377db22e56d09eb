"""Reading named contacts now: the focused re-read a webhook asks for.

A HubSpot webhook names a contact id and what changed, never the whole contact; syncer
re-reads it before deciding, so it decides on what the portal holds now (a later edit, a
merge) rather than on the event. Contacts come from one batch read per 100 ids, their
events from the events API filtered by objectId (one request per contact: a webhook names
a handful of contacts, and scanning the portal's whole event stream would cost more).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from connectors.hubspot import mapping
from connectors.hubspot.answers import CrmObject, Event
from syncer.domain.types import Activity, Person

BATCH = 100


class ContactReads(Protocol):
    """What a focused re-read needs of the connector (HubSpotConnector is one)."""

    def read_fields(self) -> list[str]: ...

    def read_contacts(self, ids: Sequence[str], fields: Sequence[str]) -> list[CrmObject]: ...

    def person(self, contact: CrmObject) -> Person: ...

    def events(self, start: datetime, contact_id: str | None = None
               ) -> Iterator[list[Event]]: ...

    def activity(self, found: Event) -> Activity | None: ...


def read_by_ids(connector: ContactReads, record_ids: Sequence[str],
                activities_since: datetime) -> tuple[list[Person], list[Activity]]:
    """The contacts with these ids that exist now (merged-away or deleted ids are left
    out: the next scheduled pull follows them) and their events since `activities_since`."""
    fields = connector.read_fields()
    ids = sorted(set(record_ids), key=lambda i: (len(i), i))
    people = [connector.person(contact) for start in range(0, len(ids), BATCH)
              for contact in connector.read_contacts(ids[start:start + BATCH], fields)]
    since = mapping.as_utc(activities_since)
    # the API filters strictly after: ask from 1 ms earlier to include `since` itself
    start = since - timedelta(milliseconds=1)
    activities = [activity for person in people
                  for events in connector.events(start, person.record_id)
                  for activity in map(connector.activity, events)
                  if activity is not None and activity.occurred_at >= since]
    return people, activities
