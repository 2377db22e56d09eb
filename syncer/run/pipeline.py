"""One sync run: pull, store, qualify, diff, push, audit.

`run_sync` is a plain function of (config, store, connectors, model, now) so the in-process
scheduler today and a PostgreSQL task queue later can both call it; every piece of state it
needs lives in the store. It knows no CRM by name: connectors translate, the core decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.api_usage import (
    RATE_LIMITED,
    RateLimitDeadline,
    open_usage_windows,
    usage_stats,
)
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.identity import merge_order
from syncer.domain.types import Activity, Decision, Person, Reason
from syncer.observe import progress
from syncer.observe.logs import log_context, redact_text
from syncer.observe.metrics import SyncMetrics
from syncer.qualify import Model
from syncer.run.audit_trail import AuditRow, RunStamp, duplicate_row
from syncer.run.budget import BudgetExhausted, DailyBudget
from syncer.run.create import CreationTally, Creator
from syncer.run.decide import Decider
from syncer.run.diff import (
    OwnerDirectory,
    desired_values,
    record_update,
    respect_manual_edits,
)
from syncer.run.field_policy import SharedWrites, as_settled, settle_shared_fields
from syncer.run.ledger import RunLedger, new_run_id
from syncer.run.pull import Puller, SyncStopped
from syncer.run.push import Item, Writer, WriteTally, planned_writes
from syncer.run.recovery import reconcile_interrupted_writes
from syncer.store import identity as identity_store
from syncer.store import model_versions, shared_values, stage_history
from syncer.store import routing as routing_store
from syncer.store import written as written_store
from syncer.store.cursor_marks import cursor_marks, rewind_cursors
from syncer.store.locks import Holder, LockHeld, LostLock, OnWait
from syncer.store.locks import acquire as acquire_run_lock
from syncer.store.repository import Store
from syncer.store.runs import SKIPPED

log = structlog.get_logger(__name__)

#: Profiles are qualified and pushed in chunks of this many, bounding memory.
CHUNK = 500
#: The status of a run that lost its lock part way (it wrote nothing after that).
LOST_LOCK = "lost_lock"
#: counter per connector: the UTC day (ordinal) everyone was last re-scored.
RESCORED_PREFIX = "rescored."


@dataclass(kw_only=True)
class RunSummary(WriteTally):
    """Everything one run did; `stats()` is what the runs table and the logs keep."""

    run_id: str
    dry_run: bool
    #: how the run ended, as run history keeps it (`skipped`: another run held the lock)
    status: str = "running"
    #: who held the lock, when the run was skipped
    held_by: Holder | None = None
    people: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    owners_assigned: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    records_pulled: Counter[str] = field(default_factory=Counter)
    activities_pulled: Counter[str] = field(default_factory=Counter)
    decisions_changed: int = 0
    api_usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    creation: CreationTally = field(default_factory=CreationTally)
    #: identity events: "<connector>.converted" / ".merged" (records followed to their
    #: successor) and ".duplicates" (records newly flagged as a duplicate, not written)
    identity: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, object]:
        return {"people": self.people, "stages": dict(self.stages),
                "owners_assigned": self.owners_assigned,
                "fields_written": dict(self.fields_written),
                "records_written": dict(self.records_written),
                "failures": dict(self.failures),
                **self.failure_stats(),
                "manual_edits_kept": dict(self.manual_edits_kept),
                "api_calls": dict(self.api_calls),
                "records_pulled": dict(self.records_pulled),
                "activities_pulled": dict(self.activities_pulled),
                "decisions_changed": self.decisions_changed,
                "created": dict(self.creation.created), "linked": dict(self.creation.linked),
                "create_failed": dict(self.creation.create_failed),
                "not_created_gate": dict(self.creation.gated),
                "identity": dict(self.identity), **usage_stats(self.api_usage)}


def decision_changed(before: Decision | None, after: Decision) -> int:
    """1 when what syncer writes (stage, score, grade, owner) differs from before."""
    def written(d: Decision) -> tuple[object, ...]:
        return d.stage, d.score, d.fit_grade, d.owner_email
    return int(before is None or written(before) != written(after))


class Sync:
    """The state of one run; `run_sync` is the entry point."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 model: Model, now: datetime, dry_run: bool,
                 should_stop: Callable[[], bool] = lambda: False, full: bool = False,
                 run_id: str | None = None) -> None:
        self.should_stop = should_stop
        self.full = full
        self.touched: set[str] = set()
        #: per connector, writes decided but not yet pushed (see flush)
        self.pending: dict[str, list[Item]] = {}
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

    # -- pull --------------------------------------------------------------------------
    def pull(self, name: str) -> None:
        """Pull one connector (syncer/run/pull.py); what it brought in counts even when the
        run stops part way."""
        with log_context(connector=name):
            puller = Puller(self.store, self.connectors[name], now=self.now,
                            run_id=self.summary.run_id, model_version=self.model.version,
                            budget=self.budgets[name], should_stop=self.should_stop)
            try:
                puller.run(self.full)
            finally:
                pulled = puller.pulled
                self.touched |= pulled.touched
                self.summary.records_pulled[name] += pulled.records
                self.summary.activities_pulled[name] += pulled.activities
                self.summary.identity.update(pulled.identity)

    def keys_to_qualify(self, selected: Sequence[str]) -> tuple[list[str], bool]:
        """Everyone in the pulled connectors on a full run or the day's first run (scores
        decay with time, so each person is re-scored at least daily); otherwise only the
        people whose records or activities changed. Returns (keys, everyone?)."""
        today = self.now.date().toordinal()
        everyone = self.full or any(
            self.store.counter(RESCORED_PREFIX + name) < today for name in selected)
        if everyone:
            return self.store.person_keys(selected), True
        return sorted(self.touched), False

    # -- diff and push -------------------------------------------------------------------
    def process_chunk(self, keys: Sequence[str]) -> None:
        people = self.store.load_people(keys)
        previous = self.store.decisions(keys, scores=False)
        specs = self.loaded.config.shared_fields
        bases = shared_values.load(self.store, keys) if specs else {}
        undone = self._undo_rolled_back(previous)
        ids: dict[str, list[str]] = {}
        for records, _ in people.values():
            for record in records:
                ids.setdefault(record.source, []).append(record.record_id)
        self.decider.written = {name: written_store.written_state(self.store, name, record_ids)
                        for name, record_ids in ids.items()}
        decisions: list[Decision] = []
        wanted: dict[str, list[tuple[Person, Decision, dict[str, str | None]]]] = {}
        duplicates: dict[tuple[str, str], tuple[str, Decision]] = {}
        history: list[dict[str, Any]] = []
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
            decisions.append(decision)
            crm_stage = max(self.decider.crm_stages(records), key=lambda s: s.rank, default=None)
            history.extend(stage_history.transitions(
                previous.get(key), decision, crm_stage, self.now, self.summary.run_id,
                cause="rollback" if key in undone else None))
            self.summary.decisions_changed += decision_changed(previous.get(key), decision)
            self.summary.people += 1
            self.summary.stages[decision.stage.value] += 1
            duplicates.update({pair: (primary, decision) for pair, primary in twins.items()})
            for record in live:
                if record.source in self.connectors:
                    config = self.loaded.connector(record.source)
                    values = desired_values(config, decision,
                                            self.decider.directories[record.source])
                    values.update(shared.writes.get((record.source, record.record_id), {}))
                    wanted.setdefault(record.source, []).append(
                        (record, _with_shared_reasons(decision, shared, record), values))
            for name in self.creator.targets(records):
                values = desired_values(self.loaded.connector(name), decision,
                                        self.decider.directories[name])
                self.creator.consider(name, records, decision, values, self.summary.dry_run)
        updates = {name: self._diff(name, items) for name, items in wanted.items()}
        if self.summary.dry_run:
            for name, (items, _) in updates.items():
                for update, record, decision in items:
                    self.summary.planned.extend(planned_writes(name, update, record, decision,
                                                               with_reason=True))
            return
        with self.store.transaction() as tx:
            self.store.save_decisions(tx, decisions, self.now)
            stage_history.append(tx, history)
            routing_store.save_positions(self.store, tx, self.decider.positions)
            routing_store.save_assignments(tx, self.decider.new_assignments)
            self._flag_duplicates(tx, people, duplicates)
        self.decider.new_assignments = []
        for name, (items, held) in updates.items():
            self.writer.hold(name, held)
            self.pending.setdefault(name, []).extend(items)
        for name, queued in self.creator.pending.items():
            # One call per batch of creations, room for a retry, and the link lookups.
            batches = -(-len(queued) // self.connectors[name].max_batch)
            self.budgets[name].ensure(self.connectors[name].api_calls, 3 * batches)
        for name, owed in self.creator.flush().items():
            self.pending.setdefault(name, []).extend(owed)
        self.flush(final=False)

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

    def _flag_duplicates(self, tx: Any,
                         people: Mapping[str, tuple[list[Person], list[Activity]]],
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
        run that stops before a flush leaves nothing that the next diff would not redo."""
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
                results = self.writer.push(name, batch)
            self.failed_refs.update((name, r.record_id) for r in results if not r.ok)

    def _diff(self, name: str, wanted: list[tuple[Person, Decision, dict[str, str | None]]]
              ) -> tuple[list[Item], list[tuple[Person, Decision, dict[str, str | None],
                                                 dict[str, str | None]]]]:
        """Only real changes, minus fields a person set by hand that the config keeps."""
        keep = self.loaded.connector(name).kept_crm_fields()
        written = self.decider.written.get(name, {})
        items: list[Item] = []
        held = []
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


def run_sync(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
             model: Model, now: datetime, *, only: Sequence[str] | None = None,
             dry_run: bool = False,
             should_stop: Callable[[], bool] = lambda: False, full: bool = False,
             metrics: SyncMetrics | None = None, wait: bool = False,
             on_wait: OnWait | None = None, tenant: str | None = None) -> RunSummary:
    """Pull the `only` connectors (all when None), then qualify every person they hold and
    push the changed fields to every CRM that person lives in.

    The run first takes the run lock of every connector in `connectors` (a run pulls some
    but writes to, creates in and reconciles intents of all of them), so no two runs that
    share a connector overlap, in this process or any other sharing the state. If another
    run holds one, this run is recorded as `skipped` and returns at once (`summary.status`,
    `summary.held_by`), or with `wait` blocks until it is free (`on_wait` called first).
    Every state write of the run is fenced by the lock (Store.fenced): a run that loses it
    ends with status `lost_lock` and writes nothing more. A run that cannot reach the state
    database is still recorded (syncer/run/ledger.py)."""
    selected = list(only) if only is not None else list(connectors)
    ledger = RunLedger(loaded, store, new_run_id(), selected, dry_run, metrics)
    summary = RunSummary(run_id=ledger.run_id, dry_run=dry_run)
    context = structlog.contextvars.bind_contextvars(
        run_id=summary.run_id, **({"connector": selected[0]} if len(selected) == 1 else {}))
    try:
        return _run(loaded, store, connectors, model, now, selected, ledger, summary,
                    dry_run=dry_run, should_stop=should_stop, full=full, wait=wait,
                    on_wait=on_wait, tenant=tenant or loaded.tenant)
    finally:
        structlog.contextvars.reset_contextvars(**context)


def _run(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
         model: Model, now: datetime, selected: list[str], ledger: RunLedger,
         summary: RunSummary, *, dry_run: bool, should_stop: Callable[[], bool], full: bool,
         wait: bool, on_wait: OnWait | None, tenant: str | None) -> RunSummary:
    """Take the locks (or record the run as skipped), then run under them."""
    try:
        ledger.replay_spool()
        lock = acquire_run_lock(store.engine, sorted(connectors), ledger.run_id,
                                tenant=tenant, wait=wait, on_wait=on_wait)
    except LockHeld as busy:
        summary.status, summary.held_by = SKIPPED, busy.holder
        summary.error = ledger.skipped(busy).error
        log.info("sync.skipped", run_id=summary.run_id, connector=busy.name,
                 held_by=busy.holder.describe() if busy.holder else None)
        return summary
    except SQLAlchemyError as error:
        ledger.unrecorded(error)
        raise
    ledger.started = datetime.now(timezone.utc)  # a run that waited starts now
    for name in sorted(connectors):
        log.info("sync.locked", connector=name)
    try:
        with store.fenced(lock):
            return _locked_run(loaded, store, connectors, model, now, selected, ledger,
                               dry_run=dry_run, should_stop=should_stop, full=full)
    finally:
        lock.release()


def _locked_run(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                model: Model, now: datetime, selected: list[str], ledger: RunLedger, *,
                dry_run: bool, should_stop: Callable[[], bool], full: bool) -> RunSummary:
    """The run itself, under its lock."""
    try:
        sync = Sync(loaded, store, connectors, model, now, dry_run, should_stop, full,
                    run_id=ledger.run_id)
        store.start_run(ledger.run_id, selected, ledger.started, dry_run)
    except SQLAlchemyError as error:
        ledger.unrecorded(error)
        raise
    summary = sync.summary
    calls_before = {name: c.api_calls for name, c in connectors.items()}
    usage = open_usage_windows(connectors)
    marks = cursor_marks(store, selected)
    status = "failed"
    try:
        for name in selected:
            sync.pull(name)
        if not dry_run:
            reconcile_interrupted_writes(
                store, selected, {n: loaded.connector(n).fields.owner for n in selected}, now,
                summary.run_id)
        for name, connector in connectors.items():
            sync.budgets[name].ensure(connector.api_calls, 2)
            sync.decider.directories[name] = OwnerDirectory.build(connector.owners())
        sync.decider.prepare_routing()
        keys, everyone = sync.keys_to_qualify(selected)
        for start in range(0, len(keys), CHUNK):
            if should_stop():
                raise SyncStopped
            sync.process_chunk(keys[start:start + CHUNK])
            progress.current().advance("qualify", len(keys[start:start + CHUNK]),
                                       total=len(keys))
        if not dry_run:
            sync.flush(final=True)
            sync.save_shared_bases()
        if everyone and not dry_run:
            with store.transaction() as tx:
                for name in selected:
                    store.set_counter(tx, RESCORED_PREFIX + name, now.date().toordinal())
        status = "succeeded" if not summary.failures else "partial"
    except SyncStopped:
        status = "stopped"
    except LostLock as lost:
        status = LOST_LOCK
        summary.error = str(lost)
        log.error("sync.lost_lock", message=str(lost))
    except BudgetExhausted as exhausted:
        status = "budget_exhausted"
        summary.error = str(exhausted)
        log.warning("sync.budget_exhausted", connector=exhausted.connector,
                    used=exhausted.used, budget=exhausted.budget,
                    resumes_at=exhausted.resumes_at.isoformat())
    except RateLimitDeadline as limited:  # waited as the API said, up to the deadline
        status, summary.error = RATE_LIMITED, str(limited)
        rewind_cursors(store, selected, marks)  # what was pulled is pulled again next run
        log.warning("sync.rate_limited", waited_seconds=round(limited.waited, 1))
    except Exception as error:
        summary.error = redact_text(f"{type(error).__name__}: {error}")[:2000]
        raise
    finally:
        summary.owners_assigned = sync.decider.owners_assigned
        for name, connector in connectors.items():
            summary.api_calls[name] = connector.api_calls - calls_before[name]
            _record_budget(sync.budgets[name], connector.api_calls)
        summary.api_usage = {name: window.close() for name, window in usage.items()}
        summary.status = ledger.finish(status, summary.stats(), summary.error).status
        log.info("sync.done", run_id=summary.run_id, status=summary.status, dry_run=dry_run,
                 **summary.stats())
    return summary


def _record_budget(budget: DailyBudget, api_calls: int) -> None:
    """Count the calls made; a run that lost its lock or the database counts them no more
    (the run is over either way, and its own end must still be recorded)."""
    try:
        budget.record(api_calls)
    except (LostLock, SQLAlchemyError) as error:
        log.warning("sync.budget_not_recorded", connector=budget.connector,
                    error=type(error).__name__)
