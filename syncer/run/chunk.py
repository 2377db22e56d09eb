"""The stages of one run between pull and push, for one chunk of people at a time.

`Sync` holds the state of one run (syncer/run/pipeline.py drives it in order): pull each
connector, pick the people to qualify, then per chunk decide each person, settle shared
fields, diff against the CRM, store the decisions and queue the writes, which `flush`
pushes in whole batches of the API's largest size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog
from sqlalchemy import Connection

from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.identity import merge_order
from syncer.domain.types import Activity, Decision, Person, Reason
from syncer.observe.logs import log_context, redact_text
from syncer.qualify import Model
from syncer.qualify.accounts import account_summary
from syncer.run.accounts import AccountStage, role_values
from syncer.run.audit_trail import AuditRow, RunStamp, duplicate_row
from syncer.run.budget import DailyBudget
from syncer.run.create import Creator
from syncer.run.decide import Decider
from syncer.run.decided_so_far import DecidedSoFar
from syncer.run.diff import desired_values, record_update, respect_manual_edits
from syncer.run.field_policy import SharedWrites, as_settled, settle_shared_fields
from syncer.run.lanes import Lane, Wire, run_lanes
from syncer.run.ledger import new_run_id
from syncer.run.pull import Pulled, Puller
from syncer.run.push import REASON_CHARS, Item, Sending, Writer, planned_writes
from syncer.run.summary import RunSummary, decision_changed
from syncer.store import identity as identity_store
from syncer.store import model_versions, person_pages, shared_values, stage_history, undecided
from syncer.store import routing as routing_store
from syncer.store import written as written_store
from syncer.store.repository import Store
from syncer.store.stage_history import StageRow

log = structlog.get_logger(__name__)

#: counter per connector: the UTC day (ordinal) everyone was last re-scored.
RESCORED_PREFIX = "rescored."

#: a record, the decision behind its write and the field values it should hold
Wanted = tuple[Person, Decision, dict[str, str | None]]
#: as Wanted, plus the fields kept because a person set them by hand
Held = tuple[Person, Decision, dict[str, str | None], dict[str, str | None]]
People = Mapping[str, tuple[list[Person], list[Activity]]]


@dataclass
class ChunkDecisions:
    """What deciding one chunk produced, before anything is stored or pushed."""

    people: People
    decisions: list[Decision] = field(default_factory=list)
    wanted: dict[str, list[Wanted]] = field(default_factory=dict)
    duplicates: dict[tuple[str, str], tuple[str, Decision]] = field(default_factory=dict)
    history: list[StageRow] = field(default_factory=list)
    #: each person's records (precedence order) and decision, for the accounts stage
    decided: list[tuple[list[Person], Decision]] = field(default_factory=list)


class ToQualify:
    """The people a run decides: `listed`, or (None) everyone of the connectors, paged
    from the state in key order so that only one chunk of keys is held at a time; when a
    full sync's deciding resumes, everyone `after` that key, the `again` listed first."""

    def __init__(self, store: Store, connectors: Sequence[str], listed: list[str] | None,
                 *, after: str | None = None, again: Sequence[str] = ()) -> None:
        self.store = store
        self.connectors = list(connectors)
        self.listed = listed
        self.after = after
        self.again = list(again)
        #: how many people (one COUNT query when everyone)
        self.total = len(listed) if listed is not None \
            else len(self.again) + person_pages.count(store, self.connectors, after)

    def chunks(self, size: int) -> Iterator[list[str]]:
        if self.listed is not None:
            yield from (self.listed[i:i + size] for i in range(0, len(self.listed), size))
        else:
            yield from (self.again[i:i + size] for i in range(0, len(self.again), size))
            yield from person_pages.pages(self.store, self.connectors, size, self.after)


