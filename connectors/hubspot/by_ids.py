"""Reading named contacts now: the focused re-read a webhook asks for.

A HubSpot webhook names a contact id and what changed, never the whole contact; syncer
re-reads it before deciding, so it decides on what the portal holds now (a later edit, a
merge) rather than on the event. Contacts come from one batch read per 100 ids, their
events from the events API filtered by objectId (one request per contact: a webhook names
a handful of contacts, and scanning the portal's whole event stream would cost more).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hubspot.crm.contacts import (  # type: ignore[import-untyped]
    BatchReadInputSimplePublicObjectId,
)

from connectors.hubspot import mapping
from syncer.domain.types import Activity, Person

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

BATCH = 100


def read_by_ids(connector: HubSpotConnector, record_ids: Sequence[str],
                activities_since: datetime) -> tuple[list[Person], list[Activity]]:
    """The contacts with these ids that exist now (merged-away or deleted ids are left
    out: the next scheduled pull follows them) and their events since `activities_since`."""
    settings = connector._settings
    fields = list(dict.fromkeys([*mapping.MODEL_PROPERTIES, *settings.writeback_fields,
                                 *connector._person_fields.values()]))
    ids = sorted(set(record_ids), key=lambda i: (len(i), i))
    people: list[Person] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        body = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": record_id} for record_id in chunk], properties=fields,
            properties_with_history=[])

        def read(body: Any = body) -> Any:
            return connector._writes.batch.read_with_http_info(
                body, archived=False, _request_timeout=connector._timeout)
        data, _ = connector._call("contacts.batch_read", read)
        people.extend(mapping.to_person(connector.name, str(c.id), c.properties or {},
                                        c.updated_at, settings.writeback_fields,
                                        connector._person_fields)
                      for c in data.results or [])
    activities: list[Activity] = []
    since = mapping.as_utc(activities_since)
    for person in people:
        activities.extend(_events_of(connector, person.record_id, since))
    return people, activities


def _events_of(connector: HubSpotConnector, contact_id: str,
               since: datetime) -> list[Activity]:
    """One contact's events at or after `since` (the API filters strictly after)."""
    start = since - timedelta(milliseconds=1)
    found: list[Activity] = []
    for page in connector._pages("events.list", lambda after: connector._events
                                 .get_page_with_http_info(
                                     object_type="contact", object_id=int(contact_id),
                                     occurred_after=start, sort=["ASCENDING"],
                                     limit=connector._events_page_size, after=after,
                                     _request_timeout=connector._timeout)):
        for event in page:
            activity = mapping.to_activity(connector.name, str(event.id),
                                           str(event.object_id), str(event.event_type),
                                           event.occurred_at, event.properties)
            if activity is not None and activity.occurred_at >= since:
                found.append(activity)
    return found
