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

import structlog

from connectors.base import Connector
from syncer.config import LoadedConfig
from syncer.domain import Activity, Decision, Person, Profile, Reason, RecordUpdate, Stage
from syncer.identity import merge_order, person_key
from syncer.qualify import Model, qualify
from syncer.qualify.routing import Assignment, RoutingState, account_keys, assign_owner
from syncer.store import routing as routing_store
from syncer.store.repository import Store, reason_to_json
from syncer.writeback import (
    OwnerDirectory,
    canonical,
    desired_values,
    existing_owner,
    record_update,
    stage_from_crm,
)

log = structlog.get_logger(__name__)

#: Activities are re-pulled from this long before the saved cursor, to catch late arrivals.
CURSOR_OVERLAP = timedelta(minutes=5)
#: How far back the first pull of activities reaches.
FIRST_PULL_HISTORY = timedelta(days=365)
#: Profiles are qualified and pushed in chunks of this many, bounding memory.
CHUNK = 500


class SyncStopped(Exception):
    """A stop was requested; the run ended after its current batch, state consistent."""


@dataclass(frozen=True)
class PlannedWrite:
    """A field change the run made (or, in a dry run, would make)."""

    connector: str
    record_id: str
    person_key: str
    field: str
    old: str | None
    new: str | None


@dataclass
class RunSummary:
    run_id: str
    dry_run: bool
    people: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    owners_assigned: int = 0
    fields_written: Counter[str] = field(default_factory=Counter)
    records_written: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    api_calls: Counter[str] = field(default_factory=Counter)
    records_pulled: Counter[str] = field(default_factory=Counter)
    activities_pulled: Counter[str] = field(default_factory=Counter)
    planned: list[PlannedWrite] = field(default_factory=list)

    def stats(self) -> dict[str, object]:
        return {"people": self.people, "stages": dict(self.stages),
                "owners_assigned": self.owners_assigned,
                "fields_written": dict(self.fields_written),
                "records_written": dict(self.records_written),
                "failures": dict(self.failures), "api_calls": dict(self.api_calls),
                "records_pulled": dict(self.records_pulled),
                "activities_pulled": dict(self.activities_pulled)}