class Sync:
    """The state of one run; `run_sync` (syncer/run/pipeline.py) is the entry point."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 model: Model, now: datetime, dry_run: bool,
                 should_stop: Callable[[], bool] = lambda: False, full: bool = False,
                 run_id: str | None = None) -> None:
        self.should_stop = should_stop
        self.full = full
        #: a pull read (or finished reading) every record: everyone is decided this run
        self.full_pulled = False
        #: a full sync's deciding, saved as it goes so that a killed run resumes it
        self.decided_so_far: DecidedSoFar | None = None
        self.touched: set[str] = set()
        #: per connector, writes decided but not yet pushed (see flush)
        self.pending: dict[str, list[Item]] = {}
        #: batches on the wire, their outcomes not yet recorded (see settle)
        self.sending: list[Sending] = []
        self.wire: Wire | None = None
        self.connector_order = [c.name for c in loaded.config.connectors]
        self.loaded = loaded
        self.store = store
        self.connectors = connectors
        self.model = model
        self.now = now
        self.summary = RunSummary(run_id=run_id or new_run_id(), dry_run=dry_run)
        self.decider = Decider(loaded, store, model, now, self.summary.run_id)
        self._log = log.bind(run_id=self.summary.run_id)
        self.writer = Writer(loaded, store, connectors, now, self.summary.run_id, self.summary)
        self.creator = Creator(loaded, store, connectors, now, self.summary.run_id,
                               self.summary.creation)
        self.kinds = {c.name: c.kind for c in loaded.config.connectors}
        #: per person: the shared fields settled this run (their bases are stored once
        #: the writes are done, without the fields whose write failed)
        self.settled: dict[str, SharedWrites] = {}
        self.failed_refs: set[tuple[str, str]] = set()
        active = model_versions.rollback_of(model_versions.active(store))
        #: the model rollback this run decides under, if one is in effect
        self.rollback = active if active is not None and active.to_version == model.version \
            else None
        self.budgets = {name: DailyBudget(store, name, loaded.connector(name).daily_api_budget,
                                          now, connector.api_calls)
                        for name, connector in connectors.items()}
        #: the accounts stage (run/accounts.py), when the model scores accounts
        self.accounts = AccountStage(loaded, store, connectors, model, now, self.budgets,
                                     should_stop) if AccountStage.wanted(model) else None
        if self.accounts is not None:
            self.decider.account_of = self.accounts.owner_of

    # -- pull --------------------------------------------------------------------------
    def pull(self, names: Sequence[str]) -> None:
        """Pull the connectors (syncer/run/pull.py) all at once, a lane each
        (syncer/run/lanes.py): each mostly waits on its own CRM, so one's waits overlap
        the others' work. What each brought in counts even when the run stops part way;
        a lane that fails stops the others at their next page. The companies of each
        follow, once every person is in."""
        pullers: dict[str, Puller] = {}

        def lane(name: str) -> Lane[None]:
            def pull(aborted: threading.Event) -> None:
                pullers[name] = puller = Puller(
                    self.store, self.connectors[name], now=self.now,
                    run_id=self.summary.run_id, model_version=self.model.version,
                    budget=self.budgets[name],
                    should_stop=lambda: aborted.is_set() or self.should_stop())
                with log_context(connector=name):
                    puller.run(self.full)
            return pull

        try:
            run_lanes({name: lane(name) for name in names})
        finally:
            for name in names:  # in the run's order, whichever lane ended first
                if name in pullers:
                    self._count(name, pullers[name].pulled)
        if self.accounts is not None:
            for name in names:
                with log_context(connector=name):
                    self.accounts.pull(name, self.full)

    def _count(self, name: str, pulled: Pulled) -> None:
        """Add what one connector's pull brought in to the run's tally."""
        self.touched |= pulled.touched
        self.summary.records_pulled[name] += pulled.records
        self.summary.activities_pulled[name] += pulled.activities
        self.summary.identity.update(pulled.identity)
        self.full_pulled = self.full_pulled or pulled.everyone

    def keys_to_qualify(self, selected: Sequence[str]) -> tuple[ToQualify, bool]:
        """Everyone in the pulled connectors on a full run or the day's first run (scores
        decay with time, so each person is re-scored at least daily); otherwise only the
        people whose records or activities changed, and those whose speed-to-lead SLA ran
        out since (syncer/run/sla.py), with accounts the people a changed company may now
        include (run/accounts.py), and the people an earlier run pulled but did not
        decide (syncer/store/undecided.py). Returns (keys, everyone?)."""
        today = self.now.date().toordinal()
        everyone = self.full or self.full_pulled or any(
            self.store.counter(RESCORED_PREFIX + name) < today for name in selected)
        placed, all_of_them = self.accounts.people_to_place(everyone) \
            if self.accounts is not None else ([], False)
        due = [*(self.decider.sla.due_keys() if self.decider.sla is not None else []),
               *self.pending_keys()]
        if everyone or all_of_them:
            return self._everyone(selected, due), True
        return ToQualify(self.store, selected, sorted(self.touched.union(due, placed))), False

    def forget_decided(self, tx: Connection, keys: ToQualify) -> None:
        """The people (`keys`: everyone of the run's connectors when not listed) and the
        companies this run decided, their writes sent: no longer waiting to be decided
        (the run's last transaction; syncer/store/undecided.py)."""
        if keys.listed is None:
            undecided.forget_people_of(tx, keys.connectors)
        else:
            undecided.forget(tx, keys.listed)
        if self.accounts is not None:
            self.accounts.forget_decided(tx)

    def pending_keys(self) -> list[str]:
        """The people noted as pulled and not decided (this run's pull and any earlier
        run's that stopped before deciding them)."""
        with self.store.engine.connect() as connection:
            return undecided.keys(connection)

    def _everyone(self, selected: Sequence[str], due: Sequence[str]) -> ToQualify:
        """Everyone; for a full sync (not a dry run) with its deciding saved as it goes
        (syncer/run/decided_so_far.py), from where a killed run left it, the people
        before that whom this run touched, whose SLA ran out or who wait undecided
        decided again first."""
        if not self.full_pulled or self.summary.dry_run or self.accounts is not None \
                or self.loaded.config.shared_fields:
            return ToQualify(self.store, selected, None)
        self.decided_so_far = so_far = DecidedSoFar.of_full_sync(
            self.store, selected, self.now, self.model.version, self.summary.run_id)
        mark = so_far.resume() if so_far is not None else None
        if so_far is None or mark is None:
            return ToQualify(self.store, selected, None)
        self.decider.carry_accounts(so_far.accounts)
        again = sorted(k for k in self.touched.union(due) if k <= mark.after_key)
        return ToQualify(self.store, selected, None, after=mark.after_key, again=again)

    # -- decide, diff and push -------------------------------------------------------------
    def process_chunk(self, keys: Sequence[str]) -> None:
        """Decide a chunk, then (unless a dry run, which only lists the planned writes)
        store the decisions and queue the writes and creations."""
        chunk = self._decide_chunk(keys)
        updates = {name: self._diff(name, items) for name, items in chunk.wanted.items()}
        if self.summary.dry_run:
            for name, (items, _) in updates.items():
                for update, record, decision in items:
                    self.summary.planned.extend(planned_writes(name, update, record, decision,
                                                               with_reason=True))
            if self.accounts is not None:
                self.accounts.note(chunk.decided, dry_run=True)
            return
        with self.store.transaction() as tx:
            self.store.save_decisions(tx, chunk.decisions, self.now)
            stage_history.append(tx, chunk.history)
            routing_store.save_positions(self.store, tx, self.decider.positions)
            routing_store.save_assignments(tx, self.decider.new_assignments)
            self._flag_duplicates(tx, chunk.people, chunk.duplicates)
        self.decider.new_assignments = []
        if self.accounts is not None:
            self.accounts.note(chunk.decided, dry_run=False)
        self._queue(updates)
        if self.decided_so_far is not None:
            self.decided_so_far.chunk_done(
                keys, self.decider.indexed, self.decider.account_owners,
                waiting=(decision.key for items in self.pending.values()
                         for _, _, decision in items))

    def _decide_chunk(self, keys: Sequence[str]) -> ChunkDecisions:
        """Each person's decision, the field values each of their records should hold and
        the creations the gate lets through (queued in the creator, not yet sent)."""
        people = self.store.load_people(keys)
        previous = self.store.decisions(keys, scores=False)
        self.decider.indexed = []  # the account index entries this chunk gains
        specs = self.loaded.config.shared_fields
        bases = shared_values.load(self.store, keys) if specs else {}
        undone = self._undo_rolled_back(previous)
        ids: dict[str, list[str]] = {}
        for records, _ in people.values():
            for record in records:
                ids.setdefault(record.source, []).append(record.record_id)
        self.decider.written = {name: written_store.written_state(self.store, name, record_ids)
                                for name, record_ids in ids.items()}
        chunk = ChunkDecisions(people)
        for key in keys:
            stored_records, activities = people[key]
            if not stored_records:
                continue
            records = merge_order(stored_records, self.connector_order)
            twins = identity_store.primary_records(records)
            live = [r for r in records if (r.source, r.record_id) not in twins]
            shared = self._settle(key, live, bases.get(key, {}))
            decision = self.decider.decide(key, as_settled(records, specs, shared), activities,
                                           undone.get(key, previous.get(key)))
            chunk.decisions.append(decision)
            chunk.decided.append((records, decision))
            crm_stage = max(self.decider.crm_stages(records), key=lambda s: s.rank, default=None)
            chunk.history.extend(stage_history.transitions(
                previous.get(key), decision, crm_stage, self.now, self.summary.run_id,
                cause="rollback" if key in undone else None))
            self.summary.decisions_changed += decision_changed(previous.get(key), decision)
            self.summary.people += 1
            self.summary.stages[decision.stage.value] += 1
            chunk.duplicates.update({pair: (primary, decision) for pair, primary in twins.items()})
            self._want(chunk, live, decision, shared)
            for name in self.creator.targets(records):
                values = desired_values(self.loaded.connector(name), decision,
                                        self.decider.directories[name])
                self.creator.consider(name, records, decision, values, self.summary.dry_run)
        return chunk

    def _want(self, chunk: ChunkDecisions, live: Sequence[Person], decision: Decision,
              shared: SharedWrites) -> None:
        """The values each live record of a connector in this run should hold."""
        for record in live:
            if record.source in self.connectors:
                config = self.loaded.connector(record.source)
                values = desired_values(config, decision,
                                        self.decider.directories[record.source])
                values.update(shared.writes.get((record.source, record.record_id), {}))
                values.update(role_values(config.fields.buying_role, live, self.model))
                chunk.wanted.setdefault(record.source, []).append(
                    (record, _with_shared_reasons(decision, shared, record), values))

    def _queue(self, updates: Mapping[str, tuple[list[Item], list[Held]]]) -> None:
        """Audit the hand-set fields kept, queue the writes, send the creations (within the
        budget) and push whatever fills a whole batch."""
        for name, (items, held) in updates.items():
            self.writer.hold(name, held)
            self.pending.setdefault(name, []).extend(items)
        for name, queued in self.creator.pending.items():
            # One call per batch of creations, room for a retry, and the link lookups.
            batches = -(-len(queued) // self.connectors[name].max_batch)
            self.budgets[name].ensure(self.connectors[name].api_calls, 3 * batches)
        if any(self.creator.pending.values()):  # a creation calls the CRMs in this thread
            self.settle()
        for name, owed in self.creator.flush().items():
            self.pending.setdefault(name, []).extend(owed)
        self.flush(final=False)

    def decide_accounts(self) -> None:
        """Decide the companies this run touched and queue their writes with the people's
        (a dry run stores no decision and lists the writes as planned)."""
        if self.accounts is None:
            return
        self.settle()  # the people's writes recorded before their companies are decided
        dry_run = self.summary.dry_run
        decided, writes = self.accounts.decide(dry_run=dry_run)
        by_key = {d.key: d for d in decided}
        for name, items in writes.items():
            if dry_run:  # each planned write says why in the account's own words
                for update, record, decision in items:
                    why = account_summary(by_key[decision.key], REASON_CHARS)
                    self.summary.planned.extend(
                        replace(planned, reason=why)
                        for planned in planned_writes(name, update, record, decision))
            else:
                self.pending.setdefault(name, []).extend(items)

    def _undo_rolled_back(self, previous: Mapping[str, Decision]) -> dict[str, Decision | None]:
        """Under a model rollback, the people whose last decision the rolled-back version
        made start from the stage they had before it moved them (None: from scratch), so
        the run writes the previous decisions back, stages included; once re-decided under
        the restored version they are left alone."""
        if self.rollback is None:
            return {}
        rolled = [k for k, d in previous.items() if d.model_version == self.rollback.from_version]
        if not rolled:
            return {}
        before = stage_history.stages_before(self.store, rolled, self.rollback.from_version)
        return {key: replace(previous[key], stage=stage) if stage is not None else None
                for key, stage in before.items()}

    def _settle(self, key: str, live: Sequence[Person],
                base: Mapping[str, str | None]) -> SharedWrites:
        """Which shared field values each record should hold (see syncer/run/field_policy.py)."""
        specs = self.loaded.config.shared_fields
        if not specs:
            return SharedWrites({}, {})
        shared = settle_shared_fields(specs, live, base, self.kinds, self.connector_order)
        if shared.base and not self.summary.dry_run:
            self.settled[key] = shared
        return shared

    def save_shared_bases(self) -> None:
        """Store the agreed value of each settled shared field, except where a write to
        one of its records failed: the next run must see that change again."""
        if not self.settled:
            return
        rows = [row for key, shared in self.settled.items()
                for row in shared_values.rows(key, shared.base_after(self.failed_refs),
                                              self.now)]
        with self.store.transaction() as tx:
            shared_values.save(self.store, tx, rows)
        self.settled = {}

    def _flag_duplicates(self, tx: Connection, people: People,
                         duplicates: Mapping[tuple[str, str], tuple[str, Decision]]) -> None:
        """Store which records are duplicates now; each newly flagged one gets one audit
        row naming the primary record (the one syncer writes), so an admin can merge them."""
        pairs = [(r.source, r.record_id) for records, _ in people.values() for r in records]
        stored = identity_store.duplicate_flags(tx, pairs)
        wanted = {pair: duplicates[pair][0] if pair in duplicates else None
                  for pair in pairs}
        changes = {pair: primary for pair, primary in wanted.items()
                   if stored.get(pair) != primary}
        identity_store.set_duplicate_flags(tx, changes)
        rows: list[AuditRow] = []
        for (source, record_id), primary in sorted(changes.items()):
            if primary is None:
                continue
            decision = duplicates[(source, record_id)][1]
            self.summary.identity[f"{source}.duplicates"] += 1
            rows.append(duplicate_row(RunStamp(self.now, self.summary.run_id), source,
                                      record_id, primary, decision))
        self.store.append_audit(tx, rows)

    def flush(self, final: bool) -> None:
        """Push what is pending in whole batches of the API's largest size; the remainder
        waits for the next chunk (or the end of the run, `final`), so a run of many chunks
        spends no more calls than one big push would. Decisions are already stored, so a
        run that stops before a flush leaves nothing that the next diff would not redo.

        The batches go on the wire in threads of their own (syncer/run/lanes.py) while the
        next chunk is decided; the next flush (or `settle`) records their outcomes first,
        so each CRM has at most one batch under way and its budget sees every call."""
        self.settle()
        for name, items in self.pending.items():
            connector = self.connectors[name]
            size = len(items) if final else len(items) // connector.max_batch \
                * connector.max_batch
            if size == 0:
                continue
            batch, self.pending[name] = items[:size], items[size:]
            batches = -(-size // connector.max_batch)
            # Room for one retry per batch, so a retry cannot cross the budget either.
            self.budgets[name].ensure(connector.api_calls, 2 * batches)
            with log_context(connector=name):
                self.sending.append(self.writer.send(name, batch, self._wire()))
        if final:
            self.settle()

    def _wire(self) -> Wire:
        if self.wire is None:
            self.wire = Wire(len(self.connectors))
        return self.wire

    def settle(self) -> None:
        """Record the outcomes of the batches on the wire, each once its answer is in. An
        error (a CRM call that gave up) is raised once every other batch is recorded; the
        failed batch's intents stay open for recovery (syncer/run/recovery.py)."""
        sending, self.sending = self.sending, []
        error: Exception | None = None
        for batch in sending:
            try:
                with log_context(connector=batch.name):
                    results = self.writer.settle(batch)
            except Exception as failed:  # raised below, after the others
                error = error or failed
                continue
            self.failed_refs.update((batch.name, r.record_id) for r in results if not r.ok)
        if error is not None:
            raise error

    def close(self) -> None:
        """At the run's end, whichever way it ends: record what is still on the wire (a
        run stopped between chunks) and end the threads. Its error is logged, not raised:
        the run ends with its own status, and intents left open are recovery's."""
        try:
            self.settle()
        except Exception as error:  # the run's own end stands
            self._log.warning("push.unsettled",
                              error=redact_text(f"{type(error).__name__}: {error}"))
        finally:
            if self.wire is not None:
                self.wire.close()
                self.wire = None

    def _diff(self, name: str, wanted: list[Wanted]) -> tuple[list[Item], list[Held]]:
        """Only real changes, minus fields a person set by hand that the config keeps."""
        keep = self.loaded.connector(name).kept_crm_fields()
        written = self.decider.written.get(name, {})
        items: list[Item] = []
        held: list[Held] = []
        for record, decision, values in wanted:
            update = record_update(record, values)
            if update is None:
                continue
            update, kept = respect_manual_edits(update, record, written, keep)
            if kept:
                held.append((record, decision, kept, values))
            if update is not None:
                items.append((update, record, decision))
        return items, held


def _with_shared_reasons(decision: Decision, shared: SharedWrites, record: Person) -> Decision:
    """The decision as the audit rows of this record's writes cite it: plus one reason per
    shared field written to it, saying which side won and why."""
    ref = (record.source, record.record_id)
    extra = tuple(Reason(f"shared.{name}", 0.0, shared.reasons.get(name, name))
                  for name, targets in sorted(shared.targets.items()) if ref in targets)
    return replace(decision, reasons=(*decision.reasons, *extra)) if extra else decision
