"""Pulling one connector into the store: people, successions, activities, cursors.

Every page is stored (with the identity of each record decided) before the next is read;
cursors advance only after the whole stream is stored, so a run that dies mid-pull reads
the rest again next time and loses nothing. What changed is reported back as the person
keys to re-qualify.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from syncer.domain.connector import Connector
from syncer.observe import progress
from syncer.run.audit_trail import RunStamp, succession_row
from syncer.run.budget import DailyBudget
from syncer.store import dead_letters
from syncer.store import identity as identity_store
from syncer.store.repository import Store

log = structlog.get_logger(__name__)

#: Records and activities are re-pulled from this long before the saved cursor, to catch
#: late arrivals and changes made in the same second as the cursor.
CURSOR_OVERLAP = timedelta(minutes=5)
#: How far back the first pull of activities reaches.
FIRST_PULL_HISTORY = timedelta(days=365)


class SyncStopped(Exception):
    """A stop was requested; the run ended after its current batch, state consistent."""


@dataclass
class Pulled:
    """What one connector's pull brought in."""

    records: int = 0
    activities: int = 0
    #: person keys whose records or activities changed (to re-qualify)
    touched: set[str] = field(default_factory=set)
    #: "<connector>.converted" / "<connector>.merged": records followed to a successor
    identity: Counter[str] = field(default_factory=Counter)


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
        """People (all on a full pull, else those changed since the cursor), then the
        records that stopped taking writes, then activities; cursors last."""
        people_cursor = None if full else self.store.cursor(self.name, "people")
        newest = self._people(people_cursor)
        if people_cursor is not None:  # a first pull has nothing to follow
            self._follow(people_cursor - CURSOR_OVERLAP)
        self._activities()
        with self.store.transaction() as tx:
            self.store.set_cursor(tx, self.name, "activities", self.now)
            if newest is not None:
                self.store.set_cursor(tx, self.name, "people", newest)
        log.info("pull.done", connector=self.name, records=self.pulled.records,
                 activities=self.pulled.activities, incremental=people_cursor is not None)
        return self.pulled

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

    def _people(self, cursor: datetime | None) -> datetime | None:
        """Store each page with each record's person decided; people resume from the
        newest modification time seen (the CRM's clock), minus an overlap. Returns that
        time."""
        newest = cursor
        self.budget.ensure(self.connector.api_calls, 1)
        for page in self.connector.people(cursor - CURSOR_OVERLAP if cursor else None):
            stamps = [p.updated_at for p in page if p.updated_at is not None]
            if stamps:
                newest = max(newest, *stamps) if newest else max(stamps)
            if cursor is not None:  # drop re-reads that change nothing
                same = self.store.unchanged(self.name, page)
                page = [p for p in page if p.record_id not in same]
            with self.store.transaction() as tx:
                keys = identity_store.resolve_keys(tx, page)
                self.store.save_records(tx, page, keys, self.now)
            self.pulled.touched.update(keys)
            self.pulled.records += len(keys)
            self._report(f"pull {self.name}", len(page))
            self._next_page()
        return newest

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
            for item in followed:
                self.pulled.identity[f"{self.name}.{item.succession.cause}"] += 1
                self.pulled.touched.add(item.person_key)
                if item.folded_key is not None:
                    self.pulled.touched.discard(item.folded_key)
            self._next_page()

    def _activities(self) -> None:
        cursor = self.store.cursor(self.name, "activities")
        since = cursor - CURSOR_OVERLAP if cursor else self.now - FIRST_PULL_HISTORY
        for activities in self.connector.activities(since):
            with self.store.transaction() as tx:
                self.store.save_activities(tx, activities)
            self.pulled.touched.update(self.store.person_keys_of(
                self.name, sorted({a.record_id for a in activities})))
            self.pulled.activities += len(activities)
            self._report(f"activities {self.name}", len(activities))
            self._next_page()
