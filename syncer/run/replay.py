"""`syncer dead-letters retry`: write parked records again, through the same Writer.

A replay writes the values that failed, not a fresh decision: the admin fixed what the CRM
objected to (a validation rule, a locked record) and wants exactly that write to go
through. Each replay is a run of its own in the run history; its writes are audited and
resolve their letters, and what fails again stays parked with one more attempt counted.

A letter whose record is gone (a converted lead, a merged-away or deleted record) is not
replayed: that write can never succeed there, and the next sync follows the record to the
one that carries on and closes the letter (syncer/run/pull.py).

A replay writes to the CRMs and the state like a sync, so it takes the same run locks
(syncer/store/locks.py) and its writes are fenced: it raises LockHeld while a sync runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timezone

from syncer.domain.accounts import ACCOUNT_OBJECT_TYPES
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.types import Decision, Person, RecordUpdate
from syncer.run.accounts import as_decision
from syncer.run.push import Item, Writer, WriteTally
from syncer.store import accounts as account_store
from syncer.store import dead_letters
from syncer.store.locks import LostLock, acquire
from syncer.store.repository import Store

#: error codes that say the record itself no longer takes writes
RECORD_GONE = frozenset({"CANNOT_UPDATE_CONVERTED_LEAD", "ENTITY_IS_DELETED",
                         "OBJECT_NOT_FOUND"})


def replay_dead_letters(loaded: LoadedConfig, store: Store,
                        connectors: Mapping[str, Connector], now: datetime,
                        connector: str | None = None,
                        ids: Collection[int] | None = None) -> tuple[str, WriteTally]:
    """Push every open letter (of `connector`, or all; only those in `ids` when given)
    except those of records that are gone (RECORD_GONE, counted in
    `tally.left_for_sync`); returns (run id, tally). A selection (`ids`, the web admin's)
    that leaves nothing to push records no run and takes no lock."""
    letters = [letter for letter in dead_letters.open_letters(store, connector)
               if letter.connector in connectors and (ids is None or letter.id in ids)]
    tally = WriteTally()
    gone = [letter for letter in letters if (letter.error_code or "") in RECORD_GONE]
    for letter in gone:
        tally.left_for_sync[letter.connector] += 1
    letters = [letter for letter in letters if letter not in gone]
    run_id = "replay-" + uuid.uuid4().hex[:9]
    if ids is not None and not letters:
        return run_id, tally
    lock = acquire(store.engine, sorted(connectors), run_id)
    try:
        with store.fenced(lock):
            return run_id, _replay(loaded, store, connectors, now, run_id, letters, tally)
    finally:
        lock.release()


def _replay(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
            now: datetime, run_id: str, letters: list[dead_letters.DeadLetter],
            tally: WriteTally) -> WriteTally:
    store.start_run(run_id, sorted({letter.connector for letter in letters}),
                    datetime.now(timezone.utc), False)
    status = "failed"
    error: str | None = None
    try:
        keys = sorted({letter.person_key for letter in letters})
        people = store.load_people(keys)
        decisions = store.decisions(keys)
        decisions.update(_account_decisions(store, letters))
        writer = Writer(loaded, store, connectors, now, run_id, tally)
        by_connector: dict[str, list[Item]] = {}
        for letter in letters:
            decision = decisions.get(letter.person_key)
            record = next((r for r in people[letter.person_key][0]
                           if r.source == letter.connector and r.record_id == letter.record_id),
                          Person(letter.connector, letter.record_id, letter.object_type, None))
            if decision is None:
                continue
            update = RecordUpdate(letter.record_id, letter.object_type, letter.fields)
            by_connector.setdefault(letter.connector, []).append((update, record, decision))
        for name, items in by_connector.items():
            writer.push(name, items)
        status = "succeeded" if not tally.failures else "partial"
    except LostLock as lost:
        status, error = "lost_lock", str(lost)
    finally:
        store.finish_run(run_id, datetime.now(timezone.utc), status,
                         {"fields_written": dict(tally.fields_written),
                          "records_written": dict(tally.records_written),
                          "failures": dict(tally.failures)}, error)
    return tally


def _account_decisions(store: Store, letters: list[dead_letters.DeadLetter]
                       ) -> dict[str, Decision]:
    """The stored decisions of the companies whose account writes are parked (their
    letters name the company key where a person's name the person), as the Writer's
    audit rows cite them."""
    keys = sorted({letter.person_key for letter in letters
                   if letter.object_type in ACCOUNT_OBJECT_TYPES})
    if not keys:
        return {}
    with store.engine.connect() as connection:
        found = account_store.decisions(connection, keys)
    return {key: as_decision(decision) for key, decision in found.items()}
