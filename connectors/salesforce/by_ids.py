"""Reading named Leads and Contacts now: the focused re-read a webhook or an outbound
message asks for.

One SOQL query per object type and 200 ids (`Id IN (...)`, values quoted and escaped),
then their campaign memberships, tasks, events and opportunities since a moment. A
converted Lead is left out, as in a pull: the Contact it became carries the person on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from connectors.salesforce import mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.answers import Row
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.sales_activity import SALES_QUERIES
from syncer.domain.connector import mapped_person_fields
from syncer.domain.types import Activity, Person

CHUNK = 200
#: the key prefix of each person object's ids
PREFIXES = {"Lead": "00Q", "Contact": "003"}
#: a record id's shape (15 or 18 characters): anything else would fail the whole query
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def _in_list(ids: Sequence[str]) -> str:
    return "(" + ", ".join(soql.quote(i) for i in ids) + ")"


def read_by_ids(connector: SalesforceClient, record_ids: Sequence[str],
                activities_since: datetime) -> tuple[list[Person], list[Activity]]:
    """The Leads and Contacts with these ids that exist (and are not converted) now, and
    their campaign memberships and tasks created at or after `activities_since`."""
    writeback = connector.settings.writeback_fields
    mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
    people: list[Person] = []
    for object_type in mapping.PERSON_OBJECTS:
        ids = sorted({i for i in record_ids
                      if i.startswith(PREFIXES[object_type]) and _ID.match(i)})
        if not ids:
            continue
        connector._check_writeback(object_type)
        fields = ", ".join(mapping.person_fields(object_type, writeback,
                                                 list(mapped.values())))
        converted = " AND IsConverted = false" if object_type == "Lead" else ""
        for start in range(0, len(ids), CHUNK):
            query = (f"SELECT {fields} FROM {object_type} WHERE Id IN "
                     f"{_in_list(ids[start:start + CHUNK])}{converted}")
            for records in connector._pages("people", query):
                people.extend(mapping.to_person(connector.name, object_type, r, writeback,
                                                mapped) for r in records)
    return people, _activities(connector, [p.record_id for p in people], activities_since)


def _activities(connector: SalesforceClient, ids: Sequence[str],
                since: datetime) -> list[Activity]:
    after = soql.datetime_literal(since)
    found: list[Activity] = []
    sources: tuple[tuple[str, tuple[str, ...], Callable[[Sequence[str]], str],
                         Callable[[str, Row], Activity | None]], ...] = (
        ("CampaignMember", mapping.CAMPAIGN_MEMBER_FIELDS,
         lambda chunk: f"(LeadId IN {_in_list(chunk)} OR ContactId IN {_in_list(chunk)})",
         mapping.campaign_member_activity),
        ("Task", mapping.TASK_FIELDS, lambda chunk: f"WhoId IN {_in_list(chunk)}",
         mapping.task_activity))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        for object_type, fields, condition, to_activity in sources:
            query = (f"SELECT {', '.join(fields)} FROM {object_type} WHERE "
                     f"{condition(chunk)} AND CreatedDate >= {after} ORDER BY CreatedDate, Id")
            for records in connector._pages("activities", query):
                found.extend(a for r in records
                             if (a := to_activity(connector.name, r)) is not None)
        for sales in SALES_QUERIES:  # Events, Opportunities (sales_activity.py)
            for records in connector._pages("activities",
                                            sales.soql_for(_in_list(chunk), after)):
                found.extend(a for r in records for a in sales.to_activities(connector.name, r))
    return found

