"""Salesforce activities a page at a time, each page with where the next one starts.

The four activity streams (CampaignMember, Task, Event, Opportunity) are read in that fixed
order, each `ORDER BY <stamp>, Id`. A position names the last row a page held:
"Task:<stamp>:<Id>" (its stamp as ISO text, the Id after the last colon), and the object's
name alone is its start. A later process goes on from a position with a fresh query
whose WHERE keeps, besides the window, only rows strictly after that row in the same
order: `(<stamp> > X OR (<stamp> = X AND Id > '<Id>'))`. Query locators expire and die
with the session; a stamp and an Id do not. Salesforce's CreatedDate and SystemModstamp
carry whole seconds, so the literal (whole seconds too) is the stamp itself.

The first pages of the queries left to read go together in one Composite call (composite.py),
as `activities` always did: a full pull's activities cost what an incremental's do, plus
nothing, and `activities` is this listing without its positions and empty pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from connectors.salesforce import mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.answers import Row
from connectors.salesforce.composite import PagedQueries, paged_together
from connectors.salesforce.sales_activity import SALES_QUERIES
from syncer.domain.connector import ConnectorError
from syncer.domain.types import Activity

Positioned = Iterator[tuple[list[Activity], str | None]]


@dataclass(frozen=True)
class Stream:
    """One activity query: object, fields, the stamp it is read by, the field naming the
    Lead or Contact (None: every row is one's), mapper."""

    object_type: str
    fields: tuple[str, ...]
    stamp: str
    person: str | None
    to_activities: Callable[[str, Mapping[str, object]], list[Activity]]

    def soql(self, since: str, after: tuple[datetime, str] | None) -> str:
        """Rows stamped at or after `since` (a SOQL literal), strictly after the (stamp, Id)
        `after` in the query's order when given."""
        where = f"{self.stamp} >= {since}"
        if self.person is not None:
            where += f" AND {self.person} != null"
        if after is not None:
            stamp, record_id = soql.datetime_literal(after[0]), soql.quote(after[1])
            where += (f" AND ({self.stamp} > {stamp} OR ({self.stamp} = {stamp} AND "
                      f"Id > {record_id}))")
        return (f"SELECT {', '.join(self.fields)} FROM {self.object_type} WHERE {where} "
                f"ORDER BY {self.stamp}, Id")


def _one(to_activity: Callable[[str, Mapping[str, object]], Activity | None]
         ) -> Callable[[str, Mapping[str, object]], list[Activity]]:
    def mapped(source: str, record: Mapping[str, object]) -> list[Activity]:
        found = to_activity(source, record)
        return [found] if found is not None else []
    return mapped


STREAMS: tuple[Stream, ...] = (
    Stream("CampaignMember", mapping.CAMPAIGN_MEMBER_FIELDS, "CreatedDate", None,
           _one(mapping.campaign_member_activity)),
    Stream("Task", mapping.TASK_FIELDS, "CreatedDate", "WhoId", _one(mapping.task_activity)),
    *(Stream(q.object_type, q.fields, q.stamp, q.person, q.to_activities)
      for q in SALES_QUERIES))
OBJECTS = tuple(stream.object_type for stream in STREAMS)


def activity_pages(client: PagedQueries, since: datetime, position: str | None) -> Positioned:
    """Every activity at or after `since`, from `position` (None: the start), each page
    (maybe empty) with the position after it; an object's end hands on the next object's
    name (None after the last)."""
    start, after = _parse(position)
    literal = soql.datetime_literal(since)
    streams = STREAMS[start:]
    queries = [(stream.soql(literal, after if index == 0 else None), False)
               for index, stream in enumerate(streams)]
    for index, (stream, pages) in enumerate(zip(
            streams, paged_together(client, "activities", queries), strict=True)):
        following = streams[index + 1].object_type if index + 1 < len(streams) else None
        for records in pages:
            if records:  # an empty first page moves no position; the end follows it
                yield _mapped(client.name, stream, records), _after(stream, records)
        yield [], following


def _mapped(source: str, stream: Stream, records: list[Row]) -> list[Activity]:
    return [a for record in records for a in stream.to_activities(source, record)]


def _after(stream: Stream, records: list[Row]) -> str:
    """The position after the last row of a (non-empty) page."""
    last = records[-1]
    stamp = mapping.parse_datetime(str(last[stream.stamp]))
    return f"{stream.object_type}:{stamp.isoformat()}:{last['Id']!s}"


def _parse(position: str | None) -> tuple[int, tuple[datetime, str] | None]:
    """(index of the stream, the (stamp, Id) to go on strictly after) of a position; one
    this connector never gives is refused rather than guessed at."""
    if position is None:
        return 0, None
    object_type, _, rest = position.partition(":")
    if object_type in OBJECTS and not rest:
        return OBJECTS.index(object_type), None
    stamp, _, record_id = rest.rpartition(":")
    try:
        after = datetime.fromisoformat(stamp)
    except ValueError:
        after = None
    if object_type not in OBJECTS or after is None or not record_id:
        raise ConnectorError(f"activities position {position!r} is not one this connector "
                             "gives; delete the connector's row of the state's full_pulls "
                             "table to read the full sync's activities again")
    return OBJECTS.index(object_type), (after, record_id)
