"""Writing field changes to one CRM and recording each outcome.

The connector writes in its largest batch; a record that failed with a retryable error
(a lock, a blip) is tried once more on its own; what still fails is parked as a dead letter.
Every field written, failed, or held back because a person set it by hand, is one audit
row, committed in the same transaction as the written values. A batch is announced before
the CRM is called (a write-ahead intent, syncer/store/intents.py) and its announcement is
deleted with its outcomes, so no crash can leave a write without its trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import structlog

from syncer.domain.accounts import ACCOUNT_OBJECT_TYPES
from syncer.domain.config import LoadedConfig, writeback_fields
from syncer.domain.connector import Connector
from syncer.domain.errors import bounded_fields, by_cause, cause_of, nest
from syncer.domain.types import Decision, Person, PushResult, Reason, RecordUpdate
from syncer.observe import progress
from syncer.qualify.explain import summarize
from syncer.run.audit_trail import AuditRow, DecisionOutcome, RunStamp, decision_row, reasons_of
from syncer.store import accounts as account_store
from syncer.store import dead_letters
from syncer.store import intents as intent_store
from syncer.store import routing as routing_store
from syncer.store import written as written_store
from syncer.store.dead_letters import FailedWrite
from syncer.store.decision_json import ReasonJson
from syncer.store.kept import A_FEW_CHUNKS, KeptByIdentity
from syncer.store.model_versions import rollback_note
from syncer.store.repository import Store, WrittenRow
from syncer.store.written import HeldValue

log = structlog.get_logger(__name__)

#: One planned write: the update, the record as pulled, the decision behind it.
Item = tuple[RecordUpdate, Person, Decision]


@dataclass(frozen=True)
class PlannedWrite:
    """A field change the run made (or, in a dry run, would make). `reason`: the decision's
    reasons in one line, filled in for a dry run's listing only (a real run's audit rows
    keep every reason)."""

    connector: str
    record_id: str
    person_key: str
    field: str
    old: str | None
    new: str | None
    reason: str = ""


@dataclass
class WriteTally:
    """What the writes of one run came to, per connector."""

    fields_written: Counter[str] = field(default_factory=Counter)
    records_written: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    failures_by_code: Counter[str] = field(default_factory=Counter)
    #: (connector, cause, field) -> failed records; a record whose error names two fields
    #: counts under each (see syncer/domain/errors.py for the bounded field names)
    failures_by_field: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    manual_edits_kept: Counter[str] = field(default_factory=Counter)
    #: what a dry run would write (a real run's writes are its audit rows)
    planned: list[PlannedWrite] = field(default_factory=list)
    #: dead letters a replay left alone because their record is gone (converted, merged)
    left_for_sync: Counter[str] = field(default_factory=Counter)

    def failure_stats(self) -> dict[str, object]:
        """The failure counters as the runs table keeps them: by error code, by cause, and
        {connector: {cause: {field: count}}} (metrics and alerts read the last one)."""
        return {"failures_by_code": dict(self.failures_by_code),
                "failures_by_cause": dict(by_cause(self.failures_by_code.elements())),
                "failures_by_field": nest(self.failures_by_field)}


#: how long the one-line reason of a dry run's planned write may be
REASON_CHARS = 160


def planned_writes(name: str, update: RecordUpdate, record: Person, decision: Decision, *,
                   with_reason: bool = False) -> list[PlannedWrite]:
    """The field changes of one update; `with_reason` (a dry run) also summarizes why."""
    reason = summarize(decision, REASON_CHARS) if with_reason else ""
    return [PlannedWrite(name, update.record_id, decision.key, f, record.crm_values.get(f), v,
                         reason) for f, v in update.values.items()]


@dataclass(frozen=True)
class Sending:
    """A batch whose intents are committed and whose CRM call is made (or under way):
    `answer` holds the per-record results, or the call's error."""

    name: str
    items: Sequence[Item]
    #: per item, the audit row of each field without its outcome (Writer._record fills it in)
    intents: Sequence[Sequence[AuditRow]]
    #: the batch's write_intents row, deleted with its outcomes
    intent_id: int
    answer: Future[list[PushResult]]


def _write(connector: Connector, updates: list[RecordUpdate]) -> list[PushResult]:
    """One batch to the CRM; a record that failed with a retryable error (a lock, a blip)
    is tried once more on its own. Touches no state: it may run in a thread of its own."""
    results = connector.push(updates)
    retry = [i for i, r in enumerate(results) if not r.ok and r.retryable]
    if retry:  # a lock or a blip on one record: try those alone once more
        again = connector.push([updates[i] for i in retry])
        for i, result in zip(retry, again, strict=True):
            results[i] = result
    return results


