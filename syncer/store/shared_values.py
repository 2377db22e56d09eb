"""The base of shared fields: per person and shared field, the value all records agreed on
after the last sync (see syncer/run/field_policy.py for how it is used).

A missing row means "no base yet": the next sync settles the field as a first sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from syncer.domain.values import canonical
from syncer.store import tables as t
from syncer.store.repository import Store

_CHUNK = 500

#: person key -> {shared field name: base value}
Bases = dict[str, dict[str, str | None]]


def load(store: Store, person_keys: Iterable[str]) -> Bases:
    """The stored base of each person key; every key asked for is in the result (an empty
    mapping when the person has no base yet)."""
    keys = sorted(set(person_keys))
    found: Bases = {key: {} for key in keys}
    table = t.shared_values
    with store.engine.connect() as connection:
        for start in range(0, len(keys), _CHUNK):
            for row in connection.execute(
                    select(table.c.person_key, table.c.field, table.c.value)
                    .where(table.c.person_key.in_(keys[start:start + _CHUNK]))):
                found[row.person_key][row.field] = row.value
    return found


def rows(person_key: str, base: Mapping[str, str | None], at: datetime
         ) -> list[dict[str, object]]:
    """The rows `save` takes for one person's new base (e.g. `SharedWrites.base_after()`)."""
    return [{"person_key": person_key, "field": name, "value": value, "synced_at": at}
            for name, value in sorted(base.items())]


def save(store: Store, connection: Connection, new_rows: Sequence[Mapping[str, object]]) -> None:
    """Insert or replace base rows (person_key, field, value, synced_at) in the caller's
    transaction, so a base is stored together with the writes and audit rows it follows."""
    store._upsert(connection, t.shared_values, [dict(row) for row in new_rows],
                  ("person_key", "field"))


def carry(connection: Connection, from_key: str, to_key: str) -> None:
    """Two people turned out to be one (records merged, `from_key` goes away): move the
    base to `to_key`.

    A field only `from_key` has a base for moves over; where both have one and they agree,
    `to_key`'s stays. Where they disagree, neither is right for the merged person (each
    describes another set of records), so the field is left without a base: the next sync
    settles it as a first sync, by the records' own values and times.
    """
    if from_key == to_key:
        return
    table = t.shared_values
    moving = {row.field: row.value for row in connection.execute(
        select(table.c.field, table.c.value).where(table.c.person_key == from_key))}
    if not moving:
        return
    staying = {row.field: row.value for row in connection.execute(
        select(table.c.field, table.c.value).where(table.c.person_key == to_key))}
    conflicting = sorted(name for name, value in moving.items()
                         if name in staying and canonical(staying[name]) != canonical(value))
    moved = sorted(name for name in moving if name not in staying)
    if conflicting:
        connection.execute(delete(table).where(table.c.person_key == to_key,
                                               table.c.field.in_(conflicting)))
    if moved:
        connection.execute(update(table).where(table.c.person_key == from_key,
                                               table.c.field.in_(moved))
                           .values(person_key=to_key))
    connection.execute(delete(table).where(table.c.person_key == from_key))
