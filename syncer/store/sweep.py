"""Where each connector's reconciliation sweep stands, so a sweep spread over many runs
resumes where the last one stopped.

A sweep pass reads every record, a page per call, and stores those whose content differs
from the state's (syncer/run/sweep.py). One row per connector:
`position` is the connector's opaque place in its listing (None: no pass under way),
`started_at` when the pass under way began, `done_at` when the last pass finished (a full
pull counts as one); times are syncer's clock, which decides when a sweep is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, DateTime, String, Table, delete, select

from syncer.store.runs import utc_or_none
from syncer.store.tables import metadata

sweeps = Table(
    "sweeps", metadata,
    Column("connector", String(40), primary_key=True),
    Column("position", String(400)),
    Column("started_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class SweepMark:
    """One connector's sweep: under way from `position` (None: between passes)."""

    position: str | None = None
    started_at: datetime | None = None
    done_at: datetime | None = None

    @property
    def under_way(self) -> bool:
        return self.started_at is not None


def mark(connection: Connection, connector: str) -> SweepMark:
    row = connection.execute(select(sweeps).where(sweeps.c.connector == connector)).first()
    if row is None:
        return SweepMark()
    return SweepMark(row.position, utc_or_none(row.started_at), utc_or_none(row.done_at))


def save(connection: Connection, connector: str, value: SweepMark) -> None:
    """Replace the connector's mark (in the caller's transaction, with what it stored)."""
    connection.execute(delete(sweeps).where(sweeps.c.connector == connector))
    connection.execute(sweeps.insert(), [{
        "connector": connector, "position": value.position, "started_at": value.started_at,
        "done_at": value.done_at}])

