"""People whose records or activities were stored but who are not decided yet.

A pull commits each page (and moves its cursor past it) before the people it touched are
decided, so a run killed or failed in between would leave them undecided until a run
decides everyone (the day's first): a pricing-page visit or a title change pulled by the
killed run would wait up to a day to reach the CRM. So the pull notes the person keys a
page touched in `undecided`, in the page's own transaction, and a run that decided them
(its writes sent) forgets them at its end. The next run decides the people still noted,
whatever its own pull brings (syncer/run/chunk.py `keys_to_qualify`).

Companies likewise (with accounts on): the account records an accounts pull stored with a
change are noted in `undecided_accounts` (with the domain of one that is new or moved, whose
people are placed again), and the run that decided their companies forgets them
(syncer/run/accounts.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    String,
    Table,
    delete,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from syncer.store import tables as t
from syncer.store.tables import metadata

#: How many keys one statement names (SQLite's bound-variable cap).
_KEYS_PER_STATEMENT = 5_000

#: Schema 25: one row per person noted and not yet decided; `since`: when first noted.
undecided = Table(
    "undecided", metadata,
    Column("person_key", String(320), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)


#: Schema 25: account records stored with a change and whose company is not decided yet;
#: `moved_domain`: the domain of one new or moved (its people are placed again), else None.
undecided_accounts = Table(
    "undecided_accounts", metadata,
    Column("connector", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("moved_domain", String(255)),
    Column("since", DateTime(timezone=True), nullable=False),
)


def create_schema(connection: Connection) -> None:
    """Schema 25: the tables (idempotent)."""
    undecided.create(connection, checkfirst=True)
    undecided_accounts.create(connection, checkfirst=True)


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


def forget_people_of(connection: Connection, connectors: Sequence[str]) -> None:
    """Everyone with a record in these connectors is decided and their writes sent (a run
    of these connectors that decided everyone of them), and so is anyone without a record
    left (nothing to decide). A person only in another connector stays noted for a run of
    that one: the daemon runs each connector on its own."""
    r = t.records.c
    # per noted person, a look-up in ix_records_person_key: the cost of the notes, not of
    # the records
    record = exists().where(r.person_key == undecided.c.person_key)
    connection.execute(delete(undecided).where(
        record.where(r.connector.in_(list(connectors))) | ~record))


def note_accounts(connection: Connection, refs: Mapping[tuple[str, str], str | None],
                  at: datetime) -> None:
    """Note these account records, (connector, record id) -> the domain when the record
    is new or moved, as waiting for their company's decision. A record noted already
    keeps its row, gaining a moved domain it lacked."""
    if not refs:
        return
    rows = [{"connector": connector, "record_id": record_id, "moved_domain": domain,
             "since": at} for (connector, record_id), domain in sorted(refs.items())]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(undecided_accounts)
    connection.execute(insert.on_conflict_do_update(
        index_elements=["connector", "record_id"],
        set_={"moved_domain": func.coalesce(insert.excluded.moved_domain,
                                            undecided_accounts.c.moved_domain)}), rows)


def accounts(connection: Connection) -> dict[tuple[str, str], str | None]:
    """Every account record noted: (connector, record id) -> its moved domain or None."""
    c = undecided_accounts.c
    return {(str(row.connector), str(row.record_id)): row.moved_domain
            for row in connection.execute(select(c.connector, c.record_id, c.moved_domain))}


def forget_accounts(connection: Connection, refs: Iterable[tuple[str, str]]) -> None:
    """These account records' companies are decided and their writes sent."""
    by_connector: dict[str, list[str]] = {}
    for connector, record_id in refs:
        by_connector.setdefault(connector, []).append(record_id)
    c = undecided_accounts.c
    for connector, ids in sorted(by_connector.items()):
        for start in range(0, len(ids), _KEYS_PER_STATEMENT):
            connection.execute(delete(undecided_accounts).where(
                c.connector == connector,
                c.record_id.in_(ids[start:start + _KEYS_PER_STATEMENT])))
