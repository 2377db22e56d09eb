"""The echo of syncer's own writes: which stretch of CRM time they took, remembered so
the next pulls leave it out (syncer/store/echo.py).

A run wraps its connectors in a WriteWatch, which notes when each connector's first write
of the run (push or create) begins. After the run, `seal` records the run's echo window
for every connector it wrote to:
- a CRM whose write answers carry the stamps they gave (HubSpot's batch answers carry
  updatedAt) tells the window exactly, at no extra request (`take_write_window`);
- otherwise (Salesforce's composite answers carry none) one look at the CRM's newest
  stamp after the last write closes it, and it opens as long before that as the writes
  took on this machine's monotonic clock, plus a second of slack for whole-second stamps.
Either way, a change someone else made before our first write is not hidden in it. A
connector that can do neither is left unwatched: its echo is read back and dropped as
unchanged, as before.

Writes to accounts (HubSpot companies, Salesforce Accounts: RecordUpdates whose object
type is an account object) are watched apart from people's, with windows of their own
(echo_store.ACCOUNTS), told the same two ways (`take_account_write_window`,
`newest_account_stamp`); the accounts pull (syncer/run/accounts.py) leaves them out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, cast, runtime_checkable

import structlog

from syncer.domain.accounts import ACCOUNT_OBJECT_TYPES, Account
from syncer.domain.connector import Connector
from syncer.domain.types import CreateResult, NewPerson, Person, PushResult, RecordUpdate
from syncer.store import echo as echo_store
from syncer.store.repository import Store

log = structlog.get_logger(__name__)

#: slack before a window measured by the clock: CRM stamps may be whole seconds. For
#: the same reason such a window ends a second before the newest stamp: an edit in that
#: last second may be someone else's, so the next pull reads it (see EchoTails).
SLACK = timedelta(seconds=1)
#: an exact window opens just before the earliest stamp our writes got
TICK = timedelta(milliseconds=1)


@runtime_checkable
class LeavesOutEchoes(Protocol):
    """A connector whose incremental pull can leave out stretches of time."""

    def newest_stamp(self) -> datetime | None:
        """The newest modification stamp of any person record in the CRM."""
        ...

    def people(self, since: datetime | None = None,
               skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Person]]:
        """people(since) without the records stamped in any (start, end] of `skip`."""
        ...


@runtime_checkable
class LeavesOutAccountEchoes(Protocol):
    """A connector whose incremental accounts pull can leave out stretches of time."""

    def newest_account_stamp(self) -> datetime | None:
        """The newest modification stamp of any account record in the CRM."""
        ...

    def accounts(self, since: datetime | None = None,
                 skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Account]]:
        """accounts(since) without the records stamped in any (start, end] of `skip`."""
        ...


@runtime_checkable
class KnowsAccountWriteWindow(Protocol):
    """A connector whose account write answers told it the stamps its writes got."""

    def take_account_write_window(self) -> tuple[datetime, datetime] | None:
        """The stamps of the account writes since the last call (then forgotten)."""
        ...


class Stamped(Protocol):
    """A record read by modification time (a Person, an Account)."""

    @property
    def record_id(self) -> str: ...

    @property
    def updated_at(self) -> datetime | None: ...


@runtime_checkable
class KnowsWriteWindow(Protocol):
    """A connector whose write answers told it the stamps its writes got."""

    def take_write_window(self) -> tuple[datetime, datetime] | None:
        """The stamps of the writes since the last call (then forgotten)."""
        ...


class _Watched:
    """A connector whose writes are timed; everything else passes straight through."""

    def __init__(self, inner: Connector, watch: WriteWatch) -> None:
        self._inner = inner
        self._watch = watch

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        for stream in sorted({_stream(update) for update in updates}):
            self._watch.writing(self._inner.name, stream)
        return self._inner.push(updates)

    def create(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        if people:
            self._watch.writing(self._inner.name, echo_store.PEOPLE)
        return self._inner.create(people)


def _stream(update: RecordUpdate) -> str:
    """Whose stamps a write bumps: an account's (company, Account) or a person's."""
    return (echo_store.ACCOUNTS if update.object_type in ACCOUNT_OBJECT_TYPES
            else echo_store.PEOPLE)


class WriteWatch:
    """When each connector's first write of this run began (this machine's clock), to
    people and to accounts apart."""

    def __init__(self) -> None:
        self._began: dict[tuple[str, str], float] = {}

    def wrap(self, connectors: Mapping[str, Connector]) -> dict[str, Connector]:
        """The connectors to run with: watched where a pull can leave our echo out. Stamps
        an earlier run left untaken (it ended before its seal) are dropped first."""
        for connector in connectors.values():
            if isinstance(connector, KnowsWriteWindow):
                connector.take_write_window()
            if isinstance(connector, KnowsAccountWriteWindow):
                connector.take_account_write_window()
        return {name: cast(Connector, _Watched(c, self))
                if isinstance(c, LeavesOutEchoes | LeavesOutAccountEchoes) else c
                for name, c in connectors.items()}

    def writing(self, name: str, stream: str = echo_store.PEOPLE) -> None:
        self._began.setdefault((name, stream), time.monotonic())

    def seal(self, store: Store, connectors: Mapping[str, Connector], run_id: str) -> None:
        """Remember the echo window of every connector and stream this run wrote to. Best
        effort: a window not remembered only means the next pull reads that echo back
        once."""
        for (name, stream), began in self._began.items():
            connector = connectors.get(name)
            try:
                window = _window(connector, stream, began, run_id)
                if window is None:
                    continue
                with store.transaction() as tx:
                    echo_store.record(tx, name, window, stream)
                log.info("echo.window", connector=name, stream=stream,
                         start=window.start.isoformat(), end=window.end.isoformat())
            except Exception as error:  # the run's own outcome matters more than a window
                log.warning("echo.window_not_kept", connector=name, stream=stream,
                            error=type(error).__name__)
        self._began = {}


def _window(connector: object, stream: str, began: float, run_id: str
            ) -> echo_store.EchoWindow | None:
    """The window of a run's writes to one stream: as the write answers told it, else
    closed by the CRM's newest stamp after them, else none."""
    told, newest = _ways(connector, stream)
    stamps = told() if told is not None else None
    if stamps is not None:
        return echo_store.EchoWindow(run_id, stamps[0] - TICK, stamps[1])
    return None if newest is None else _measured(newest(), began, run_id)


