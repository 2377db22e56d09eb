"""The stretches of CRM time that hold only syncer's own writes (echo windows).

A run that writes to a CRM bumps the modification stamp of every record it writes; without
these windows the next incremental pull would read all of them back (the echo of our own
writes), run after run while the cursor's overlap covers them. A window is (start, end] in
the CRM's own clock: `start` the newest stamp the CRM held just before the run's first
write, `end` the newest just after its last. Pulls leave windows out of their time range,
so the overlap that guards against search-index lag is spent on others' changes only. An
edit someone else makes while our writes land is stamped inside a window too: the
reconciliation sweep (syncer/run/sweep.py) finds it, or their next edit does.

Each stream a pull reads by modification time has windows of its own: people (Leads,
Contacts) in `echo_windows`, accounts (HubSpot companies, Salesforce Accounts, schema 20)
in `account_echo_windows`. They are kept apart because each object has its own stamps: a
company someone else edited while we wrote contacts is no echo of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    String,
    Table,
    delete,
    select,
    update,
)

from syncer.store import tables as t
from syncer.store.runs import utc_or_none
from syncer.store.tables import metadata


def _windows_table(name: str) -> Table:
    """A stream's echo windows: one per connector and run, found by their end."""
    return Table(
        name, metadata,
        Column("connector", String(40), primary_key=True),
        Column("run_id", String(40), primary_key=True),
        Column("start_at", DateTime(timezone=True), nullable=False),
        Column("end_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{name}_end", "connector", "end_at"),
    )


echo_windows = _windows_table("echo_windows")
account_echo_windows = _windows_table("account_echo_windows")

#: the people stream (Leads and Contacts, HubSpot contacts)
PEOPLE = "people"
#: the accounts stream (Salesforce Accounts, HubSpot companies)
ACCOUNTS = "accounts"
_TABLES = {PEOPLE: echo_windows, ACCOUNTS: account_echo_windows}


def create_account_windows(connection: Connection) -> None:
    """Schema 20: the echo windows of syncer's writes to accounts."""
    account_echo_windows.create(connection, checkfirst=True)

#: Windows are kept this long after their end (CRM time); a pull asks only for those
#: ending within its overlap, so a day is plenty for runs minutes or hours apart.
KEEP = timedelta(days=1)


@dataclass(frozen=True)
class EchoWindow:
    """Stamps in (start, end] were given to one run's writes (and, rarely, to an edit made
    by someone else during those writes)."""

    run_id: str
    start: datetime
    end: datetime

    def holds(self, stamp: datetime) -> bool:
        return self.start < stamp <= self.end


def record(connection: Connection, connector: str, window: EchoWindow,
           stream: str = PEOPLE) -> None:
    """Remember one run's window, and forget windows that ended long before it."""
    table = _TABLES[stream]
    connection.execute(delete(table).where(
        table.c.connector == connector,
        (table.c.end_at < window.end - KEEP) | (table.c.run_id == window.run_id)))
    connection.execute(table.insert(), [{
        "connector": connector, "run_id": window.run_id, "start_at": window.start,
        "end_at": window.end}])


def grow(connection: Connection, connector: str, end: datetime, new_end: datetime,
         stream: str = PEOPLE) -> None:
    """Move the end of the connector's windows ending at `end` to `new_end`."""
    table = _TABLES[stream]
    connection.execute(update(table).where(
        table.c.connector == connector, table.c.end_at == end
    ).values(end_at=new_end))


def windows(connection: Connection, connector: str, since: datetime | None = None,
            stream: str = PEOPLE) -> list[EchoWindow]:
    """This connector's windows ending at or after `since` (all when None), oldest first."""
    table = _TABLES[stream]
    query = select(table).where(table.c.connector == connector)
    if since is not None:
        query = query.where(table.c.end_at >= since)
    found = []
    for row in connection.execute(query.order_by(table.c.start_at)):
        start, end = utc_or_none(row.start_at), utc_or_none(row.end_at)
        if start is not None and end is not None:
            found.append(EchoWindow(row.run_id, start, end))
    return found


def merged(found: Sequence[EchoWindow], limit: int) -> list[EchoWindow]:
    """The newest `limit` windows, overlapping ones joined (a query can leave out only a
    few ranges; an older window dropped here only costs re-reading its echo)."""
    joined: list[EchoWindow] = []
    for window in sorted(found, key=lambda w: w.start):
        if joined and window.start <= joined[-1].end:
            last = joined.pop()
            window = EchoWindow(last.run_id, last.start, max(last.end, window.end))
        joined.append(window)
    return joined[-limit:] if limit > 0 else []


def known(connection: Connection, connector: str, record_ids: Sequence[str]) -> set[str]:
    """Which of these records the state holds (a successor met in a pull may be new)."""
    found: set[str] = set()
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), 500):
        found.update(connection.execute(select(t.records.c.record_id).where(
            t.records.c.connector == connector,
            t.records.c.record_id.in_(ids[start:start + 500]))).scalars())
    return found
