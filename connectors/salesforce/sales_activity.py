"""Sales activity from Salesforce: what reps log on a person, and the deals that close.

- Tasks of Type (or TaskSubtype) Call and Email are a `call` / `sales_email`, a plain Task
  (TaskSubtype Task, Type Other or none) a `task`; Meeting Tasks stay a `meeting` and Web
  Activity Tasks page views (connectors/salesforce/mapping.py).
- Events (the calendar) are a `meeting`, or a `call` when their Type is Call.
- Opportunities with a primary contact (Opportunity.ContactId, what a rep sets when making
  the deal from the Contact, and what a Lead conversion with an opportunity leaves) are an
  `opportunity_created` at CreatedDate and, once closed, an `opportunity_won` or
  `opportunity_lost` at the close (the LastModifiedDate it closed with). Deals linked only
  through OpportunityContactRole rows are not read (one more query per page; left out).

Who did it is the record's OwnerId, with Owner.Email read in the same query (no extra call
and no per-person query): attributes `actor_id` and `actor`.

Tasks and Events are read by CreatedDate (a logged activity is new when it is made);
Opportunities by SystemModstamp, since closing a deal changes it without making a row.
Each is one query per page of 2,000 rows, over all people at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connectors.salesforce.mapping import _get, _text, actor, parse_datetime
from syncer.domain.types import Activity, ActivityType

EVENT_FIELDS: tuple[str, ...] = ("Id", "WhoId", "Subject", "Type", "ActivityDateTime",
                                 "DurationInMinutes", "CreatedDate", "OwnerId", "Owner.Email")
OPPORTUNITY_FIELDS: tuple[str, ...] = (
    "Id", "Name", "ContactId", "StageName", "IsClosed", "IsWon", "Amount", "CreatedDate",
    "LastModifiedDate", "SystemModstamp", "OwnerId", "Owner.Email")
def event_activities(source: str, record: Mapping[str, object]) -> list[Activity]:
    """An Event on a Lead or Contact as a meeting (or a call), by its owner."""
    who = _get(record, "WhoId")
    if not who:
        return []
    kind = ActivityType.CALL if str(_get(record, "Type") or "").lower() == "call" \
        else ActivityType.MEETING
    attributes = {"subject": str(_get(record, "Subject") or ""), **actor(record)}
    start = _text(_get(record, "ActivityDateTime"))
    if start:
        attributes["start"] = parse_datetime(start).isoformat()
    return [Activity(source=source, source_id=str(record["Id"]), record_id=str(who),
                     type=kind, occurred_at=parse_datetime(str(record["CreatedDate"])),
                     attributes=attributes)]


def opportunity_activities(source: str, record: Mapping[str, object]) -> list[Activity]:
    """An Opportunity with a primary contact as its creation and, if closed, its outcome
    (source ids `<Id>:created`, `<Id>:closed`)."""
    contact = _get(record, "ContactId")
    if not contact:
        return []
    attributes = {"opportunity": str(record["Id"]), "name": str(_get(record, "Name") or ""),
                  "stage": str(_get(record, "StageName") or ""), **actor(record)}
    amount = _get(record, "Amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        attributes["amount"] = f"{amount:.2f}"
    found = [Activity(source, f"{record['Id']}:created", str(contact),
                      ActivityType.OPPORTUNITY_CREATED,
                      parse_datetime(str(record["CreatedDate"])), attributes)]
    if _get(record, "IsClosed"):
        kind = ActivityType.OPPORTUNITY_WON if _get(record, "IsWon") \
            else ActivityType.OPPORTUNITY_LOST
        closed = _get(record, "LastModifiedDate") or _get(record, "SystemModstamp")
        found.append(Activity(source, f"{record['Id']}:closed", str(contact), kind,
                              parse_datetime(str(closed)), attributes))
    return found


@dataclass(frozen=True)
class ActivityQuery:
    """One activity query: object, fields, stamp, the field naming the row's Lead or
    Contact, mapper."""

    object_type: str
    fields: tuple[str, ...]
    stamp: str
    person: str
    to_activities: Callable[[str, Mapping[str, object]], list[Activity]]

    def soql(self, after: str) -> str:
        """The query for rows stamped at or after `after` (a SOQL datetime literal)."""
        return (f"SELECT {', '.join(self.fields)} FROM {self.object_type} WHERE "
                f"{self.stamp} >= {after} AND {self.person} != null "
                f"ORDER BY {self.stamp}, Id")

    def soql_for(self, id_list: str, after: str) -> str:
        """The same, only for the rows of the people in `id_list` (a SOQL `(...)` list):
        a webhook's focused re-read."""
        return (f"SELECT {', '.join(self.fields)} FROM {self.object_type} WHERE "
                f"{self.person} IN {id_list} AND {self.stamp} >= {after} "
                f"ORDER BY {self.stamp}, Id")


SALES_QUERIES: tuple[ActivityQuery, ...] = (
    ActivityQuery("Event", EVENT_FIELDS, "CreatedDate", "WhoId", event_activities),
    ActivityQuery("Opportunity", OPPORTUNITY_FIELDS, "SystemModstamp", "ContactId",
                  opportunity_activities))
