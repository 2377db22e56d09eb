"""Run locks on PostgreSQL: session advisory locks, a holder row and a fencing token.

Taking the lock: on a dedicated connection (its own engine without a pool, so closing it
really ends the session and frees the lock), `pg_try_advisory_lock(key)` per connector
(`pg_advisory_lock` to wait: the server wakes us, no polling), then, in one transaction on
that connection, the `run_locks` row of each key is written with who holds it and its
`token` incremented. The connection then stays idle, holding the session locks, until
`release` (or until the process or its connection dies, which frees them).

The fence (`check`, run on the *writing* connection inside the transaction about to
commit) is one statement: it reads this run's `run_locks` rows `FOR SHARE` and asks
`pg_locks` whether this run's lock backend still holds each advisory lock. It passes only
when every token is still ours and every lock is still held by our backend. Why that is
correct without a gap between the check and the commit:
- while our lock backend holds the advisory lock, nobody else can take it;
- if our lock session died (terminated, network, crash), `pg_locks` no longer shows it, so
  every later check fails, whether or not someone else has taken over yet;
- a new holder takes the advisory lock and then must update the token row before it does
  anything else; that update waits for every write transaction of ours that has already
  passed its check (they hold the row `FOR SHARE` until they commit), and any check of ours
  after the update sees the new token. So each of our writes commits entirely before the
  new holder starts, or not at all.
Cost: one primary-key read and one scan of the server's lock table per write transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, bindparam, create_engine, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from syncer.store import tables as t
from syncer.store.lock_types import (
    Holder,
    LockHeld,
    LostLock,
    OnWait,
    lock_key,
    lock_text,
    now_utc,
    this_process,
)

_CHECK = text("""
    SELECT l.lock_key, l.token, EXISTS (
        SELECT 1 FROM pg_locks p
        WHERE p.locktype = 'advisory' AND p.granted AND p.pid = :backend
          AND p.classid::int8 = ((l.lock_key >> 32) & 4294967295)
          AND p.objid::int8 = (l.lock_key & 4294967295) AND p.objsubid = 1) AS held
    FROM run_locks l WHERE l.lock_key IN :keys
    FOR SHARE OF l
""").bindparams(bindparam("keys", expanding=True))


def scope_of(connection: Connection) -> str:
    """The state database the locks belong to: database and schema, so two states in one
    server (a schema each, as the tests use) never share a lock."""
    database, schema = connection.execute(
        text("SELECT current_database(), current_schema()")).one()
    return f"{database}.{schema}"


def migration_key(connection: Connection) -> int:
    return lock_key(scope_of(connection), "migrate")


def lock_migrations(connection: Connection) -> None:
    """Inside the migration's transaction: wait for any other migrating process; the lock
    ends with the transaction, and the next process then sees the migrated schema."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                       {"k": migration_key(connection)})


class PostgresRunLock:
    """The advisory locks of one run (see the module docstring)."""

    def __init__(self, engine: Engine, names: Sequence[str], run_id: str,
                 tenant: str | None) -> None:
        self.names = list(names)
        self.run_id = run_id
        self.tenant = tenant
        self._engine = create_engine(engine.url, poolclass=NullPool)
        self._connection: Connection | None = None
        self.keys: dict[str, int] = {}
        self.tokens: dict[int, int] = {}
        self.backend_pid = 0

    def acquire(self, wait: bool, on_wait: OnWait | None) -> None:
        connection = self._connection = self._engine.connect()
        try:
            scope = scope_of(connection)
            self.backend_pid = int(connection.execute(text("SELECT pg_backend_pid()")
                                                      ).scalar_one())
            connection.commit()
            for name in self.names:
                key = lock_key(scope, lock_text(self.tenant, name))
                if not connection.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                          {"k": key}).scalar_one():
                    held = LockHeld(name, self._holder(connection, name, key))
                    connection.commit()
                    if not wait:
                        raise held
                    if on_wait is not None:
                        on_wait(held)
                        on_wait = None
                    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                connection.commit()
                self.keys[name] = key
            self._record(connection)
        except BaseException:
            self.release()
            raise

    def _holder(self, connection: Connection, name: str, key: int) -> Holder | None:
        row = connection.execute(select(t.run_locks).where(t.run_locks.c.lock_key == key)
                                 ).one_or_none()
        if row is None:
            return None
        return Holder(name, row.host, row.pid, row.run_id, row.since)

    def _record(self, connection: Connection) -> None:
        """Say who holds each lock and take a new token (waits for the last holder's
        fenced writes in flight, see the module docstring)."""
        host, pid = this_process()
        since = now_utc()
        for name, key in self.keys.items():
            statement = insert(t.run_locks).values(
                lock_key=key, name=lock_text(self.tenant, name), token=1, host=host, pid=pid,
                backend_pid=self.backend_pid, run_id=self.run_id, since=since)
            upsert = statement.on_conflict_do_update(
                index_elements=["lock_key"],
                set_={"token": t.run_locks.c.token + 1, "name": statement.excluded.name,
                      "host": host, "pid": pid, "backend_pid": self.backend_pid,
                      "run_id": self.run_id, "since": since}).returning(t.run_locks.c.token)
            self.tokens[key] = int(connection.execute(upsert).scalar_one())
        connection.commit()

    def check(self, connection: Connection) -> None:
        rows = connection.execute(
            _CHECK, {"backend": self.backend_pid, "keys": list(self.tokens)})
        current = {row.lock_key: (row.token, row.held) for row in rows}
        for name, key in self.keys.items():
            token, held = current.get(key, (None, False))
            if token != self.tokens.get(key):
                raise LostLock(f"connector {name}: another run took the lock over; run "
                               f"{self.run_id} stops without writing more")
            if not held:
                raise LostLock(f"connector {name}: run {self.run_id} lost its lock (its "
                               "PostgreSQL lock session ended); it stops without writing "
                               "more")

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.commit()
            except SQLAlchemyError:
                pass  # the session is gone, and its locks with it
            finally:
                connection.close()
        self._engine.dispose()
        self.keys = {}
