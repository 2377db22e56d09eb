"""Dead letters: writes a CRM refused for good, parked with their error until replayed.

A record lands here after its batch failed for it and a retry on its own failed too. One
open letter per (connector, record): a later failure of the same record updates it (more
attempts, latest error and values) instead of piling up rows. A later successful write of
the record, by a sync or a replay, resolves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypedDict

from sqlalchemy import Connection, func, select, update

from syncer.store import tables as t
from syncer.store.repository import Store


@dataclass(frozen=True)
class DeadLetter:
    id: int
    connector: str
    record_id: str
    object_type: str
    person_key: str
    fields: dict[str, str | None]
    error_code: str | None
    message: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class FailedWrite(TypedDict):
    """A record's write that failed for good in a run: what a letter is opened with."""

    connector: str
    record_id: str
    object_type: str
    person_key: str
    fields: dict[str, str | None]
    error_code: str | None
    message: str | None


def park(connection: Connection, letters: Sequence[FailedWrite], at: datetime,
         run_id: str) -> None:
    """Open a letter per failed record, or update the record's open one."""
    for letter in letters:
        existing = connection.execute(select(t.dead_letters.c.id, t.dead_letters.c.attempts)
                                      .where(t.dead_letters.c.connector == letter["connector"],
                                             t.dead_letters.c.record_id == letter["record_id"],
                                             t.dead_letters.c.resolved_at.is_(None))).first()
        if existing is None:
            connection.execute(t.dead_letters.insert(), [{
                **letter, "attempts": 1, "first_failed_at": at, "last_failed_at": at,
                "resolved_at": None, "run_id": run_id}])
        else:
            connection.execute(update(t.dead_letters).where(t.dead_letters.c.id == existing.id)
                               .values(fields=letter["fields"], error_code=letter["error_code"],
                                       message=letter["message"],
                                       attempts=existing.attempts + 1, last_failed_at=at,
                                       run_id=run_id))


def resolve(connection: Connection, connector: str, record_ids: Iterable[str],
            at: datetime) -> None:
    """Close the open letters of records that were just written successfully."""
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), 500):
        connection.execute(update(t.dead_letters).where(
            t.dead_letters.c.connector == connector,
            t.dead_letters.c.record_id.in_(ids[start:start + 500]),
            t.dead_letters.c.resolved_at.is_(None)).values(resolved_at=at))


def open_letters(store: Store, connector: str | None = None) -> list[DeadLetter]:
    query = select(t.dead_letters).where(t.dead_letters.c.resolved_at.is_(None)) \
        .order_by(t.dead_letters.c.id)
    if connector is not None:
        query = query.where(t.dead_letters.c.connector == connector)
    with store.engine.connect() as connection:
        return [DeadLetter(
            id=row.id, connector=row.connector, record_id=row.record_id,
            object_type=row.object_type, person_key=row.person_key, fields=dict(row.fields),
            error_code=row.error_code, message=row.message, attempts=row.attempts,
            first_failed_at=_aware(row.first_failed_at),
            last_failed_at=_aware(row.last_failed_at)) for row in connection.execute(query)]


def open_count(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(t.dead_letters).where(
            t.dead_letters.c.resolved_at.is_(None))).scalar() or 0)
