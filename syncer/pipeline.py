"""One sync run: pull, store, qualify, diff, push, audit.

`run_sync` is a plain function of (config, store, connectors, model, now) so the in-process
scheduler today and a PostgreSQL task queue later can both call it; every piece of state it
needs lives in the store. It knows no CRM by name: connectors translate, the core decides.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from connectors.base import Connector
from syncer.budget import BudgetExhausted, DailyBudget
from syncer.config import ConnectorConfig, LoadedConfig
from syncer.creation import CreationTally, Creator
from syncer.domain import Activity, Decision, Person, Profile, Reason, Stage, Succession
from syncer.field_policy import SharedWrites, as_settled, settle_shared_fields
from syncer.identity import merge_order
from syncer.logs import log_context, redact_text
from syncer.metrics import SyncMetrics
from syncer.push import Item, Writer, WriteTally, planned_writes
from syncer.qualify import Model, qualify
from syncer.qualify.routing import Assignment, RoutingState, account_keys, assign_owner
from syncer.ratelimit import open_usage_windows, usage_stats
from syncer.recovery import reconcile_interrupted_writes
from syncer.store import dead_letters, model_versions, shared_values, stage_history
from syncer.store import identity as identity_store
from syncer.store import routing as routing_store
from syncer.store import written as written_store
from syncer.store.repository import Store
from syncer.writeback import (
    OwnerDirectory,
    canonical,
    desired_values,
    existing_owner,
    record_update,
    respect_manual_edits,
    stage_from_crm,
)

log = structlog.get_logger(__name__)

#: Activities are re-pulled from this long before the saved cursor, to catch late arrivals.
CURSOR_OVERLAP = timedelta(minutes=5)
#: How far back the first pull of activities reaches.
FIRST_PULL_HISTORY = timedelta(days=365)
#: Profiles are qualified and pushed in chunks of this many, bounding memory.
CHUNK = 500
#: counter per connector: the UTC day (ordinal) everyone was last re-scored.
RESCORED_PREFIX = "rescored."


class SyncStopped(Exception):
    """A stop was requested; the run ended after its current batch, state consistent."""


@dataclass(kw_only=True)
class RunSummary(WriteTally):
    """Everything one run did; `stats()` is what the runs table and the logs keep."""

    run_id: str
    dry_run: bool
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
                 should_stop: Callable[[], bool] = lambda: False, full: bool = False) -> None:
        self.should_stop = should_stop
        self.full = full
        self.touched: set[str] = set()
        #: per connector, writes decided but not yet pushed (see flush)
        self.pending: dict[str, list[Item]] = {}
        #: per connector, (record id, field) -> (value syncer last wrote, origin)
        self.written: dict[str, written_store.WrittenState] = {}
        self.connector_order = [c.name for c in loaded.config.connectors]
        self.loaded = loaded
        self.store = store
        self.connectors = connectors
        self.model = model
        self.now = now
        self.summary = RunSummary(run_id=uuid.uuid4().hex[:16], dry_run=dry_run)
        self.directories: dict[str, OwnerDirectory] = {}
        self.positions: dict[str, int] = {}
        self.assigned_today: Counter[str] = Counter()
        self.account_owners: dict[str, str] = {}
        self.new_assignments: list[dict[str, object]] = []
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
        with log_context(connector=name):
            self._pull(name)

    def _pull(self, name: str) -> None:
        """Store every page as it arrives; advance cursors only after the whole stream is
        stored. People resume from the newest modification time seen (the CRM's clock),
        minus an overlap; a record seen twice is simply stored again."""
        connector = self.connectors[name]
        budget = self.budgets[name]
        people_cursor = None if self.full else self.store.cursor(name, "people")
        newest = people_cursor
        budget.ensure(connector.api_calls, 1)
        for page in connector.people(people_cursor - CURSOR_OVERLAP if people_cursor
                                     else None):
            stamps = [p.updated_at for p in page if p.updated_at is not None]
            if stamps:
                newest = max(newest, *stamps) if newest else max(stamps)
            if people_cursor is not None:  # drop re-reads that change nothing
                same = self.store.unchanged(name, page)
                page = [p for p in page if p.record_id not in same]
            with self.store.transaction() as tx:
                keys = identity_store.resolve_keys(tx, page)
                self.store.save_records(tx, page, keys, self.now)
            self.touched.update(keys)
            self.summary.records_pulled[name] += len(keys)
            if self.should_stop():
                raise SyncStopped
            budget.ensure(connector.api_calls, 1)
        if people_cursor is not None:
            self._follow(name, people_cursor - CURSOR_OVERLAP)
        cursor = self.store.cursor(name, "activities")
        since = cursor - CURSOR_OVERLAP if cursor else self.now - FIRST_PULL_HISTORY
        for activities in connector.activities(since):
            with self.store.transaction() as tx:
                self.store.save_activities(tx, activities)
            self.touched.update(self.store.person_keys_of(
                name, sorted({a.record_id for a in activities})))
            self.summary.activities_pulled[name] += len(activities)
            if self.should_stop():
                raise SyncStopped
            budget.ensure(connector.api_calls, 1)
        with self.store.transaction() as tx:
            self.store.set_cursor(tx, name, "activities", self.now)
            if newest is not None:
                self.store.set_cursor(tx, name, "people", newest)
        self._log.info("pull.done", connector=name, records=self.summary.records_pulled[name],
                       activities=self.summary.activities_pulled[name],
                       incremental=people_cursor is not None)

    def _follow(self, name: str, since: datetime) -> None:
        """Follow records that stopped taking writes (converted leads, merged duplicates)
        to their successors: identity, score and history move along, the old record is
        never written again, and its parked writes are closed. A first pull has nothing
        to follow: syncer never knew the old records."""
        connector = self.connectors[name]
        for page in connector.successions(since):
            with self.store.transaction() as tx:
                followed = identity_store.apply_successions(tx, page, self.now,
                                                            self.summary.run_id)
                self.store.append_audit(tx, [self._identity_row(f.succession, f.person_key,
                                                                f.folded_key)
                                             for f in followed])
                dead_letters.resolve(tx, name, [f.succession.old_id for f in followed],
                                     self.now)
            for item in followed:
                self.summary.identity[f"{name}.{item.succession.cause}"] += 1
                self.touched.add(item.person_key)
                if item.folded_key is not None:
                    self.touched.discard(item.folded_key)
            self.budgets[name].ensure(connector.api_calls, 1)

    def _identity_row(self, succession: Succession, key: str, folded: str | None
                      ) -> dict[str, object]:
        detail = (f"{succession.old_id} {succession.cause} into {succession.new_id}"
                  + (f"; person {folded} folded into this one" if folded else ""))
        return {"at": self.now, "run_id": self.summary.run_id,
                "connector": succession.source, "record_id": succession.old_id,
                "person_key": key, "field": "identity", "old_value": succession.old_id,
                "new_value": succession.new_id, "outcome": succession.cause, "error": None,
                "reasons": [{"rule_id": f"identity.{succession.cause}", "points": 0.0,
                             "detail": detail, "evidence_at": succession.at.isoformat()
                             if succession.at else None}],
                "model_version": self.model.version}

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

    # -- qualify -------------------------------------------------------------------------
    def _profile(self, key: str, records: list[Person], activities: list[Activity],
                 previous: Decision | None) -> Profile:
        stages: list[Stage] = [previous.stage] if previous else []
        stages.extend(self._crm_stages(records))
        owner: str | None = None
        for record in records:
            config = self.loaded.connector(record.source)
            directory = self.directories.get(record.source)
            if owner is None and directory is not None:
                owner = existing_owner(config, record.crm_values, directory)
        # Routed earlier but not (yet) in any CRM, e.g. the run died before its push: keep
        # that owner rather than rotate again, if they can still take people.
        if (owner is None and previous is not None and previous.owner_email is not None
                and previous.owner_email in self._available_reps(records)):
            owner = previous.owner_email
        return Profile(key=key, records=tuple(records), activities=tuple(activities),
                       current_stage=max(stages, key=lambda s: s.rank) if stages else None,
                       owner_email=owner)

    def _crm_stages(self, records: Sequence[Person]) -> list[Stage]:
        """The stages the CRMs hold for these records that a person (or another tool) set,
        not syncer: the CRM's say in the furthest stage known, and the stage history's
        `crm` cause."""
        stages = []
        for record in records:
            config = self.loaded.connector(record.source)
            stage = stage_from_crm(config, record)
            if stage is not None and not self._syncer_wrote_stage(config, record):
                stages.append(stage)
        return stages

    def _syncer_wrote_stage(self, config: ConnectorConfig, record: Person) -> bool:
        """True when the CRM's stage is just what syncer last wrote there. Only a stage a
        person (or another tool) set counts as the CRM's say: otherwise an MQL syncer once
        wrote would outrank a later recycle or disqualify decision forever."""
        field = config.fields.stage
        if field is None:
            return False
        last = self.written.get(record.source, {}).get((record.record_id, field))
        return last is not None and canonical(last[0]) == canonical(
            record.crm_values.get(field))

    def _available_reps(self, records: Sequence[Person]) -> list[str]:
        """Reps active in every CRM this person lives in, so the same human owns them
        everywhere."""
        sets = [set(self.directories[r.source].active_id_by_email)
                for r in records if r.source in self.directories]
        return sorted(set.intersection(*sets)) if sets else []

    def prepare_routing(self) -> None:
        """Load what routing needs once per run: positions, today's counts, account owners."""
        routing = self.model.routing
        self.positions = routing_store.positions(
            self.store, [team.name for team in routing.all_teams])
        day = self.now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0,
                                                        microsecond=0)
        self.assigned_today = Counter(routing_store.assigned_on(self.store, day))
        if routing.account_match.enabled:
            self.account_owners = routing_store.account_owners(
                self.store, self._record_owner,
                lambda fields, key: account_keys(key, fields.get("company"), routing))

    def _record_owner(self, connector: str, crm_values: Mapping[str, object]) -> str | None:
        directory = self.directories.get(connector)
        if directory is None or connector not in self.connector_order:
            return None
        return existing_owner(self.loaded.connector(connector), crm_values, directory)

    def decide(self, key: str, records: list[Person], activities: list[Activity],
               previous: Decision | None) -> Decision:
        profile = self._profile(key, records, activities, previous)
        decision = qualify(profile, self.model, self.now)
        state = RoutingState(frozenset(self._available_reps(records)), self.account_owners,
                             self.positions, self.assigned_today)
        assignment = assign_owner(decision, profile, self.model.routing, state,
                                  self.now.date())
        if assignment.assigned:
            self._remember(assignment, profile)
        elif assignment.rule == "kept":
            return self._explain_kept_owner(assignment.decision, previous)
        return assignment.decision

    @staticmethod
    def _explain_kept_owner(decision: Decision, previous: Decision | None) -> Decision:
        """Keep saying why the owner is who they are: the routing reason of the run that
        assigned them, or that a person set the owner in the CRM."""
        if previous is not None and previous.owner_email == decision.owner_email:
            carried = tuple(r for r in previous.reasons if r.rule_id.startswith("routing."))
            if carried:
                return replace(decision, reasons=(*decision.reasons, *carried))
        reason = Reason("routing.kept", 0.0,
                        f"owner {decision.owner_email} was set in the CRM; kept")
        return replace(decision, reasons=(*decision.reasons, reason))

    def _remember(self, assignment: Assignment, profile: Profile) -> None:
        """Carry an assignment into the rest of this run (rotation, caps, account index)
        and queue its row for the decision transaction."""
        decision = assignment.decision
        owner = decision.owner_email
        assert owner is not None
        self.summary.owners_assigned += 1
        if assignment.team is not None and assignment.new_position is not None:
            self.positions[assignment.team] = assignment.new_position
        self.assigned_today[owner] += 1
        company = profile.first("company")
        for account in account_keys(profile.key, str(company) if company else None,
                                    self.model.routing):
            self.account_owners.setdefault(account, owner)
        evidence = [r.evidence_at for r in decision.reasons if r.evidence_at is not None]
        self.new_assignments.append({
            "person_key": decision.key, "owner_email": owner, "team": assignment.team,
            "rule": assignment.rule, "reason": decision.reasons[-1].detail,
            "stage": decision.stage.value,
            "qualified_at": min(max(evidence), self.now) if evidence else self.now,
            "assigned_at": self.now, "owner_written_at": None,
            "run_id": self.summary.run_id})

    # -- diff and push -------------------------------------------------------------------
    def process_chunk(self, keys: Sequence[str]) -> None:
        people = self.store.load_people(keys)
        previous = self.store.decisions(keys)
        specs = self.loaded.config.shared_fields
        bases = shared_values.load(self.store, keys) if specs else {}
        undone = self._undo_rolled_back(previous)
        ids: dict[str, list[str]] = {}
        for records, _ in people.values():
            for record in records:
                ids.setdefault(record.source, []).append(record.record_id)
        self.written = {name: written_store.written_state(self.store, name, record_ids)
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
            decision = self.decide(key, as_settled(records, specs, shared), activities,
                                   undone.get(key, previous.get(key)))
            decisions.append(decision)
            crm_stage = max(self._crm_stages(records), key=lambda s: s.rank, default=None)
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
                    values = desired_values(config, decision, self.directories[record.source])
                    values.update(shared.writes.get((record.source, record.record_id), {}))
                    wanted.setdefault(record.source, []).append(
                        (record, _with_shared_reasons(decision, shared, record), values))
            for name in self.creator.targets(records):
                values = desired_values(self.loaded.connector(name), decision,
                                        self.directories[name])
                self.creator.consider(name, records, decision, values, self.summary.dry_run)
        updates = {name: self._diff(name, items) for name, items in wanted.items()}
        if self.summary.dry_run:
            for name, (items, _) in updates.items():
                for update, record, decision in items:
                    self.summary.planned.extend(planned_writes(name, update, record, decision))
            return
        with self.store.transaction() as tx:
            self.store.save_decisions(tx, decisions, self.now)
            stage_history.append(tx, history)
            routing_store.save_positions(self.store, tx, self.positions)
            routing_store.save_assignments(tx, self.new_assignments)
            self._flag_duplicates(tx, people, duplicates)
        self.new_assignments = []
        for name, (items, held) in updates.items():
            self.writer.hold(name, held)
            self.pending.setdefault(name, []).extend(items)
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
        """Which shared field values each record should hold (see syncer/field_policy.py)."""
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
        changes = {pair: duplicates[pair][0] if pair in duplicates else None
                   for pair in pairs
                   if stored.get(pair) != (duplicates[pair][0] if pair in duplicates else None)}
        identity_store.set_duplicate_flags(tx, changes)
        rows = []
        for (source, record_id), primary in sorted(changes.items()):
            if primary is None:
                continue
            decision = duplicates[(source, record_id)][1]
            self.summary.identity[f"{source}.duplicates"] += 1
            rows.append({"at": self.now, "run_id": self.summary.run_id, "connector": source,
                         "record_id": record_id, "person_key": decision.key,
                         "field": "identity", "old_value": None,
                         "new_value": f"duplicate of {primary}", "outcome": "duplicate",
                         "error": None,
                         "reasons": [{"rule_id": "identity.duplicate", "points": 0.0,
                                      "detail": f"{record_id} shares this person with "
                                                f"{primary}; syncer writes only to {primary}",
                                      "evidence_at": None}],
                         "model_version": decision.model_version})
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
        written = self.written.get(name, {})
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
             metrics: SyncMetrics | None = None) -> RunSummary:
    """Pull the `only` connectors (all when None), then qualify every person they hold and
    push the changed fields to every CRM that person lives in."""
    selected = list(only) if only is not None else list(connectors)
    sync = Sync(loaded, store, connectors, model, now, dry_run, should_stop, full)
    summary = sync.summary
    calls_before = {name: c.api_calls for name, c in connectors.items()}
    usage = open_usage_windows(connectors)
    context = structlog.contextvars.bind_contextvars(
        run_id=summary.run_id, **({"connector": selected[0]} if len(selected) == 1 else {}))
    store.start_run(summary.run_id, selected, datetime.now(timezone.utc), dry_run)
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
            sync.directories[name] = OwnerDirectory.build(connector.owners())
        sync.prepare_routing()
        keys, everyone = sync.keys_to_qualify(selected)
        for start in range(0, len(keys), CHUNK):
            if should_stop():
                raise SyncStopped
            sync.process_chunk(keys[start:start + CHUNK])
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
    except BudgetExhausted as exhausted:
        status = "budget_exhausted"
        summary.error = str(exhausted)
        log.warning("sync.budget_exhausted", connector=exhausted.connector,
                    used=exhausted.used, budget=exhausted.budget,
                    resumes_at=exhausted.resumes_at.isoformat())
    except Exception as error:
        summary.error = redact_text(f"{type(error).__name__}: {error}")[:2000]
        raise
    finally:
        for name, connector in connectors.items():
            summary.api_calls[name] = connector.api_calls - calls_before[name]
            sync.budgets[name].record(connector.api_calls)
        summary.api_usage = {name: window.close() for name, window in usage.items()}
        run = store.finish_run(summary.run_id, datetime.now(timezone.utc), status,
                               summary.stats(), summary.error)
        if metrics is not None:
            metrics.observe_run(run)
        log.info("sync.done", run_id=summary.run_id, status=status, dry_run=dry_run,
                 **summary.stats())
        structlog.contextvars.reset_contextvars(**context)
    return summary
