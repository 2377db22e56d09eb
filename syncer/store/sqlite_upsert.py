"""Upserts (and batched updates) of many rows on SQLite as one executemany of plain tuples.

A full sync upserts every record, activity, decision and written value it touches. Through
SQLAlchemy's `connection.execute(statement, rows)` each row's parameters go through its
per-row processing (a dict per row, each column's bind processor looked up and called by
name), which cost more than SQLite's own insert. Here the statement is compiled once per
(table, columns), the column types' bind processors are taken once, and each row becomes a
tuple in the compiled parameter order: the same SQL and the same stored bytes (the
processors are the column types' own), without the per-row machinery.

PostgreSQL keeps SQLAlchemy's executemany (psycopg batches it into few round trips).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, LargeBinary, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator, TypeEngine

Processor = Callable[[object], object] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: each bind parameter's column name and its type's bind processor, in SQL order
    params: tuple[tuple[str, Processor], ...]


class SqliteUpserts:
    """Compiled upsert statements by (table, conflict keys, columns given)."""

    def __init__(self) -> None:
        self._compiled: dict[Hashable, _Compiled | None] = {}

    def execute(self, connection: Connection, key: Hashable, statement: UpdateBase,
                rows: Sequence[Mapping[str, object]]) -> None:
        """Run `statement` (an UPDATE or DELETE with named bind parameters, the same for
        every call with this `key`) once per row, in one executemany of tuples."""
        if key not in self._compiled:
            compiled = statement.compile(dialect=connection.dialect)
            dialect = connection.dialect
            self._compiled[key] = _Compiled(str(compiled), tuple(
                (name, _processor(compiled.binds[name].type, dialect))
                for name in compiled.positiontup or []))
        found = self._compiled[key]
        assert found is not None  # only upserts may lack a fast form
        connection.exec_driver_sql(found.sql, _tuples(found, rows))

    def upsert(self, connection: Connection, table: Table, rows: Sequence[Mapping[str, object]],
               keys: Sequence[str]) -> bool:
        """Upsert `rows` (all with the columns of the first) and say True; False when this
        statement needs what only SQLAlchemy's path does (a column default computed per
        row), so the caller takes that path."""
        present = frozenset(rows[0])
        cache_key = (table.name, tuple(keys), present)
        if cache_key not in self._compiled:
            self._compiled[cache_key] = _compile(connection, table, keys, present)
        compiled = self._compiled[cache_key]
        if compiled is None:
            return False
        connection.exec_driver_sql(compiled.sql, _tuples(compiled, rows))
        return True


def _tuples(compiled: _Compiled, rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    params = compiled.params
    return [tuple(row[name] if process is None else process(row[name])
                  for name, process in params) for row in rows]


def _compile(connection: Connection, table: Table, keys: Sequence[str],
             present: frozenset[str]) -> _Compiled | None:
    dialect = connection.dialect
    insert = sqlite.insert(table)
    updates = {c.name: insert.excluded[c.name] for c in table.columns
               if c.name not in keys and (c.name in present or c.server_default is not None)}
    statement = insert.on_conflict_do_update(index_elements=list(keys), set_=updates)
    compiled = statement.compile(dialect=dialect, column_keys=sorted(present))
    names = compiled.positiontup or []
    if any(name not in present for name in names):
        return None  # a Python-side column default fills it per row
    return _Compiled(str(compiled), tuple(
        (name, _processor(table.c[name].type, dialect)) for name in names))


def _processor(kind: TypeEngine[object], dialect: Dialect) -> Processor:
    """The column type's bind processor; for a type decorated over a BLOB, only its own
    conversion: sqlite3 takes bytes as they are, where LargeBinary's processor wraps each
    value in a memoryview first."""
    loaded = kind.dialect_impl(dialect)
    if isinstance(loaded, TypeDecorator) and isinstance(
            loaded.impl_instance.dialect_impl(dialect), LargeBinary):
        convert = loaded.process_bind_param
        return lambda value: convert(value, dialect)
    return loaded.bind_processor(dialect)
