"""State routing needs between runs: rotation positions, today's assignments per rep, who
owns which account, and the assignments themselves (for speed to lead and the report)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, func, select, update

from syncer.store import tables as t
from syncer.store.repository import Store

POSITION_PREFIX = "routing.rr."


def positions(store: Store, teams: Iterable[str]) -> dict[str, int]:
    """Each team's stored rotation position (0 for a team never rotated)."""
    return {team: store.counter(POSITION_PREFIX + team) for team in teams}


def save_positions(store: Store, connection: Connection, values: Mapping[str, int]) -> None:
    for team, value in values.items():
        store.set_counter(connection, POSITION_PREFIX + team, value)


def assigned_on(store: Store, day_start: datetime) -> dict[str, int]:
    """Rep email -> people assigned to them on the UTC day starting at `day_start`."""
    query = (select(t.assignments.c.owner_email, func.count())
             .where(t.assignments.c.assigned_at >= day_start,
                    t.assignments.c.assigned_at < day_start + timedelta(days=1))
             .group_by(t.assignments.c.owner_email))
    with store.engine.connect() as connection:
        return {email: int(count) for email, count in connection.execute(query)}


def account_owners(store: Store, owner_of: Callable[[str, Mapping[str, Any]], str | None],
                   keys_of: Callable[[Mapping[str, Any], str], Sequence[str]]
                   ) -> dict[str, str]:
    """Account key -> the rep who owns most records under it.

    `owner_of(connector, crm_values)` gives a record's active human owner (or None);
    `keys_of(fields, person_key)` gives the record's account keys (domain, company). Ties go
    to the alphabetically first rep so the index is deterministic.
    """
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    query = select(t.records.c.connector, t.records.c.person_key, t.records.c.fields,
                   t.records.c.crm_values)
    with store.engine.connect() as connection:
        for row in connection.execution_options(yield_per=2000).execute(query):
            owner = owner_of(row.connector, row.crm_values)
            if owner is None:
                continue
            for key in keys_of(row.fields, row.person_key):
                votes[key][owner] += 1
    return {key: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            for key, counter in votes.items()}


def save_assignments(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection.execute(t.assignments.insert(), list(rows))


def mark_owner_written(connection: Connection, person_keys: Iterable[str],
                       at: datetime) -> None:
    """The first time an assigned owner reaches a CRM ends that person's speed to lead."""
    keys = sorted(set(person_keys))
    for start in range(0, len(keys), 500):
        connection.execute(update(t.assignments).where(
            t.assignments.c.person_key.in_(keys[start:start + 500]),
            t.assignments.c.owner_written_at.is_(None)).values(owner_written_at=at))


def assignment_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        return [_aware(dict(row._mapping)) for row in connection.execute(
            select(t.assignments).order_by(t.assignments.c.id))]


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("qualified_at", "assigned_at", "owner_written_at"):
        value = row.get(key)
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=timezone.utc)
    return row
