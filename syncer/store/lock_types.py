"""What every run-lock backend shares: who holds a lock, the errors, the lock's protocol
and the keys. Apart from syncer/store/locks.py so that the PostgreSQL backend
(syncer/store/pg_locks.py) and the chooser of backends import it without importing each
other."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from sqlalchemy import Connection

from syncer.domain.failures import RunFailed


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as a second start reports it."""

    name: str
    host: str
    pid: int
    run_id: str
    since: datetime | None

    def describe(self) -> str:
        since = f" since {self.since.astimezone(timezone.utc):%H:%M} UTC" if self.since \
            else ""
        return f"{self.host}:{self.pid}{since} (run {self.run_id})"


class LockHeld(RunFailed):
    """Another run holds a lock this run needs; `holder` says who (None: not known yet,
    the other run is between taking the lock and recording itself)."""

    def __init__(self, name: str, holder: Holder | None) -> None:
        who = holder.describe() if holder is not None else "another syncer"
        super().__init__(f"connector {name} is being synced by {who}")
        self.name = name
        self.holder = holder


class LostLock(RunFailed):
    """The run no longer holds its lock (its lock connection died, or another run took the
    lock over); the write that found out was rolled back and the run writes nothing more.
    Nothing to fix by hand: the next run starts from the last state this run committed."""


class Fence(Protocol):
    """What `Store.transaction()` asks before committing a write of a fenced run."""

    def check(self, connection: Connection) -> None:
        """Raise LostLock unless the lock is still held; `connection` is the writing one,
        inside the transaction about to commit."""


class RunLock(Fence, Protocol):
    """The locks of one run, whichever backend holds them."""

    names: list[str]
    run_id: str

    def release(self) -> None:
        """Give the locks up (idempotent); the run must not write after this."""


#: Called once when a lock is taken by someone else and the caller chose to wait.
OnWait = Callable[[LockHeld], None]


def lock_text(tenant: str | None, name: str) -> str:
    """The lock's name: "<tenant or 'default'>:<connector>", the key of one sync."""
    return f"{tenant or 'default'}:{name}"


def lock_key(scope: str, text: str) -> int:
    """A stable signed 64-bit key (PostgreSQL advisory locks take a bigint) for a lock name
    within one state database (`scope`), the same in every process and Python version."""
    digest = hashlib.blake2b(f"{scope}|{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
