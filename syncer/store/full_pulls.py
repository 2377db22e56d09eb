"""Where each connector's full pull stands, so a killed full sync resumes after its last
committed page instead of reading every record again.

A full pull of a million records is hours of paging; a run killed half way used to start
over. Each page's records are stored in one transaction together with this mark (the
connector's opaque position after that page), so the state never holds a page whose mark
is older, nor a mark ahead of its page. One row per connector, present only while a full
sync is unfinished:

- `position`: the connector's place in its full listing after the last committed page
  (None with `pulled` set: the listing is read to the end).
- `pulled`: every record was read; the run that read them stopped before it had decided
  and written everyone, so the next run decides everyone without paging again.
- `newest`: the newest CRM modification time seen so far (the people cursor it leaves).
- `pages`, `records`: what the full pull committed, for logs and benchmarks.

Times: `started_at` is syncer's clock (the run that began the full pull); `newest` is the
CRM's clock, as the people cursor is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    delete,
    select,
)

from syncer.store.runs import utc_or_none
from syncer.store.tables import metadata

full_pulls = Table(
    "full_pulls", metadata,
    Column("connector", String(40), primary_key=True),
    Column("position", String(2000)),
    Column("pulled", Boolean, nullable=False, default=False),
    Column("newest", DateTime(timezone=True)),
    Column("pages", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class FullPullMark:
    """One connector's unfinished full sync."""

    started_at: datetime
    position: str | None = None
    pulled: bool = False
    newest: datetime | None = None
    pages: int = 0
    records: int = 0

    def after_page(self, position: str | None, newest: datetime | None,
                   records: int) -> FullPullMark:
        """The mark once one more page is committed (`position` None: it was the last)."""
        return replace(self, position=position, pulled=position is None, newest=newest,
                       pages=self.pages + 1, records=self.records + records)


def mark(connection: Connection, connector: str) -> FullPullMark | None:
    """The connector's unfinished full sync, None when there is none."""
    row = connection.execute(
        select(full_pulls).where(full_pulls.c.connector == connector)).first()
    if row is None:
        return None
    started = utc_or_none(row.started_at)
    assert started is not None  # a NOT NULL column
    return FullPullMark(started, row.position, bool(row.pulled), utc_or_none(row.newest),
                        int(row.pages), int(row.records))


def save(connection: Connection, connector: str, value: FullPullMark) -> None:
    """Replace the connector's mark, in the transaction that stores the page it follows."""
    connection.execute(delete(full_pulls).where(full_pulls.c.connector == connector))
    connection.execute(full_pulls.insert(), [{
        "connector": connector, "position": value.position, "pulled": value.pulled,
        "newest": value.newest, "pages": value.pages, "records": value.records,
        "started_at": value.started_at}])


def finish(connection: Connection, connectors: Sequence[str]) -> None:
    """The full syncs of these connectors are done (decided and written): forget them."""
    connection.execute(delete(full_pulls).where(full_pulls.c.connector.in_(list(connectors))))


def create_schema(connection: Connection) -> None:
    """Schema 19: the table of unfinished full pulls."""
    full_pulls.create(connection, checkfirst=True)
