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

Its activities resume the same way (schema 21), once the people are read:

- `activities_since`: the start of the window the activities pull reads (kept, so a
  restart reads the same window, whatever its own clock says);
- `activities_position`: the connector's place in its activity listing after the last
  committed activities page (None: from the start of the window);
- `activities_done`: every activity of the window is stored, and the activities cursor
  set in the same transaction, so a restart reads only what came since (an incremental
  activities pull), never the full sync's pages again;
- `activity_pages`, `activities`: what the activities pull committed.

Its deciding resumes too (schema 23, table `full_decides`): once every record is read, a
full sync decides everyone in person-key order. After each chunk whose writes are all on
their way (their intents committed), the key of its last person is saved, one row per
connector of the run. A run killed while deciding is carried on by the next one after that
key, provided the next one decides on the same day under the same model version (a score
decays daily; a new model decides everyone again).

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
    inspect,
    select,
    text,
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
    # schema 21: the activities of the full sync (nullable: added to existing tables)
    Column("activities_since", DateTime(timezone=True)),
    Column("activities_position", String(2000)),
    Column("activities_done", Boolean),
    Column("activity_pages", Integer),
    Column("activities", Integer),
)
#: schema 23: how far an unfinished full sync's deciding got (one row per connector of
#: the run, all alike); gone with its full pull's row
full_decides = Table(
    "full_decides", metadata,
    Column("connector", String(40), primary_key=True),
    #: every person up to this key (in key order) is decided and their writes are sent
    Column("after_key", String(200), nullable=False),
    #: the day (date ordinal of the run's time) and model version it was decided on
    Column("decided_on", Integer, nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("people", Integer, nullable=False),
    Column("run_id", String(40), nullable=False),
)
#: schema 23: routing's account index (account key -> owner) as the deciding had it at the
#: mark: the one it began from and the entries it gained, which a resumed run starts from
full_decide_accounts = Table(
    "full_decide_accounts", metadata,
    Column("account", String(400), primary_key=True),
    Column("owner", String(320), nullable=False),
)
ACTIVITY_COLUMNS = ("activities_since", "activities_position", "activities_done",
                    "activity_pages", "activities")


@dataclass(frozen=True)
class FullPullMark:
    """One connector's unfinished full sync."""

    started_at: datetime
    position: str | None = None
    pulled: bool = False
    newest: datetime | None = None
    pages: int = 0
    records: int = 0
    activities_since: datetime | None = None
    activities_position: str | None = None
    activities_done: bool = False
    activity_pages: int = 0
    activities: int = 0

    def after_page(self, position: str | None, newest: datetime | None,
                   records: int) -> FullPullMark:
        """The mark once one more page is committed (`position` None: it was the last)."""
        return replace(self, position=position, pulled=position is None, newest=newest,
                       pages=self.pages + 1, records=self.records + records)

    def after_activities(self, position: str | None, activities: int) -> FullPullMark:
        """The mark once one more activities page is committed (`position` None: it was
        the last, and the activities are done)."""
        return replace(self, activities_position=position, activities_done=position is None,
                       activity_pages=self.activity_pages + 1,
                       activities=self.activities + activities)


def mark(connection: Connection, connector: str) -> FullPullMark | None:
    """The connector's unfinished full sync, None when there is none."""
    row = connection.execute(
        select(full_pulls).where(full_pulls.c.connector == connector)).first()
    if row is None:
        return None
    started = utc_or_none(row.started_at)
    assert started is not None  # a NOT NULL column
    return FullPullMark(started, row.position, bool(row.pulled), utc_or_none(row.newest),
                        int(row.pages), int(row.records), utc_or_none(row.activities_since),
                        row.activities_position, bool(row.activities_done),
                        int(row.activity_pages or 0), int(row.activities or 0))


def save(connection: Connection, connector: str, value: FullPullMark) -> None:
    """Replace the connector's mark, in the transaction that stores the page it follows."""
    connection.execute(delete(full_pulls).where(full_pulls.c.connector == connector))
    connection.execute(full_pulls.insert(), [{
        "connector": connector, "position": value.position, "pulled": value.pulled,
        "newest": value.newest, "pages": value.pages, "records": value.records,
        "started_at": value.started_at, "activities_since": value.activities_since,
        "activities_position": value.activities_position,
        "activities_done": value.activities_done, "activity_pages": value.activity_pages,
        "activities": value.activities}])


@dataclass(frozen=True)
class DecidedMark:
    """How far an unfinished full sync's deciding got: everyone up to `after_key`."""

    after_key: str
    decided_on: int
    model_version: str
    people: int
    run_id: str


def unfinished(connection: Connection, connectors: Sequence[str]) -> bool:
    """Whether every one of these connectors has an unfinished full sync."""
    names = sorted(set(connectors))
    found = set(connection.execute(select(full_pulls.c.connector).where(
        full_pulls.c.connector.in_(names))).scalars())
    return bool(names) and found == set(names)


def decided(connection: Connection, connectors: Sequence[str]) -> DecidedMark | None:
    """Where the deciding of these connectors' full sync stands: None unless every one of
    them has the same deciding mark (a run of other connectors decided other people)."""
    names = sorted(set(connectors))
    rows = connection.execute(select(full_decides).where(
        full_decides.c.connector.in_(names))).all()
    marks = {DecidedMark(str(r.after_key), int(r.decided_on), str(r.model_version),
                         int(r.people), str(r.run_id)) for r in rows}
    if len(rows) != len(names) or len(marks) != 1:
        return None
    return marks.pop()


def decided_accounts(connection: Connection) -> dict[str, str]:
    """The account index entries gained while deciding up to the mark."""
    return {str(account): str(owner) for account, owner in connection.execute(
        select(full_decide_accounts.c.account, full_decide_accounts.c.owner))}


def save_decided(connection: Connection, connectors: Sequence[str], value: DecidedMark,
                 accounts: dict[str, str]) -> None:
    """Replace the deciding mark of these connectors and add the account index entries
    gained up to it, none of them stored yet (in one transaction)."""
    names = sorted(set(connectors))
    if accounts:
        connection.execute(full_decide_accounts.insert(), [
            {"account": account, "owner": owner} for account, owner in accounts.items()])
    connection.execute(delete(full_decides).where(full_decides.c.connector.in_(names)))
    connection.execute(full_decides.insert(), [{
        "connector": name, "after_key": value.after_key, "decided_on": value.decided_on,
        "model_version": value.model_version, "people": value.people,
        "run_id": value.run_id} for name in names])


def finish(connection: Connection, connectors: Sequence[str]) -> None:
    """The full syncs of these connectors are done (decided and written): forget them."""
    for table in (full_pulls, full_decides):
        connection.execute(delete(table).where(table.c.connector.in_(list(connectors))))
    forget_decided_accounts(connection)


def forget_decided_accounts(connection: Connection) -> None:
    """A full sync's deciding is over or starts again: its account index entries go."""
    connection.execute(delete(full_decide_accounts))


def create_schema(connection: Connection) -> None:
    """Schema 19: the table of unfinished full pulls."""
    full_pulls.create(connection, checkfirst=True)


def create_decided_schema(connection: Connection) -> None:
    """Schema 23: the table of how far unfinished full syncs' deciding got."""
    full_decides.create(connection, checkfirst=True)
    full_decide_accounts.create(connection, checkfirst=True)


def add_activity_columns(connection: Connection) -> None:
    """Schema 21: where the activities of an unfinished full sync stand (nullable columns,
    so a schema-19 table takes them as they are: no full sync's activities begun)."""
    present = {c["name"] for c in inspect(connection).get_columns(full_pulls.name)}
    for name in ACTIVITY_COLUMNS:
        if name not in present:
            kind = full_pulls.c[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {full_pulls.name} ADD COLUMN {name} {kind}"))
