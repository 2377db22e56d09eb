"""Pages of the audit log for the web admin: newest first, keyset-paginated by row id.

A page is "the `limit` newest rows matching the filter with an id below `before`", so
reading page 500 of a million rows costs what page 1 does (no OFFSET that walks every row
before it); ids are gap-free and only grow, so a page boundary never shifts while rows are
appended. bench/web_audit_bench.py times it on a million rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from syncer.store import tables as t
from syncer.store.audit import AuditFilter, AuditLog, row_dict


@dataclass(frozen=True)
class AuditPage:
    rows: list[dict[str, Any]]
    #: the `before` of the next (older) page; None on the last page
    next_before: int | None


def audit_page(log: AuditLog, where: AuditFilter, *, before: int | None = None,
               limit: int = 50) -> AuditPage:
    """The newest `limit` rows matching `where` with an id below `before` (None: from the
    newest row)."""
    with log.engine.connect() as connection:
        condition = log._condition(connection, where)
        query = select(t.audit).where(condition)
        if before is not None:
            query = query.where(t.audit.c.id < before)
        found = connection.execute(query.order_by(t.audit.c.id.desc()).limit(limit + 1)).all()
    rows = [row_dict(row) for row in found[:limit]]
    more = len(found) > limit
    return AuditPage(rows, int(rows[-1]["id"]) if more and rows else None)
