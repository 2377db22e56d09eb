"""A full pull of Leads, then Contacts, that another process can go on with after a page.

Each page comes with the position after it (opaque to syncer, kept in its state):

- `Lead` / `Contact`: that object from its start;
- `Lead:rest:<id>`: REST query pages in Id order, after that Id (a fresh query resumes it:
  query locators expire, Ids do not);
- `Lead:bulk:<job>:<locator>`: the next result set of a Bulk API 2.0 query job, which a
  killed run leaves open and complete (results stay readable for days); the job is kept out
  of the closing of left jobs (bulk.py) and closed once read to the end.

REST or Bulk is chosen per object by the first REST page's `totalSize`, as bulk.py does. A
Bulk job that is gone when the pull resumes (deleted, expired, or closed by a graceful
stop) means that object is read again from its start, with a warning: never a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import structlog

from connectors.salesforce import mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.answers import QueryPage, Row, query_page
from connectors.salesforce.bulk import BulkQueries
from syncer.domain.connector import ConnectorError, mapped_person_fields
from syncer.domain.types import Person

log = structlog.get_logger(__name__)

Positioned = Iterator[tuple[list[Person], str | None]]
#: REST-shaped records of one object to People
ToPeople = Callable[[list[Row]], list[Person]]


def full_pages(connector: BulkQueries, position: str | None) -> Positioned:
    """Every live Lead, then Contact, from `position`, each page with the position after."""
    object_type, mode, rest = _parse(position)
    job = rest.partition(":")[0] if mode == "bulk" else None
    connector._settle_left_jobs(keep=job)
    start = mapping.PERSON_OBJECTS.index(object_type)
    for index, current in enumerate(mapping.PERSON_OBJECTS[start:], start):
        following = mapping.PERSON_OBJECTS[index + 1] \
            if index + 1 < len(mapping.PERSON_OBJECTS) else None
        resume = (mode, rest) if current == object_type else ("", "")
        yield from _object_pages(connector, current, resume, following)


def _parse(position: str | None) -> tuple[str, str, str]:
    """(object, mode, rest) of a position; a position naming no person object is refused
    (a state written by another syncer version), rather than guessed at."""
    object_type, _, tail = (position or mapping.PERSON_OBJECTS[0]).partition(":")
    mode, _, rest = tail.partition(":")
    if object_type not in mapping.PERSON_OBJECTS or mode not in ("", "rest", "bulk"):
        raise ConnectorError(f"full pull position {position!r} is not one this connector "
                             "gives; delete the connector's row of the state's full_pulls "
                             "table to start the full pull again")
    return object_type, mode, rest


def _object_pages(connector: BulkQueries, object_type: str,
                  resume: tuple[str, str], following: str | None) -> Positioned:
    writeback = connector.settings.writeback_fields
    mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, connector.settings)
    connector._check_writeback(object_type)
    problems = connector._missing_person_fields(object_type, mapped)
    if problems:
        raise ConnectorError("; ".join(problems))
    fields = ", ".join(mapping.person_fields(object_type, writeback, list(mapped.values())))
    where = ["IsConverted = false"] if object_type == "Lead" else []

    def people(records: list[Row]) -> list[Person]:
        return [mapping.to_person(connector.name, object_type, record, writeback, mapped)
                for record in records]

    mode, rest = resume
    if mode == "bulk":
        job, _, locator = rest.partition(":")
        if connector._job_state(job) == "JobComplete":
            yield from _bulk(connector, object_type, _query(fields, object_type, where),
                             people, following, job, locator)
            return
        connector._settle_left_jobs()  # whatever is left of it is closed
        log.warning("salesforce.full_pull_job_gone", connector=connector.name, job=job,
                    object=object_type, note="the object is read again from its start")
        mode, rest = "", ""
    if mode == "rest":
        where = [*where, f"Id > {soql.quote(rest)}"]
    ordered = _query(fields, object_type, where) + " ORDER BY Id"
    headers = connector._query_headers
    first = query_page(connector._call("people", lambda sf: sf.query(ordered,
                                                                     headers=headers)),
                       "people")
    if mode == "" and first["totalSize"] > connector.bulk_threshold:
        log.info("salesforce.bulk_query", connector=connector.name, object=object_type,
                 records=first["totalSize"])
        yield from _bulk(connector, object_type, _query(fields, object_type, where), people,
                         following, None, "")
        return
    yield from _rest(connector, object_type, ordered, first, people, following)


def _query(fields: str, object_type: str, where: list[str]) -> str:
    return f"SELECT {fields} FROM {object_type}" + (
        f" WHERE {' AND '.join(where)}" if where else "")


def _rest(connector: BulkQueries, object_type: str, query: str,
          first: QueryPage, people: ToPeople, following: str | None) -> Positioned:
    """REST pages in Id order; each page is handed on once the next is read, so the last
    one carries the next object's position."""
    held: list[Row] = []
    for records in connector._pages("people", query, first=first):
        if held:
            yield people(held), f"{object_type}:rest:{held[-1]['Id']!s}"
        held = records
    yield people(held), following  # the last page (maybe empty) ends the object


def _bulk(connector: BulkQueries, object_type: str, query: str, people: ToPeople,
          following: str | None, job: str | None, locator: str) -> Positioned:
    for records, job_id, after in connector._bulk_sets(object_type, query, job, locator):
        yield people(records), (f"{object_type}:bulk:{job_id}:{after}" if after
                                else following)
