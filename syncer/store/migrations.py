"""Schema migrations.

A fresh database gets the current schema (tables.py) in one step and is stamped with the
latest version. A database created by an older syncer is brought forward by applying, in
order, each step in MIGRATIONS newer than its stamp. Adding a column therefore means: change
tables.py AND append a step that alters existing databases the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, inspect, select

from syncer.store.tables import metadata, schema_version

#: (version, description, step). Version 1 is the baseline created by create_all.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "baseline: records, activities, decisions, written, audit, runs, cursors, counters",
     lambda connection: None),
]
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer syncer; running an older one could corrupt it."""


def current_version(connection: Connection) -> int | None:
    if not inspect(connection).has_table("schema_version"):
        return None
    return connection.execute(
        select(schema_version.c.version).order_by(schema_version.c.version.desc()).limit(1)
    ).scalar()


def migrate(engine: Engine) -> int:
    """Bring the schema to LATEST; return the version it is at. Safe to call every start."""
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        version = current_version(connection)
        if version is None:
            metadata.create_all(connection)
            connection.execute(schema_version.insert(), [{"version": LATEST, "applied_at": now}])
            return LATEST
        if version > LATEST:
            raise SchemaTooNew(
                f"the state database is at schema version {version} but this syncer knows "
                f"only up to {LATEST}; upgrade syncer or point it at another state database")
        for number, _description, step in MIGRATIONS:
            if number > version:
                step(connection)
                connection.execute(schema_version.insert(),
                                   [{"version": number, "applied_at": now}])
        return LATEST
