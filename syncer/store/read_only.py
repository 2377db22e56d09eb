"""Opening existing state to read it, and only to read it.

Commands that only look at state (explain, audit, audit verify, report, dead-letters,
model history, model diff) open it here: the database must exist already
(syncer/store/location.py), every connection is read-only (SQLite `query_only`, a
PostgreSQL read-only session), and the schema is never migrated. So a new syncer on an
admin's laptop, pointed at production to explain one lead, cannot migrate the schema
under the daemon that owns it; it says to sync with this syncer first instead.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from syncer.store.location import (
    StateUnavailable,
    parse_state_url,
    require_existing,
    unreachable,
)
from syncer.store.migrations import LATEST, SchemaTooNew, current_version
from syncer.store.repository import Store


class StateUnreadable(StateUnavailable):
    """The state exists but cannot be read as it is: not syncer's, not at this syncer's
    schema version, or the database refused the connection."""


def open_read_only(url: str) -> Store:
    """The existing state at `url`, read-only, at this syncer's schema version. Raises
    NoState (no such SQLite file), StateUrlInvalid, StateUnreadable, or SchemaTooNew (a
    newer syncer migrated it: exit 3, as for any command)."""
    require_existing(url)
    backend = parse_state_url(url).get_backend_name()
    engine = create_engine(url, future=True)
    event.listen(engine, "connect", _read_only(backend))
    try:
        with engine.connect() as connection:
            version = current_version(connection)
    except SQLAlchemyError as exc:
        engine.dispose()
        if isinstance(exc, OperationalError) and backend != "sqlite":
            raise unreachable(url, exc) from None  # the server did not answer: exit 3
        raise StateUnreadable(f"cannot read the state database ({exc.__class__.__name__}). "
                              "Fix: check --state or the config's state url") from None
    if version is not None and version > LATEST:
        engine.dispose()
        raise SchemaTooNew(version)
    if version != LATEST:
        engine.dispose()
        what = "has no syncer state" if version is None else f"is at schema version {version}"
        raise StateUnreadable(f"the state database {what}; this syncer expects {LATEST}. "
                              "Fix: run `syncer sync --once` with this syncer first (a "
                              "command that only reads state never migrates or writes it)")
    return Store(engine)


def _read_only(backend: str) -> Callable[[DBAPIConnection, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        if backend == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
            cursor.execute("PRAGMA busy_timeout = 10000")  # as writers do: wait, not fail
        elif backend == "postgresql":
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()
        dbapi_connection.commit()  # a SET rolled back with its transaction would not hold
    return on_connect
