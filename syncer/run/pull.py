"""Pulling one connector into the store: people, successions, activities, cursors.

Every page is stored (with the identity of each record decided) before the next is read;
cursors advance only after the whole stream is stored, so a run that dies mid-pull reads
the rest again next time and loses nothing. What changed is reported back as the person
keys to re-qualify.

A full pull from a connector that can resume one (`ResumesFullPull`) commits, with each
page, the position after it (syncer/store/full_pulls.py): a full sync killed half way goes
on after its last committed page, and no committed page is requested again. Its activities
do the same when the connector can resume them (`ResumesActivities`): each activities page
is committed with the position after it, and the restart reads the same window from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar, runtime_checkable

import structlog
from sqlalchemy import Connection

from syncer.domain.connector import Connector
from syncer.domain.types import Activity, Person
from syncer.observe import progress
from syncer.run.audit_trail import RunStamp, succession_row
from syncer.run.budget import DailyBudget
from syncer.run.echo import EchoTails, LeavesOutEchoes
from syncer.run.lanes import read_ahead
from syncer.store import dead_letters, full_pulls, undecided
from syncer.store import echo as echo_store
from syncer.store import identity as identity_store
from syncer.store import sweep as sweep_store
from syncer.store.echo import EchoWindow
from syncer.store.full_pulls import FullPullMark
from syncer.store.repository import Store
from syncer.store.sweep import SweepMark

log = structlog.get_logger(__name__)

#: a page of a listing (people, activities, with or without its position)
P = TypeVar("P")

#: Records and activities are re-pulled from this long before the saved cursor, to catch
#: late arrivals and changes made in the same second as the cursor.
CURSOR_OVERLAP = timedelta(minutes=5)
#: At most this many stretches of our own writes are left out of one pull (each is one more
#: HubSpot search filter group, of five); older ones are read back and dropped unchanged.
MAX_ECHO_WINDOWS = 3
#: How far back the first pull of activities reaches.
FIRST_PULL_HISTORY = timedelta(days=365)


@runtime_checkable
class ReadsByIds(Protocol):
    """A connector that reads named records as they are now, with their activities."""

    def read_by_ids(self, record_ids: Sequence[str], activities_since: datetime
                    ) -> tuple[list[Person], list[Activity]]: ...


@runtime_checkable
class ResumesFullPull(Protocol):
    """A connector whose full listing can go on, in another process, after a page."""

    def full_pages(self, position: str | None
                   ) -> Iterator[tuple[list[Person], str | None]]:
        """Every live person record, a page at a time from `position` (None: the start),
        each page with the position after it (None: it was the last). A position is
        opaque text that stays valid after this process dies."""
        ...


@runtime_checkable
class ResumesActivities(Protocol):
    """A connector whose activity listing can go on, in another process, after a page."""

    def activity_pages(self, since: datetime, position: str | None
                       ) -> Iterator[tuple[list[Activity], str | None]]:
        """The activities at or after `since` (as `activities(since)` reads them), a page
        at a time from `position` (None: the start), each page (maybe empty) with the
        position after it (None: it was the last). A position is opaque text that stays
        valid after this process dies, for the same `since`."""
        ...


class SyncStopped(Exception):
    """A stop was requested; the run ended after its current batch, state consistent."""


@dataclass
class Pulled:
    """What one connector's pull brought in."""

    records: int = 0
    #: records the CRM returned (`records` leaves out re-reads that changed nothing)
    read: int = 0
    activities: int = 0
    #: person keys whose records or activities changed (to re-qualify)
    touched: set[str] = field(default_factory=set)
    #: "<connector>.converted" / "<connector>.merged": records followed to a successor
    identity: Counter[str] = field(default_factory=Counter)
    #: this pull is (or finishes) a full sync: everyone must be decided, not only `touched`
    everyone: bool = False


