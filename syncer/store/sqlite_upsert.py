"""Upserts (and batched updates) of many rows on SQLite as one executemany of plain tuples.

A full sync upserts every record, activity, decision and written value it touches. Through
SQLAlchemy's `connection.execute(statement, rows)` each row's parameters go through its
per-row processing (a dict per row, each column's bind processor looked up and called by
name), which cost more than SQLite's own insert. Here the statement is compiled once per
(table, columns), the column types' bind processors are taken once, and each row becomes a
tuple in the compiled parameter order: the same SQL and the same stored bytes (the
processors are the column types' own), without the per-row machinery.

PostgreSQL keeps SQLAlchemy's executemany (psycopg batches it into few round trips) of the
same upsert statement (`upsert_statement`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, LargeBinary, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator, TypeEngine

Processor = Callable[[object], object] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: each bind parameter's column name and its type's bind processor, in SQL order
    params: tuple[tuple[str, Processor], ...]


def upsert_statement(dialect_name: str, table: Table, keys: Sequence[str],
                     present: Iterable[str]) -> sqlite.Insert | postgresql.Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE of the columns given (and of those with a
    server default, which take it again), on SQLite or PostgreSQL: the one upsert the
    store runs, through SQLAlchemy or, on SQLite, as tuples here."""
    insert: sqlite.Insert | postgresql.Insert = (
        postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table))
    given = set(present)
    updates = {c.name: insert.excluded[c.name] for c in table.columns
               if c.name not in keys and (c.name in given or c.server_default is not None)}
    return insert.on_conflict_do_update(index_elements=list(keys), set_=updates)


class SqliteUpserts:
    """Statements compiled once for executemany of tuples: upserts by (table, conflict
    keys, columns given), other DML by the caller's key."""

    def __init__(self) -> None:
        self._compiled: dict[Hashable, _Compiled | None] = {}

    def execute(self, connection: Connection, key: Hashable, statement: UpdateBase,
                rows: Sequence[Mapping[str, object]]) -> None:
        """Run `statement` (an UPDATE or DELETE with named bind parameters, the same for
        every call with this `key`) once per row, in one executemany of tuples."""
        if key not in self._compiled:
            self._compiled[key] = _compile(statement, connection.dialect)
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
            compiled = _compile(upsert_statement("sqlite", table, keys, present),
                                connection.dialect, present)
            self._compiled[cache_key] = compiled
        found = self._compiled[cache_key]
        if found is None:
            return False
        connection.exec_driver_sql(found.sql, _tuples(found, rows))
        return True


def _tuples(compiled: _Compiled, rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    params = compiled.params
    return [tuple(row[name] if process is None else process(row[name])
                  for name, process in params) for row in rows]


def _compile(statement: UpdateBase, dialect: Dialect,
             present: frozenset[str] | None = None) -> _Compiled | None:
    """The statement's SQL and, in its order, each bind parameter with its type's
    processor. With `present` (the columns an insert is given): None when it binds
    another column too (a Python-side column default fills it per row)."""
    compiled = statement.compile(dialect=dialect,
                                 column_keys=None if present is None else sorted(present))
    names = compiled.positiontup or []
    if present is not None and any(name not in present for name in names):
        return None
    return _Compiled(str(compiled), tuple(
        (name, _processor(compiled.binds[name].type, dialect)) for name in names))


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