def _ways(connector: object, stream: str) -> tuple[
        Callable[[], tuple[datetime, datetime] | None] | None,
        Callable[[], datetime | None] | None]:
    """How `connector` tells a stream's window: (the stamps its writes got, its newest
    stamp), each None when it cannot."""
    if stream == echo_store.PEOPLE:
        return (connector.take_write_window if isinstance(connector, KnowsWriteWindow)
                else None,
                connector.newest_stamp if isinstance(connector, LeavesOutEchoes) else None)
    return (connector.take_account_write_window
            if isinstance(connector, KnowsAccountWriteWindow) else None,
            connector.newest_account_stamp
            if isinstance(connector, LeavesOutAccountEchoes) else None)


def _measured(after: datetime | None, began: float, run_id: str
              ) -> echo_store.EchoWindow | None:
    """A window closed by the newest stamp after our writes, opened as long before it as
    they took here (plus SLACK)."""
    if after is None:
        return None
    took = timedelta(seconds=time.monotonic() - began)
    start, end = after - took - SLACK, after - SLACK
    return echo_store.EchoWindow(run_id, start, end) if end > start else None


class EchoTails:
    """What a pull read in the second after each window it left out. A window grows over
    the stamps there whose records were unchanged (our own echo, now seen once), up to
    the first record someone else changed: the next pull need not read them again."""

    def __init__(self, windows: Sequence[echo_store.EchoWindow]) -> None:
        self._windows = list(windows)
        self._seen: list[list[tuple[datetime, bool]]] = [[] for _ in self._windows]

    def note(self, page: Sequence[Stamped], unchanged: Sequence[Stamped]) -> None:
        same = {p.record_id for p in unchanged}
        for record in page:
            stamp = record.updated_at
            for seen, window in zip(self._seen, self._windows, strict=True):
                if stamp is not None and window.end < stamp <= window.end + SLACK:
                    seen.append((stamp, record.record_id in same))

    def grown(self) -> list[tuple[datetime, datetime]]:
        """(old end, new end) of each window that grows."""
        moved = []
        for seen, window in zip(self._seen, self._windows, strict=True):
            end = window.end
            for stamp, same in sorted(seen):  # at one stamp a change sorts first
                if not same:
                    break
                end = stamp
            if end > window.end:
                moved.append((window.end, end))
        return moved