class Puller:
    """Pulls one connector for one run."""

    def __init__(self, store: Store, connector: Connector, *, now: datetime, run_id: str,
                 model_version: str, budget: DailyBudget,
                 should_stop: Callable[[], bool]) -> None:
        self.store = store
        self.connector = connector
        self.name = connector.name
        self.now = now
        self.run_id = run_id
        self.model_version = model_version
        self.budget = budget
        self.should_stop = should_stop
        self.pulled = Pulled()

    def run(self, full: bool) -> Pulled:
        """People (all on a full pull, else those changed since the cursor outside the
        stretches of syncer's own writes), then the records that stopped taking writes,
        then activities; cursors last. The people cursor moves past our own writes: their
        echo is never read back while the overlap still re-reads others' changes. An
        unfinished full sync is carried on whatever `full` says (_full_pull_mark)."""
        resume = self._full_pull_mark()
        people_cursor = self.store.cursor(self.name, "people")
        if resume is not None and resume.pulled:  # only what changed since it was read
            people_cursor = people_cursor or resume.newest
        elif full or resume is not None:
            people_cursor = None
        self.pulled.everyone = people_cursor is None or resume is not None
        since = people_cursor - CURSOR_OVERLAP if people_cursor is not None else None
        skip = self._echo_windows(since)
        if people_cursor is None and isinstance(self.connector, ResumesFullPull):
            newest = self._full_people(self.connector, resume)
        else:
            newest = self._people(people_cursor, skip)
        if since is not None:  # a first pull has nothing to follow
            self._follow(since)
        self._activities()
        ends = [w.end for w in skip]
        if newest is not None or ends:
            newest = max([*([newest] if newest is not None else []), *ends])
        with self.store.transaction() as tx:
            self.store.set_cursor(tx, self.name, "activities", self.now)
            if newest is not None:
                self.store.set_cursor(tx, self.name, "people", newest)
            if people_cursor is None:  # a full pull read every record: a sweep pass
                sweep_store.save(tx, self.name, SweepMark(done_at=self.now))
        log.info("pull.done", connector=self.name, records=self.pulled.records,
                 read=self.pulled.read, activities=self.pulled.activities,
                 incremental=people_cursor is not None, echo_windows_skipped=len(skip))
        return self.pulled

    def _full_pull_mark(self) -> FullPullMark | None:
        """The unfinished full sync this run goes on with, if any: one still paging goes
        on after its last committed page; one whose records were all read is finished by
        an incremental pull from the newest change it saw (its pages are not read again),
        and either way everyone is decided."""
        if not isinstance(self.connector, ResumesFullPull):
            return None
        with self.store.engine.connect() as connection:
            return full_pulls.mark(connection, self.name)

    def _full_people(self, connector: ResumesFullPull, resume: FullPullMark | None
                     ) -> datetime | None:
        """Every record, from after the last page a killed run committed (`resume`), each
        page stored in one transaction with the position after it. Returns the newest
        modification time seen by the whole full pull."""
        current = resume if resume is not None else FullPullMark(started_at=self.now)
        if current.pages:
            log.info("pull.full_resumed", connector=self.name, pages_done=current.pages,
                     records_done=current.records, started_at=current.started_at.isoformat())
        self.budget.ensure(self.connector.api_calls, 1)
        with self._paged(connector.full_pages(current.position)) as pages:
            for page, position in pages:
                current = self._full_page(current, page, position)
        if not current.pulled:  # an empty listing: nothing was paged
            with self.store.transaction() as tx:
                full_pulls.save(tx, self.name, current.after_page(None, current.newest, 0))
        return current.newest

    def _full_page(self, current: FullPullMark, page: Sequence[Person], position: str | None
                   ) -> FullPullMark:
        """Store one page of a full pull with the position after it; the mark after it."""
        self.pulled.read += len(page)
        stamps = [p.updated_at for p in page if p.updated_at is not None]
        newest = max([*stamps, *([current.newest] if current.newest else [])], default=None)
        current = current.after_page(position, newest, len(page))
        self.store_page(page, drop_unchanged=False, mark=self._marker(current), touch=False)
        self._report(f"pull {self.name}", len(page))
        if position is not None:
            self._next_page()
        return current

    def _paged(self, pages: Iterable[P]) -> AbstractContextManager[Iterator[P]]:
        """The pages of a listing, the next one asked for while this one is stored
        (syncer/run/lanes.py read_ahead). Not under a daily API budget: there each page is
        asked only once the budget allows it (_next_page)."""
        if self.budget.budget is not None:
            return nullcontext(iter(pages))
        return closing(read_ahead(iter(pages)))

    def _marker(self, current: FullPullMark) -> Callable[[Connection], None]:
        return lambda tx: full_pulls.save(tx, self.name, current)

    def _echo_windows(self, since: datetime | None) -> list[EchoWindow]:
        """The stretches of our own writes to leave out of an incremental pull (none on a
        full pull, or when the connector cannot leave any out)."""
        if since is None or not isinstance(self.connector, LeavesOutEchoes):
            return []
        with self.store.engine.connect() as connection:
            return echo_store.merged(echo_store.windows(connection, self.name, since),
                                     MAX_ECHO_WINDOWS)

    def _report(self, task: str, done: int) -> None:
        """Tell a watching display (syncer/observe/progress.py) what this page brought."""
        budget = self.budget.budget
        progress.current().advance(
            task, done, calls=self.connector.api_calls,
            calls_left=None if budget is None else max(budget - self.budget.used, 0))

    def _next_page(self) -> None:
        if self.should_stop():
            raise SyncStopped
        self.budget.ensure(self.connector.api_calls, 1)

    def _people(self, cursor: datetime | None, skip: Sequence[EchoWindow]) -> datetime | None:
        """Store each page with each record's person decided; people resume from the
        newest modification time seen (the CRM's clock), minus an overlap. Returns that
        time."""
        newest = cursor
        self.budget.ensure(self.connector.api_calls, 1)
        since = cursor - CURSOR_OVERLAP if cursor else None
        pages = (self.connector.people(since, [(w.start, w.end) for w in skip])
                 if skip and isinstance(self.connector, LeavesOutEchoes)
                 else self.connector.people(since))
        tails = EchoTails(skip)
        with self._paged(pages) as paged:
            for page in paged:
                self.pulled.read += len(page)
                stamps = [p.updated_at for p in page if p.updated_at is not None]
                if stamps:
                    newest = max(newest, *stamps) if newest else max(stamps)
                tails.note(page, self.store_page(page, drop_unchanged=cursor is not None))
                self._report(f"pull {self.name}", len(page))
                self._next_page()
        if skip:
            with self.store.transaction() as tx:
                for end, new_end in tails.grown():
                    echo_store.grow(tx, self.name, end, new_end)
        return newest

    def store_page(self, page: Sequence[Person], *, drop_unchanged: bool,
                   mark: Callable[[Connection], None] | None = None,
                   touch: bool = True) -> list[Person]:
        """Store records with each one's person decided, and count their people as touched
        (unless not `touch`: a full pull decides everyone, and a set of a million keys
        would grow with the CRM); with `drop_unchanged`, re-reads that change nothing are
        left out (and returned). `mark` writes, in the same transaction, where the pull
        stands after this page."""
        same: list[Person] = []
        if drop_unchanged:
            unchanged = self.store.unchanged(self.name, page)
            same = [p for p in page if p.record_id in unchanged]
            page = [p for p in page if p.record_id not in unchanged]
        with self.store.transaction() as tx:
            keys = identity_store.resolve_keys(tx, page)
            self.store.save_records(tx, page, keys, self.now)
            if touch:  # to be decided even if this run dies before it decides them
                undecided.note(tx, keys, self.now)
            if mark is not None:
                mark(tx)
        if touch:
            self.pulled.touched.update(keys)
        self.pulled.records += len(keys)
        return same

    def _follow(self, since: datetime) -> None:
        """Follow records that stopped taking writes (converted leads, merged duplicates)
        to their successors: identity, score and history move along, the old record is
        never written again, and its parked writes are closed."""
        for page in self.connector.successions(since):
            with self.store.transaction() as tx:
                followed = identity_store.apply_successions(tx, page, self.now, self.run_id)
                stamp = RunStamp(self.now, self.run_id)
                self.store.append_audit(tx, [
                    succession_row(stamp, f.succession, f.person_key, f.folded_key,
                                   self.model_version) for f in followed])
                dead_letters.resolve(tx, self.name, [f.succession.old_id for f in followed],
                                     self.now)
                undecided.note(tx, [f.person_key for f in followed], self.now)
            for item in followed:
                self.pulled.identity[f"{self.name}.{item.succession.cause}"] += 1
                self.pulled.touched.add(item.person_key)
                if item.folded_key is not None:
                    self.pulled.touched.discard(item.folded_key)
            self._read_successors([f.succession.new_id for f in followed])
            self._next_page()

    def _read_successors(self, record_ids: Sequence[str]) -> None:
        """Read successors the state has never seen: a record a rep made while syncer's
        writes were landing (a lead converted mid-push) is stamped inside our echo window,
        which the pull leaves out."""
        with self.store.engine.connect() as connection:
            unknown = sorted(set(record_ids) - echo_store.known(connection, self.name,
                                                               record_ids))
        if not unknown or not isinstance(self.connector, ReadsByIds):
            return
        people, activities = self.connector.read_by_ids(unknown,
                                                        self.now - FIRST_PULL_HISTORY)
        self.pulled.read += len(people)
        self.store_page(people, drop_unchanged=False)
        with self.store.transaction() as tx:
            self.store.save_activities(tx, activities)
        self.pulled.activities += len(activities)

    def _activities(self) -> None:
        """Activities since the cursor; their people are touched, unless everyone is
        decided anyway (a full sync: a set of every key would grow with the CRM). Those of
        an unfinished full sync resume after its last committed activities page."""
        cursor = self.store.cursor(self.name, "activities")
        since = cursor - CURSOR_OVERLAP if cursor else self.now - FIRST_PULL_HISTORY
        if isinstance(self.connector, ResumesActivities):
            resume = self._full_pull_mark()
            if resume is not None and not resume.activities_done:
                self._full_activities(self.connector, resume, since)
                return
        with self._paged(self.connector.activities(since)) as pages:
            for activities in pages:
                keys = set() if self.pulled.everyone else self.store.person_keys_of(
                    self.name, sorted({a.record_id for a in activities}))
                with self.store.transaction() as tx:
                    self.store.save_activities(tx, activities)
                    undecided.note(tx, keys, self.now)
                self.pulled.touched.update(keys)
                self.pulled.activities += len(activities)
                self._report(f"activities {self.name}", len(activities))
                self._next_page()

    def _full_activities(self, connector: ResumesActivities, resume: FullPullMark,
                         since: datetime) -> None:
        """A full sync's activities, each page stored in one transaction with the position
        after it; a restart reads the window the killed run began (`activities_since`)
        from its last committed page. The last page also sets the activities cursor, so
        once they are all read a restart reads only what came since (by `_activities`)."""
        current = resume
        if current.activities_since is None:  # the window is fixed before the first page
            current = replace(current, activities_since=since)
            with self.store.transaction() as tx:
                full_pulls.save(tx, self.name, current)
        elif current.activity_pages:
            log.info("pull.activities_resumed", connector=self.name,
                     pages_done=current.activity_pages, activities_stored=current.activities,
                     since=current.activities_since.isoformat())
        window = current.activities_since
        assert window is not None  # set just above, or by the run that began the window
        listing = connector.activity_pages(window, current.activities_position)
        with self._paged(listing) as pages:
            for activities, position in pages:
                current = current.after_activities(position, len(activities))
                self._store_activities(activities, current)
                self.pulled.activities += len(activities)
                self._report(f"activities {self.name}", len(activities))
                if position is not None:
                    self._next_page()
        if not current.activities_done:  # a listing that yielded no page at all
            self._store_activities([], current.after_activities(None, 0))

    def _store_activities(self, activities: Sequence[Activity],
                          current: FullPullMark) -> None:
        with self.store.transaction() as tx:
            self.store.save_activities(tx, activities)
            full_pulls.save(tx, self.name, current)
            if current.activities_done:
                self.store.set_cursor(tx, self.name, "activities", self.now)
