"""People whose records or activities were stored but who are not decided yet.

A pull commits each page (and moves its cursor past it) before the people it touched are
decided, so a run killed or failed in between would leave them undecided until a run
decides everyone (the day's first): a pricing-page visit or a title change pulled by the
killed run would wait up to a day to reach the CRM. So the pull notes the person keys a
page touched in `undecided`, in the page's own transaction, and a run that decided them
(its writes sent) forgets them at its end. The next run decides the people still noted,
whatever its own pull brings (syncer/run/chunk.py `keys_to_qualify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column, Connection, DateTime, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from syncer.store.tables import metadata

#: How many keys one statement names (SQLite's bound-variable cap).
_KEYS_PER_STATEMENT = 5_000

#: Schema 25: one row per person noted and not yet decided; `since`: when first noted.
undecided = Table(
    "undecided", metadata,
    Column("person_key", String(320), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)


def create_schema(connection: Connection) -> None:
    """Schema 25: the table (idempotent)."""
    undecided.create(connection, checkfirst=True)


def note(connection: Connection, keys: Iterable[str], at: datetime) -> None:
    """Note these people as to be decided (a key noted already keeps its first time)."""
    rows = [{"person_key": key, "since": at} for key in sorted(set(keys))]
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(undecided).on_conflict_do_nothing(), rows)


def keys(connection: Connection) -> list[str]:
    """Every person noted and not decided since, in key order."""
    return [str(key) for key in connection.execute(
        select(undecided.c.person_key).order_by(undecided.c.person_key)).scalars()]


def forget(connection: Connection, decided: Sequence[str]) -> None:
    """These people are decided and their writes sent."""
    for start in range(0, len(decided), _KEYS_PER_STATEMENT):
        connection.execute(delete(undecided).where(
            undecided.c.person_key.in_(list(decided[start:start + _KEYS_PER_STATEMENT]))))


def forget_all(connection: Connection) -> None:
    """Everyone is decided and their writes sent (a run that decided everyone)."""
    connection.execute(delete(undecided))
