"""How far a full sync's deciding got, so a run killed while deciding a million people is
carried on after the last one whose writes were sent, not from the first person again.

A full sync decides everyone in person-key order, a chunk at a time. A chunk's decisions
are stored before its writes are queued, and writes wait in `Sync.pending` until they
fill a whole batch, so a chunk is only done once none of its people's writes is still
waiting: then its writes are either answered or on the wire with their intents committed
(recovery closes those). After each chunk `DecidedSoFar` saves the last key of the
newest such chunk (syncer/store/full_pulls.py, `full_decides`).

The next run goes on from there only when nothing it would skip can have changed:
- the same day and the same model version (scores decay daily; a new model decides
  everyone again);
- people at or before the mark whom this run's pull touched (or whose SLA ran out) are
  decided again, before the rest;
- no accounts stage (a company is decided from all its people, noted as they are decided)
  and no shared fields (their agreed values are stored once the run's writes are done):
  with either, everyone is decided again, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import structlog

from syncer.store import full_pulls
from syncer.store.full_pulls import DecidedMark
from syncer.store.repository import Store

log = structlog.get_logger(__name__)


class DecidedSoFar:
    """The deciding mark of one full sync: read where a killed run left it, then moved on
    as chunks are done."""

    def __init__(self, store: Store, connectors: Sequence[str], now: datetime,
                 model_version: str, run_id: str) -> None:
        self.store = store
        self.connectors = list(connectors)
        self.day = now.date().toordinal()
        self.model_version = model_version
        self.run_id = run_id
        self.saved: str | None = None
        self.people = 0
        #: chunks decided after the saved key, not yet saved: (last key, people)
        self.ends: list[tuple[str, int]] = []
        #: routing's account index entries gained while deciding (Decider.indexed), by
        #: the person who gave them: saved with the mark that covers that person
        self.indexed: list[tuple[str, str, str]] = []
        #: the account index saved so far: the one routing started from, and the
        #: entries gained up to the mark (a resumed run starts from it)
        self.accounts: dict[str, str] = {}
        #: entries of routing's account index as the deciding began (see chunk_done)
        #: not saved yet: all of them until the first mark; none on a resumed run, whose
        #: index is the one saved
        self.base: dict[str, str] | None = None

    @classmethod
    def of_full_sync(cls, store: Store, connectors: Sequence[str], now: datetime,
                     model_version: str, run_id: str) -> DecidedSoFar | None:
        """The mark of the run's full sync; None when some connector has none unfinished
        (a first pull of a connector that cannot resume one): nothing is saved then."""
        with store.engine.connect() as connection:
            if not full_pulls.unfinished(connection, connectors):
                return None
        return cls(store, connectors, now, model_version, run_id)

    def resume(self) -> DecidedMark | None:
        """The mark a killed run left, when this run may go on from it (same day, same
        model version), with the account index entries saved up to it; else None, and
        deciding starts over (the entries of an earlier deciding are forgotten)."""
        with self.store.engine.connect() as connection:
            mark = full_pulls.decided(connection, self.connectors)
            if mark is not None and (mark.decided_on, mark.model_version) == (
                    self.day, self.model_version):
                self.accounts = full_pulls.decided_accounts(connection)
                self.base, self.saved, self.people = {}, mark.after_key, mark.people
                log.info("decide.resumed", after_key=mark.after_key, people_done=mark.people,
                         run_id=mark.run_id)
                return mark
        if mark is not None:
            log.info("decide.starts_over", after_key=mark.after_key, decided_on=mark.decided_on,
                     model_version=mark.model_version)
        with self.store.transaction() as tx:
            full_pulls.forget_decided_accounts(tx)
        return None

    def chunk_done(self, keys: Sequence[str], indexed: Sequence[tuple[str, str, str]],
                   index: Mapping[str, str], waiting: Iterable[str]) -> None:
        """A chunk is decided and its writes queued: note the account index entries it
        gained (`indexed`, of routing's `index`; before the first chunk the index is
        what deciding began from), then save the newest chunk done (`_sent_through`)."""
        if self.base is None:
            gained = {account for _, account, _ in indexed}
            self.base = {account: owner for account, owner in index.items()
                         if account not in gained}
        self.indexed.extend(indexed)
        self._chunk_decided(keys)
        self._sent_through(waiting)

    def _chunk_decided(self, keys: Sequence[str]) -> None:
        """A chunk of the key-ordered pages is decided and its writes queued (the people
        decided again at or before the mark are not part of it)."""
        if keys and (self.saved is None or keys[0] > self.saved):
            self.ends.append((keys[-1], len(keys)))

    def _sent_through(self, waiting: Iterable[str]) -> None:
        """Save the newest chunk none of whose people has a write still `waiting` (the
        person keys of the writes not yet sent), with the account index entries its
        people and those before gave (first given first kept, as routing keeps them)."""
        first = min(waiting, default=None)
        done = [end for end in self.ends if first is None or end[0] < first]
        if not done:
            return
        self.ends = self.ends[len(done):]
        self.people += sum(people for _, people in done)
        self.saved = saved = done[-1][0]
        gained, self.base = dict(self.base or {}), {}  # the first mark: the index begun from
        for _, account, owner in (entry for entry in self.indexed if entry[0] <= saved):
            if account not in self.accounts and account not in gained:
                gained[account] = owner
        self.indexed = [entry for entry in self.indexed if entry[0] > saved]
        with self.store.transaction() as tx:
            full_pulls.save_decided(tx, self.connectors, DecidedMark(
                saved, self.day, self.model_version, self.people, self.run_id), gained)
        self.accounts.update(gained)
