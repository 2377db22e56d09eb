"""Incremental people pulls that cost one query per object, and the reads of the echo and
reconciliation stages (syncer/run/echo.py, syncer/run/sweep.py).

An incremental pull reads Leads and Contacts changed since the cursor together with the
records that stopped taking writes (converted Leads, merged-away records) in one queryAll
per object, instead of a query for the people and another for the successions, and the
two queryAlls' first pages come in one Composite call (composite.py); the
successions it met are handed to successions() when it asks for the same time. The
stretches of syncer's own writes are left out of the live records' time range, so the
echo of a write-back is not read again. No describe is spent unless the query fails
(then the describe tells which mapped field is missing, in words an admin can act on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from simple_salesforce.api import Salesforce

from connectors.salesforce import mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.answers import QueryPage, Row, query_page
from connectors.salesforce.composite import paged_together
from syncer.domain.connector import ConnectorError, ConnectorSettings, mapped_person_fields
from syncer.domain.types import Person, Succession

T = TypeVar("T")


class PeopleReads(Protocol):
    """What these reads use of the connector (SalesforceConnector is one): its settings,
    its one retry layer and paged queries, and the checks that explain a failed query."""

    name: str
    settings: ConnectorSettings
    _query_headers: dict[str, str]
    #: successions an incremental people() met, by its `since`
    met_successions: dict[datetime, list[Succession]]

    def _call(self, operation: str, fn: Callable[[Salesforce], T]) -> T: ...

    def _pages(self, operation: str, query: str, *, include_deleted: bool = False,
               first: QueryPage | None = None) -> Iterator[list[Row]]: ...

    def _settle_left_jobs(self) -> None: ...

    def _check_writeback(self, object_type: str) -> dict[str, tuple[str, str]]: ...

    def _missing_person_fields(self, object_type: str, mapped: dict[str, str]) -> list[str]: ...


#: records per sweep page: one REST query page.
SWEEP_PAGE = 2000


def _stamp(value: object) -> datetime | None:
    return mapping.parse_datetime(str(value)) if value else None


def _fields(connector: PeopleReads, object_type: str) -> list[str]:
    mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
    fields = mapping.person_fields(object_type, connector.settings.writeback_fields,
                                   list(mapped.values()))
    seen = {f.lower() for f in fields}
    return [*fields, *(f for f in mapping.SUCCESSION_FIELDS[object_type]
                       if f.lower() not in seen)]


def _where(object_type: str, since: datetime,
           skip: Sequence[tuple[datetime, datetime]]) -> str:
    live = ["IsDeleted = false"]
    if object_type == "Lead":
        live.append("IsConverted = false")
    live.extend(soql.outside("SystemModstamp", skip))
    followed = "(IsDeleted = true AND MasterRecordId != null)"
    if object_type == "Lead":
        followed = f"(IsConverted = true OR {followed})"
    return (f"SystemModstamp >= {soql.datetime_literal(since)} AND "
            f"(({' AND '.join(live)}) OR {followed})")


def changed_people(connector: PeopleReads, since: datetime,
                   skip: Sequence[tuple[datetime, datetime]]) -> Iterator[list[Person]]:
    """Live Leads and Contacts modified at or after `since` outside the `skip` ranges
    (start, end]; the successions met on the way are kept for successions(since)."""
    writeback = connector.settings.writeback_fields
    mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
    followed: list[Succession] = []
    connector._settle_left_jobs()
    queries = [(f"SELECT {', '.join(_fields(connector, object_type))} FROM {object_type} "
                f"WHERE {_where(object_type, since, skip)}", True)
               for object_type in mapping.PERSON_OBJECTS]
    # both first pages in one Composite call (composite.py); a failed one runs alone
    pages = paged_together(connector, "people", queries)
    for object_type, object_pages in zip(mapping.PERSON_OBJECTS, pages, strict=True):
        for records in _explained(connector, object_type, object_pages):
            people = []
            for record in records:
                if record.get("IsDeleted") or record.get("IsConverted"):
                    succession = mapping.to_succession(connector.name, object_type, record)
                    if succession is not None:
                        followed.append(succession)
                else:
                    people.append(mapping.to_person(connector.name, object_type, record,
                                                    writeback, mapped))
            if people:
                yield people
    connector.met_successions = {since: followed}  # only this pull's, for its successions()


def _explained(connector: PeopleReads, object_type: str,
               pages: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """The pages; a failed query is explained by the describe when a mapped field is
    what it lacks (the describe is spent only then)."""
    try:
        yield from pages
    except ConnectorError:
        connector._check_writeback(object_type)
        mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
        problems = connector._missing_person_fields(object_type, mapped)
        if problems:
            raise ConnectorError("; ".join(problems)) from None
        raise


def newest_stamp(connector: PeopleReads, objects: Sequence[str] = mapping.PERSON_OBJECTS,
                 *, include_deleted: bool = True) -> datetime | None:
    """The newest SystemModstamp of any record of `objects` (Lead and Contact: one query
    each, both in one Composite call; deleted records count unless `include_deleted` is
    False)."""
    found: list[datetime] = []
    queries = [(f"SELECT SystemModstamp FROM {object_type} ORDER BY SystemModstamp DESC "
                "LIMIT 1", include_deleted) for object_type in objects]
    for pages in paged_together(connector, "echo", queries):
        for page in pages:
            found.extend(stamp for stamp in (_stamp(r.get("SystemModstamp"))
                                             for r in page) if stamp is not None)
    return max(found, default=None)


def sweep_page(connector: PeopleReads, position: str | None
               ) -> tuple[list[Person], str | None]:
    """One query: live Leads, then Contacts, in id order from `position`
    ("<object>:<last id>"), and where the next page starts (None: the listing is done)."""
    object_type, _, last = (position or "Lead:").partition(":")
    if object_type not in mapping.PERSON_OBJECTS:
        object_type, last = "Lead", ""
    writeback = connector.settings.writeback_fields
    mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
    fields = ", ".join(mapping.person_fields(object_type, writeback, list(mapped.values())))
    conditions = ["IsConverted = false"] if object_type == "Lead" else []
    if last:
        conditions.append(f"Id > {soql.quote(last)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = f"SELECT {fields} FROM {object_type}{where} ORDER BY Id LIMIT {SWEEP_PAGE}"
    records = query_page(connector._call("sweep", lambda sf: sf.query(query)), "sweep")["records"]
    people = [mapping.to_person(connector.name, object_type, r, writeback, mapped)
              for r in records]
    if len(records) == SWEEP_PAGE:
        return people, f"{object_type}:{records[-1]['Id']}"
    later = mapping.PERSON_OBJECTS.index(object_type) + 1
    return people, (f"{mapping.PERSON_OBJECTS[later]}:"
                    if later < len(mapping.PERSON_OBJECTS) else None)