class Sync:
    """The state of one run; `run_sync` is the entry point."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 model: Model, now: datetime, dry_run: bool,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.should_stop = should_stop
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

    # -- pull --------------------------------------------------------------------------
    def pull(self, name: str) -> None:
        """Store every page as it arrives; advance the activity cursor only afterwards,
        capped at the run's start so what changes during the run is seen next time."""
        connector = self.connectors[name]
        for page in connector.people():
            with self.store.transaction() as tx:
                self.store.save_records(tx, page, [person_key(p) for p in page], self.now)
            self.summary.records_pulled[name] += len(page)
            if self.should_stop():
                raise SyncStopped
        cursor = self.store.cursor(name, "activities")
        since = cursor - CURSOR_OVERLAP if cursor else self.now - FIRST_PULL_HISTORY
        for activities in connector.activities(since):
            with self.store.transaction() as tx:
                self.store.save_activities(tx, activities)
            self.summary.activities_pulled[name] += len(activities)
            if self.should_stop():
                raise SyncStopped
        with self.store.transaction() as tx:
            self.store.set_cursor(tx, name, "activities", self.now)
        self._log.info("pull.done", connector=name, records=self.summary.records_pulled[name],
                       activities=self.summary.activities_pulled[name])

    # -- qualify -------------------------------------------------------------------------
    def _profile(self, key: str, records: list[Person], activities: list[Activity],
                 previous: Decision | None) -> Profile:
        stages: list[Stage] = [previous.stage] if previous else []
        owner: str | None = None
        for record in records:
            config = self.loaded.connector(record.source)
            stage = stage_from_crm(config, record)
            if stage is not None:
                stages.append(stage)
            directory = self.directories.get(record.source)
            if owner is None and directory is not None:
                owner = existing_owner(config, record, directory)
        return Profile(key=key, records=tuple(records), activities=tuple(activities),
                       current_stage=max(stages, key=lambda s: s.rank) if stages else None,
                       owner_email=owner)

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
        field = self.loaded.connector(connector).fields.owner
        return directory.active_email(canonical(crm_values.get(field))) if field else None

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

    # -- push ----------------------------------------------------------------------------
    def process_chunk(self, keys: Sequence[str]) -> None:
        people = self.store.load_people(keys)
        previous = self.store.decisions(keys)
        decisions: list[Decision] = []
        updates: dict[str, list[tuple[RecordUpdate, Person, Decision]]] = {}
        for key in keys:
            stored_records, activities = people[key]
            if not stored_records:
                continue
            records = merge_order(stored_records, self.connector_order)
            decision = self.decide(key, records, activities, previous.get(key))
            decisions.append(decision)
            self.summary.people += 1
            self.summary.stages[decision.stage.value] += 1
            for record in records:
                if record.source not in self.connectors:
                    continue
                config = self.loaded.connector(record.source)
                wanted = desired_values(config, decision, self.directories[record.source])
                update = record_update(record, wanted)
                if update is not None:
                    updates.setdefault(record.source, []).append((update, record, decision))
        if self.summary.dry_run:
            for name, items in updates.items():
                for update, record, decision in items:
                    self._plan(name, update, record, decision)
            return
        with self.store.transaction() as tx:
            self.store.save_decisions(tx, decisions, self.now)
            routing_store.save_positions(self.store, tx, self.positions)
            routing_store.save_assignments(tx, self.new_assignments)
        self.new_assignments = []
        for name, items in updates.items():
            self.push(name, items)

    def _plan(self, name: str, update: RecordUpdate, record: Person,
              decision: Decision) -> list[PlannedWrite]:
        planned = [PlannedWrite(name, update.record_id, decision.key, f,
                                record.crm_values.get(f), v) for f, v in update.values.items()]
        self.summary.planned.extend(planned)
        return planned

    def push(self, name: str, items: list[tuple[RecordUpdate, Person, Decision]]) -> None:
        connector = self.connectors[name]
        results = connector.push([update for update, _, _ in items])
        retry = [i for i, r in enumerate(results) if not r.ok and r.retryable]
        if retry:  # a lock or a blip on one record: try those alone once more
            again = connector.push([items[i][0] for i in retry])
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        written_rows: list[dict[str, object]] = []
        audit_rows: list[dict[str, object]] = []
        for (update, record, decision), result in zip(items, results, strict=True):
            reasons = [reason_to_json(r) for r in decision.reasons]
            for change in self._plan(name, update, record, decision):
                audit_rows.append({
                    "at": self.now, "run_id": self.summary.run_id, "connector": name,
                    "record_id": update.record_id, "person_key": decision.key,
                    "field": change.field, "old_value": change.old, "new_value": change.new,
                    "outcome": "written" if result.ok else "failed",
                    "error": None if result.ok else f"{result.error_code}: {result.message}",
                    "reasons": reasons, "model_version": decision.model_version})
                if result.ok:
                    written_rows.append({
                        "connector": name, "record_id": update.record_id,
                        "field": change.field, "value": change.new, "written_at": self.now,
                        "run_id": self.summary.run_id})
            if result.ok:
                self.summary.records_written[name] += 1
                self.summary.fields_written[name] += len(update.values)
            else:
                self.summary.failures[name] += 1
                self._log.warning("push.record_failed", connector=name,
                                  record_id=update.record_id, error_code=result.error_code)
        owner_field = self.loaded.connector(name).fields.owner
        owners_written = [str(row["person_key"]) for row in audit_rows
                          if row["field"] == owner_field and row["outcome"] == "written"]
        with self.store.transaction() as tx:
            self.store.record_write(tx, written_rows)
            self.store.append_audit(tx, audit_rows)
            routing_store.mark_owner_written(tx, owners_written, self.now)
        self._log.info("push.done", connector=name, records=len(items),
                       failed=sum(1 for r in results if not r.ok))


def run_sync(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
             model: Model, now: datetime, *, only: Sequence[str] | None = None,
             dry_run: bool = False,
             should_stop: Callable[[], bool] = lambda: False) -> RunSummary:
    """Pull the `only` connectors (all when None), then qualify every person they hold and
    push the changed fields to every CRM that person lives in."""
    selected = list(only) if only is not None else list(connectors)
    sync = Sync(loaded, store, connectors, model, now, dry_run, should_stop)
    summary = sync.summary
    calls_before = {name: c.api_calls for name, c in connectors.items()}
    store.start_run(summary.run_id, selected, datetime.now(timezone.utc), dry_run)
    status = "failed"
    try:
        for name in selected:
            sync.pull(name)
        for name, connector in connectors.items():
            sync.directories[name] = OwnerDirectory.build(connector.owners())
        sync.prepare_routing()
        keys = store.person_keys(selected)
        for start in range(0, len(keys), CHUNK):
            if should_stop():
                raise SyncStopped
            sync.process_chunk(keys[start:start + CHUNK])
        status = "succeeded" if not summary.failures else "partial"
    except SyncStopped:
        status = "stopped"
    finally:
        for name, connector in connectors.items():
            summary.api_calls[name] = connector.api_calls - calls_before[name]
        store.finish_run(summary.run_id, datetime.now(timezone.utc), status, summary.stats())
        log.info("sync.done", run_id=summary.run_id, status=status, dry_run=dry_run,
                 **summary.stats())
    return summary
