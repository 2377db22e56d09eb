"""What syncer last wrote to each CRM field, and which values a person now holds by hand.

`origin` "syncer" marks our own writes; "manual" marks a value a person set in the CRM
after our write that the config says to respect, so later runs leave it alone quietly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, select

from syncer.store import tables as t
from syncer.store.repository import Store

WrittenState = dict[tuple[str, str], tuple[str | None, str]]


def written_state(store: Store, connector: str, record_ids: Sequence[str]) -> WrittenState:
    """(record_id, field) -> (last value, origin) for the given records."""
    found: WrittenState = {}
    ids = sorted(set(record_ids))
    with store.engine.connect() as connection:
        for start in range(0, len(ids), 500):
            for row in connection.execute(select(
                    t.written.c.record_id, t.written.c.field, t.written.c.value,
                    t.written.c.origin).where(
                    t.written.c.connector == connector,
                    t.written.c.record_id.in_(ids[start:start + 500]))):
                found[(row.record_id, row.field)] = (row.value, row.origin)
    return found


class HeldValue(TypedDict):
    """A value a person set by hand in the CRM that syncer leaves alone."""

    connector: str
    record_id: str
    field: str
    value: str | None


def hold_manual(store: Store, connection: Connection, rows: Sequence[HeldValue],
                at: datetime, run_id: str) -> None:
    """Remember values people set by hand that syncer now respects."""
    store.upsert_written(connection, [
        {"connector": row["connector"], "record_id": row["record_id"], "field": row["field"],
         "value": row["value"], "written_at": at, "run_id": run_id, "origin": "manual"}
        for row in rows])
