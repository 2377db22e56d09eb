"""Run locks: one sync of a (tenant, connector) at a time, whatever starts it.

A run takes one lock per connector it works on (`acquire`) and holds them until it ends.
The backend follows the state database, so every process that shares the state shares the
locks: PostgreSQL session advisory locks (syncer/store/pg_locks.py), a file lock beside a
SQLite file (`<db>.lock-<connector>`, fcntl.flock: released by the kernel when the process
dies), or a lock in this process for an in-memory SQLite database.

Fencing: a lock is also a `Fence`. While a run holds it, `Store.transaction()` calls
`check(connection)` on the writing connection just before commit, so every cursor
advance, write-ahead intent and decision write of the run commits only while the run still
holds its locks; otherwise `LostLock` rolls that transaction back and the run stops. What
`check` proves, and why that is enough, is documented per backend.

The lock also records who holds it (host, pid, run id, since), so a second start can say
who: in the `run_locks` table on PostgreSQL, in the lock file on SQLite.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, ClassVar

from sqlalchemy import Connection, Engine

from syncer.store.lock_types import (
    Fence,
    Holder,
    LockHeld,
    LostLock,
    OnWait,
    RunLock,
    lock_key,
    lock_text,
    now_utc,
    this_process,
)
from syncer.store.pg_locks import PostgresRunLock

#: The run-lock API: the backends here and the names they share (syncer/store/lock_types.py).
__all__ = [
    "Fence",
    "FileRunLock",
    "Holder",
    "LocalRunLock",
    "LockHeld",
    "LostLock",
    "OnWait",
    "RunLock",
    "acquire",
    "lock_key",
    "lock_text",
    "migration_lock",
    "now_utc",
    "read_holder_file",
    "this_process",
]


def acquire(engine: Engine, names: Sequence[str], run_id: str, *, tenant: str | None = None,
            wait: bool = False, on_wait: OnWait | None = None) -> RunLock:
    """Take the lock of every connector in `names` for run `run_id`, in sorted order (two
    waiting runs cannot deadlock). Without `wait`, raises LockHeld naming the holder of the
    first lock taken (and keeps none); with `wait`, blocks until each lock is free (a
    blocking lock call, no polling), calling `on_wait` first."""
    ordered = sorted(set(names))
    if engine.dialect.name == "postgresql":
        pg = PostgresRunLock(engine, ordered, run_id, tenant)
        pg.acquire(wait, on_wait)
        return pg
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        file_lock = FileRunLock(Path(database), ordered, run_id, tenant)
        file_lock.acquire(wait, on_wait)
        return file_lock
    # An in-memory database belongs to its engine: two engines never share one.
    local = LocalRunLock(f"{engine.url}#{id(engine)}", ordered, run_id, tenant)
    local.acquire(wait, on_wait)
    return local


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serializes migrations of one SQLite file across processes (a file lock beside it);
    PostgreSQL takes a transaction advisory lock inside `migrate` instead."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    path = Path(f"{database}.lock-migrate")
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class FileRunLock:
    """SQLite: an exclusive flock on `<db>.lock-<connector>` per connector.

    Why `check` is enough: a flock belongs to the open file, so no other process can take
    it from a live holder; it is gone only when this run releases it (after which it must
    not write), when the process dies (and writes nothing more), or when someone deletes
    the file, letting another process lock a new file under the same name. `check` catches
    the last case by comparing the inode of the path with the inode of the file it holds,
    and the holder recorded in it with this run. Lock files are never deleted by syncer."""

    def __init__(self, database: Path, names: Sequence[str], run_id: str,
                 tenant: str | None) -> None:
        self.database = database
        self.names = list(names)
        self.run_id = run_id
        self.tenant = tenant
        self._files: dict[str, IO[str]] = {}

    def path(self, name: str) -> Path:
        suffix = f"{self.tenant}.{name}" if self.tenant else name
        return Path(f"{self.database}.lock-{suffix}")

    def acquire(self, wait: bool, on_wait: OnWait | None) -> None:
        try:
            for name in self.names:
                self._take(name, wait, on_wait)
        except BaseException:
            self.release()
            raise

    def _take(self, name: str, wait: bool, on_wait: OnWait | None) -> None:
        while True:
            handle = open(self.path(name), "a+")  # noqa: SIM115 (held until release)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = LockHeld(name, read_holder_file(self.path(name), name))
                if not wait:
                    handle.close()
                    raise held from None
                if on_wait is not None:
                    on_wait(held)
                    on_wait = None
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if self._same_file(name, handle):
                break
            handle.close()  # the file was replaced while we waited: lock the new one
        host, pid = this_process()
        handle.seek(0)
        handle.truncate()
        json.dump({"name": name, "host": host, "pid": pid, "run_id": self.run_id,
                   "since": now_utc().isoformat()}, handle)
        handle.flush()
        self._files[name] = handle

    def _same_file(self, name: str, handle: IO[str]) -> bool:
        try:
            on_disk = os.stat(self.path(name))
        except FileNotFoundError:
            return False
        held = os.fstat(handle.fileno())
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def check(self, connection: Connection | None = None) -> None:
        for name in self.names:
            handle = self._files.get(name)
            if handle is None:
                raise LostLock(f"connector {name}: run {self.run_id} released its lock")
            if not self._same_file(name, handle):
                holder = read_holder_file(self.path(name), name)
                what = f"replaced (now held by {holder.describe()})" if holder else "deleted"
                raise LostLock(f"connector {name}: the lock file {self.path(name)} was {what}; "
                               f"run {self.run_id} stops without writing more")

    def release(self) -> None:
        for handle in self._files.values():
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()
        self._files = {}


def read_holder_file(path: Path, name: str) -> Holder | None:
    """The holder a lock file names (None while it is being written or was never)."""
    try:
        data = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    since = data.get("since")
    return Holder(name, str(data.get("host", "?")), int(data.get("pid", 0)),
                  str(data.get("run_id", "?")),
                  datetime.fromisoformat(since) if isinstance(since, str) else None)


class LocalRunLock:
    """In-memory SQLite: the database lives in this process, so a lock in it is enough."""

    _guard: ClassVar[threading.Lock] = threading.Lock()
    _locks: ClassVar[dict[tuple[str, str], threading.Lock]] = {}
    _holders: ClassVar[dict[tuple[str, str], Holder]] = {}

    def __init__(self, database: str, names: Sequence[str], run_id: str,
                 tenant: str | None) -> None:
        self.database = database
        self.names = list(names)
        self.run_id = run_id
        self.tenant = tenant
        self._held: list[tuple[str, str]] = []

    def acquire(self, wait: bool, on_wait: OnWait | None) -> None:
        try:
            for name in self.names:
                slot = (self.database, lock_text(self.tenant, name))
                with self._guard:
                    lock = self._locks.setdefault(slot, threading.Lock())
                if not lock.acquire(blocking=False):
                    held = LockHeld(name, self._holders.get(slot))
                    if not wait:
                        raise held
                    if on_wait is not None:
                        on_wait(held)
                        on_wait = None
                    lock.acquire()
                host, pid = this_process()
                self._holders[slot] = Holder(name, host, pid, self.run_id, now_utc())
                self._held.append(slot)
        except BaseException:
            self.release()
            raise

    def check(self, connection: Connection | None = None) -> None:
        if len(self._held) != len(self.names):
            raise LostLock(f"run {self.run_id} released its lock")

    def release(self) -> None:
        for slot in self._held:
            self._holders.pop(slot, None)
            self._locks[slot].release()
        self._held = []