def _here(call: Callable[[], list[PushResult]]) -> Future[list[PushResult]]:
    """Make the call in this thread; its answer (or error) as a finished future."""
    done: Future[list[PushResult]] = Future()
    try:
        done.set_result(call())
    except Exception as error:
        done.set_exception(error)
    return done


class Writer:
    """Pushes one run's updates and records them; shared by syncs and dead-letter replays."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 now: datetime, run_id: str, tally: WriteTally, *,
                 note: Reason | None = None) -> None:
        """`note`: a reason every audit row of this writer cites besides the decision's own,
        in the audit log only (never in the CRM). By default it is the model rollback in
        effect when a decision was made with the version the rollback pins (looked up once
        per version), so every write under a rollback says so."""
        self.loaded = loaded
        self.store = store
        self.connectors = connectors
        self.now = now
        self.run_id = run_id
        self.tally = tally
        self.note = note
        self._notes: dict[str, Reason | None] = {}
        self._written_fields: dict[str, dict[str, str]] = {}
        #: under a note, the stored reasons of each recent decision, with the note after them
        #: (see _reasons_of)
        self._noted: KeptByIdentity[Decision, list[ReasonJson]] = KeptByIdentity(A_FEW_CHUNKS)

    def _note_for(self, model_version: str) -> Reason | None:
        if self.note is not None:
            return self.note
        if model_version not in self._notes:
            self._notes[model_version] = rollback_note(self.store, model_version)
        return self._notes[model_version]

    def _audit_row(self, name: str, change: PlannedWrite, decision: Decision,
                   outcome: DecisionOutcome, error: str | None) -> AuditRow:
        return decision_row(
            RunStamp(self.now, self.run_id), name, change.record_id, change.field,
            change.old, change.new, decision, outcome, error=error,
            reasons=self._reasons_of(decision))

    def _reasons_of(self, decision: Decision) -> list[ReasonJson]:
        """The decision's reasons as its audit rows store them: one list object for all of
        its rows, in every send and each CRM, converted once and so encoded once by the
        audit log (which keeps a list's text by list object). Without a note, the list its
        decisions row was saved with (Store.reasons_json); with one, a list per decision
        kept here (a decision's note never changes: one per writer or per model version)."""
        note = self._note_for(decision.model_version)
        if note is None:
            return self.store.reasons_json(decision.reasons)
        return self._noted.value(decision, partial(reasons_of, note=note))

    def _count_failure(self, name: str, result: PushResult) -> None:
        """Tally one failed record by code, and by cause and each field its error names."""
        code = result.error_code or "UNKNOWN"
        self.tally.failures[name] += 1
        self.tally.failures_by_code[code] += 1
        if name not in self._written_fields:
            configured = writeback_fields(self.loaded, self.loaded.connector(name))
            self._written_fields[name] = {f.lower(): f for f in configured}
        cause = cause_of(result.error_code, result.fields)
        for crm_field in bounded_fields(result.fields, self._written_fields[name]):
            self.tally.failures_by_field[(name, cause, crm_field)] += 1

    def hold(self, name: str, held: Sequence[tuple[Person, Decision, dict[str, str | None],
                                                   Mapping[str, str | None]]]) -> None:
        """Record fields left alone because a person set them by hand (audited once)."""
        audit: list[AuditRow] = []
        rows: list[HeldValue] = []
        for record, decision, values, wanted in held:
            for crm_field, value in values.items():
                change = PlannedWrite(name, record.record_id, decision.key, crm_field, value,
                                      wanted.get(crm_field))
                audit.append(self._audit_row(name, change, decision, "kept_manual_edit", None))
                rows.append({"connector": name, "record_id": record.record_id,
                             "field": crm_field, "value": value})
            self.tally.manual_edits_kept[name] += len(values)
        if audit:
            with self.store.transaction() as tx:
                written_store.hold_manual(self.store, tx, rows, self.now, self.run_id)
                self.store.append_audit(tx, audit)

    def push(self, name: str, items: Sequence[Item]) -> list[PushResult]:
        """Write `items` and record their outcomes (send, then settle, in this thread)."""
        return self.settle(self.send(name, items))

    def send(self, name: str, items: Sequence[Item],
             on_the_wire: Callable[[Callable[[], list[PushResult]]],
                                   Future[list[PushResult]]] | None = None) -> Sending:
        """Commit the intent to write each field, then call the CRM: in this thread, or
        through `on_the_wire` (syncer/run/lanes.py: a thread of its own, so the next chunk
        is decided while this batch is on the wire). `settle` records the outcomes.

        Write-ahead: the intent to write the batch is committed before the CRM is
        called, so a crash between the call and the outcome leaves a trace that the next
        run reconciles (syncer/run/recovery.py) instead of a write without an audit row."""
        connector = self.connectors[name]
        stamp = RunStamp(self.now, self.run_id)
        # per item, each field's audit row but its outcome (_record fills that in)
        intents = [self._intents(stamp, name, item) for item in items]
        with self.store.transaction() as tx:
            intent_id = intent_store.announce(tx, self.run_id, name, self.now,
                                              (row for rows in intents for row in rows))
        call = partial(_write, connector, [update for update, _, _ in items])
        return Sending(name, items, intents, intent_id, (on_the_wire or _here)(call))

    def _intents(self, stamp: RunStamp, name: str, item: Item) -> list[AuditRow]:
        """The audit row of each field of one item, outcome `intent` until the answer
        comes, all citing the decision's one reasons list (looked up once per record, not
        per field)."""
        update, record, decision = item
        reasons = self._reasons_of(decision)
        return [decision_row(stamp, name, update.record_id, crm_field,
                             record.crm_values.get(crm_field), value, decision, "intent",
                             reasons=reasons)
                for crm_field, value in update.values.items()]

    def settle(self, sending: Sending) -> list[PushResult]:
        """Wait for a sent batch's answer and record its outcomes (the CRM call's error,
        if it raised one, is raised here: its intents stay open for recovery)."""
        results = sending.answer.result()
        self._record(sending, results)
        return results

    def _record(self, sending: Sending, results: Sequence[PushResult]) -> None:
        """Store each item's outcome: an audit row per field (a copy of the row `send`
        made, with the outcome), the values written, and a dead letter for a failed
        record; and close the batch's intent in the same transaction."""
        name, items = sending.name, sending.items
        written_rows: list[WrittenRow] = []
        audit_rows: list[AuditRow] = []
        parked: list[FailedWrite] = []
        succeeded: list[str] = []
        owner_field = self.loaded.connector(name).fields.owner
        owners_written: list[str] = []
        #: values written to account records, stored with them (store/accounts.py)
        accounts_written: dict[str, dict[str, str | None]] = {}
        for (update, _record, decision), result, rows in zip(items, results,
                                                              sending.intents, strict=True):
            error = None if result.ok else f"{result.error_code}: {result.message}"
            outcome = "written" if result.ok else "failed"
            # Not kept in the tally: a real run's writes are in the audit log, and a list
            # of every field written grew to hundreds of MB in a 100,000-person sync.
            for row in rows:
                audit_rows.append({**row, "outcome": outcome, "error": error})
                if result.ok:
                    written_rows.append({"connector": name, "record_id": update.record_id,
                                         "field": row["field"], "value": row["new_value"],
                                         "written_at": self.now, "run_id": self.run_id})
            if result.ok:
                succeeded.append(update.record_id)
                if update.object_type in ACCOUNT_OBJECT_TYPES:
                    accounts_written.setdefault(update.record_id, {}).update(update.values)
                self.tally.records_written[name] += 1
                self.tally.fields_written[name] += len(update.values)
                if owner_field in update.values:
                    owners_written.append(decision.key)
            else:
                self._count_failure(name, result)
                parked.append({"connector": name, "record_id": update.record_id,
                               "object_type": update.object_type, "person_key": decision.key,
                               "fields": dict(update.values), "error_code": result.error_code,
                               "message": result.message})
                log.warning("push.record_failed", connector=name, record_id=update.record_id,
                            error_code=result.error_code)
        with self.store.transaction() as tx:
            self.store.record_write(tx, written_rows)
            if accounts_written:
                account_store.note_written(tx, name, accounts_written)
            self.store.append_audit(tx, audit_rows)
            intent_store.close(tx, sending.intent_id)
            routing_store.mark_owner_written(tx, owners_written, self.now)
            dead_letters.resolve(tx, name, succeeded, self.now)
            dead_letters.park(tx, parked, self.now, self.run_id)
        log.info("push.done", connector=name, records=len(items), failed=len(parked))
        progress.current().advance(f"write {name}", len(items),
                                   calls=self.connectors[name].api_calls)
