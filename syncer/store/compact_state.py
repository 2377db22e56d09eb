"""Schema 16: the non-audit tables made compact on SQLite, every value read back the same.

After schema 9 compacted the audit, a 100,000-person SQLite state still held about 1 GB
in four tables (bench/RESULTS.md, "State size"): decisions (the named scores' ledgers as
JSON text), written (its text key stored twice, in the table and its primary-key index),
records (fields and CRM values as JSON text) and activities. Schema 16 keeps on SQLite:

- the JSON columns packed (syncer/store/compact_json.py: deflated with a preset dictionary);
- the times as integer microseconds (syncer/store/column_types.py MicroTime);
- `written` as a WITHOUT ROWID table: the rows live in their primary-key b-tree, so the
  (connector, record_id, field) key is stored once instead of twice.

A SQLite state is converted by rebuilding each table: renamed aside, created anew from
tables.py, its rows copied through the old column types (so the code sees the same values)
and the old table dropped. PostgreSQL keeps its types (JSON, timestamptz and a heap with
its primary-key index are what it has anyway): the step does nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    MetaData,
    Table,
    inspect,
    select,
    text,
    tuple_,
)

from syncer.store import tables
from syncer.store.column_types import MicroTime
from syncer.store.compact_json import PackedJSON

#: the schema version that packs these tables
PACKED = 16
#: the tables schema 16 rebuilds on SQLite
PACKED_TABLES = (tables.records, tables.activities, tables.decisions, tables.written)
_BATCH = 2_000
_ASIDE = "_before16"


def pack_tables(connection: Connection) -> None:
    """Schema 16 (see the module doc): rebuild each table on SQLite; nothing on PostgreSQL."""
    if connection.dialect.name != "sqlite":
        return
    for table in PACKED_TABLES:
        _rebuild(connection, table)


def _legacy(table: Table, name: str) -> Table:
    """`table` as stored before schema 16 (JSON text, text times), under `name`."""
    columns = []
    for column in table.columns:
        kind = column.type
        if isinstance(kind, PackedJSON):
            kind = JSON()
        elif isinstance(kind, MicroTime):
            kind = DateTime(timezone=True)
        default = column.server_default
        columns.append(Column(column.name, kind, primary_key=column.primary_key,
                              nullable=column.nullable,
                              server_default=getattr(default, "arg", None)))
    return Table(name, MetaData(), *columns)


def _rebuild(connection: Connection, table: Table) -> None:
    """Rename aside, create from tables.py, copy every row through the old types, drop."""
    aside = table.name + _ASIDE
    inspector = inspect(connection)
    present = {c["name"] for c in inspector.get_columns(table.name)}
    for index in inspector.get_indexes(table.name):
        connection.execute(text(f'DROP INDEX IF EXISTS "{index["name"]}"'))
    connection.execute(text(f'ALTER TABLE "{table.name}" RENAME TO "{aside}"'))
    table.create(connection)
    old = _legacy(table, aside)
    names = [c.name for c in table.columns if c.name in present]
    key = [old.c[c.name] for c in table.primary_key.columns]
    last: tuple[object, ...] | None = None
    while True:
        query = select(*(old.c[n] for n in names)).order_by(*key).limit(_BATCH)
        if last is not None:
            query = query.where(_after(key, last))
        batch = connection.execute(query).all()
        if not batch:
            break
        connection.execute(table.insert(), [dict(zip(names, row, strict=True))
                                            for row in batch])
        row = batch[-1]._mapping
        last = tuple(row[c.name] for c in key)
    connection.execute(text(f'DROP TABLE "{aside}"'))


def _after(key: Sequence[ColumnElement[object]], last: tuple[object, ...]
           ) -> ColumnElement[bool]:
    """Rows whose primary key sorts after `last` (keyset pagination over a composite key)."""
    return tuple_(*key) > tuple_(*last)
