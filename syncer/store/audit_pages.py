"""Pages of the audit log for the web admin: newest first, keyset-paginated by row id.

A page is "the `limit` newest rows matching the filter with an id below `before`", so
reading page 500 of a million rows costs what page 1 does (no OFFSET that walks every row
before it); ids are gap-free and only grow, so a page boundary never shifts while rows are
appended.

A filter on indexed columns (person, record, run, time) finds its rows through an index.
One on the others alone (field, connector, outcome) walks the ids down until it has a page,
which for a value that is rare or absent would read the whole log; so such a page reads
at most `SCAN_WINDOW` ids and, short of a full page, says where it stopped
(`searched_down_to`) and carries on from there on the next page. Every page therefore
costs a bounded read, whatever the filter. bench/web_audit_bench.py times it on a million
rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from syncer.store import tables as t
from syncer.store.audit import AuditFilter, AuditLog, RowReader
from syncer.store.audit_chain import id_of
from syncer.store.audit_storage import AuditRecord

#: ids one page may read when no index narrows the filter
SCAN_WINDOW = 100_000


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRecord]
    #: the `before` of the next (older) page; None on the last page
    next_before: int | None
    #: set when the page stopped at the scan window short of `limit` rows: the lowest id
    #: it read (older rows may still match: the next page reads on from there)
    searched_down_to: int | None = None


def indexed(where: AuditFilter) -> bool:
    """True when an index narrows the filter (no need to bound the scan)."""
    return any(value is not None for value in (where.person, where.person_key, where.record_id,
                                               where.run_id, where.since, where.until))


def audit_page(log: AuditLog, where: AuditFilter, *, before: int | None = None,
               limit: int = 50, window: int = SCAN_WINDOW) -> AuditPage:
    """The newest `limit` rows matching `where` with an id below `before` (None: from the
    newest row); see the module docstring for the scan window."""
    with log.engine.connect() as connection:
        condition = log.condition(connection, where)
        query = select(t.audit).where(condition)
        floor = None
        if before is not None:
            query = query.where(t.audit.c.id < before)
        if not indexed(where):
            top = before if before is not None else log.head().last_id + 1
            floor = top - window
            query = query.where(t.audit.c.id >= floor)
        found = connection.execute(query.order_by(t.audit.c.id.desc()).limit(limit + 1)).all()
        rows = RowReader(connection, log.anchor(connection)).read(found[:limit])
    if len(found) > limit:
        return AuditPage(rows, id_of(rows[-1]))
    if floor is not None and floor > 1:
        return AuditPage(rows, floor, searched_down_to=floor)
    return AuditPage(rows, None)
