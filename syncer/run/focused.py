"""The pull stage of a focused run: just the people inbound events name, read now.

A scheduled run pulls whatever changed since its cursors; a focused run (`run_sync(...,
focus=Focus(...))`) replaces that stage with this one and keeps every other: the same run
lock, fencing, decisions, writes and audit rows, so a webhook's person is qualified exactly
as the next scheduled sync would qualify them, only minutes earlier. Cursors are left
alone: the scheduled pull still reads these records later and finds nothing new in them.

- CRM events name record ids: each connector re-reads them by id (Connector.read_by_ids)
  with their activities since its activity cursor.
- Hand-raises (generic webhooks, list imports) carry a person and an activity: they are
  stored as a record of their source (record id: the email), which the identity code joins
  to the CRM people with that email; those people's CRM records are re-read too, so the
  decision and the diff see what the CRMs hold now. A person no CRM holds follows the
  creation gate like anyone else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from syncer.domain.connector import Connector
from syncer.domain.inbound import PERSON_FIELDS, HandRaise
from syncer.domain.types import Activity, Person
from syncer.run.budget import DailyBudget
from syncer.run.pull import CURSOR_OVERLAP, FIRST_PULL_HISTORY, Pulled
from syncer.store import identity as identity_store
from syncer.store import undecided
from syncer.store.repository import Store

log = structlog.get_logger(__name__)


@dataclass
class Focus:
    """What a focused run reads: record ids per connector, hand-raises per source."""

    records: dict[str, set[str]] = field(default_factory=dict)
    hand_raises: dict[str, list[HandRaise]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.records.values()) or any(self.hand_raises.values())

    def add_record(self, connector: str, record_id: str) -> None:
        self.records.setdefault(connector, set()).add(record_id)

    def add_hand_raise(self, source: str, hand_raise: HandRaise) -> None:
        self.hand_raises.setdefault(source, []).append(hand_raise)


class FocusedPull:
    """Stores what a Focus names, read fresh; `pulled.touched` are the people to decide."""

    def __init__(self, store: Store, connectors: Mapping[str, Connector], now: datetime,
                 budgets: Mapping[str, DailyBudget]) -> None:
        self.store = store
        self.connectors = connectors
        self.now = now
        self.budgets = budgets
        self.pulled: dict[str, Pulled] = {}

    def run(self, focus: Focus) -> set[str]:
        touched: set[str] = set()
        wanted = {name: set(ids) for name, ids in focus.records.items()
                  if name in self.connectors}
        for source, raises in sorted(focus.hand_raises.items()):
            keys = self._store_hand_raises(source, raises)
            touched |= keys
            for records, _ in self.store.load_people(sorted(keys)).values():
                for record in records:
                    if record.source in self.connectors:
                        wanted.setdefault(record.source, set()).add(record.record_id)
        for name, ids in sorted(wanted.items()):
            touched |= self._reread(name, sorted(ids))
        log.info("focus.pulled", people=len(touched),
                 records={name: len(ids) for name, ids in wanted.items()},
                 hand_raises={s: len(r) for s, r in focus.hand_raises.items()})
        return touched

    def _tally(self, name: str) -> Pulled:
        return self.pulled.setdefault(name, Pulled())

    def _store_hand_raises(self, source: str, raises: list[HandRaise]) -> set[str]:
        """One record per email (the latest hand-raise's fields), every activity."""
        records: dict[str, Person] = {}
        activities: list[Activity] = []
        for hand_raise in raises:
            records[hand_raise.email] = hand_raise.record(source)
            activity = hand_raise.activity_of(source)
            if activity is not None:
                activities.append(activity)
        people = list(records.values())
        with self.store.transaction() as tx:
            keys = identity_store.resolve_keys(tx, people)
        known = {(r.source, r.record_id): r
                 for stored, _ in self.store.load_people(sorted(set(keys))).values()
                 for r in stored}
        people = [_filled(p, known.get((p.source, p.record_id))) for p in people]
        with self.store.transaction() as tx:
            self.store.save_records(tx, people, keys, self.now)
            self.store.save_activities(tx, activities)
            undecided.note(tx, keys, self.now)
        self._tally(source).records += len(people)
        self._tally(source).activities += len(activities)
        return set(keys)

    def _reread(self, name: str, ids: list[str]) -> set[str]:
        """Re-read records of one connector by id, store them and their activities; the
        people of ids it no longer returns are re-decided from what the state holds."""
        connector = self.connectors[name]
        budget = self.budgets.get(name)
        if budget is not None:
            budget.ensure(connector.api_calls, 1 + len(ids))
        cursor = self.store.cursor(name, "activities")
        since = cursor - CURSOR_OVERLAP if cursor else self.now - FIRST_PULL_HISTORY
        people, activities = connector.read_by_ids(ids, since)
        stored = self.store.person_keys_of(name, ids)  # also those it no longer returns
        with self.store.transaction() as tx:
            keys = identity_store.resolve_keys(tx, people)
            self.store.save_records(tx, people, keys, self.now)
            self.store.save_activities(tx, activities)
            undecided.note(tx, stored.union(keys), self.now)
        tally = self._tally(name)
        tally.records += len(people)
        tally.activities += len(activities)
        touched = set(keys) | stored
        tally.touched |= touched
        return touched


def _filled(new: Person, old: Person | None) -> Person:
    """A hand-raise's record with the blanks it leaves filled from the source's earlier
    one: a webinar tool that sends only the email must not erase the company it sent
    before."""
    if old is None:
        return new
    blanks = {name: getattr(old, name) for name in PERSON_FIELDS
              if getattr(new, name) in (None, "") and getattr(old, name) not in (None, "")}
    return replace(new, **blanks) if blanks else new


def pull_focus(focus: Focus, store: Store, connectors: Mapping[str, Connector], now: datetime,
               budgets: Mapping[str, DailyBudget], records: Counter[str],
               activities: Counter[str]) -> set[str]:
    """The focused run's pull stage: what `focus` names, stored; returns the person keys
    to decide (and adds what was read to the run's `records`/`activities` tallies)."""
    puller = FocusedPull(store, connectors, now, budgets)
    touched = puller.run(focus)
    for name, pulled in puller.pulled.items():
        records[name] += pulled.records
        activities[name] += pulled.activities
    return touched
