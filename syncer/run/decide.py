"""Deciding one person within a run: the profile the core sees, the core's decision, and
the owner routing gives it, with the routing state (rotation, caps, account owners)
carried from one person to the next.

That state moves in one canonical order, ascending person key, whatever order the records
were pulled in or however they were paged and chunked: so one world gives the same owners
under any pull order, and a run killed part way resumes the rotation exactly where an
uninterrupted run would be (docs/routing.md, "Order independence"). `Decider.decide`
refuses a key below the one before it.

The core (syncer/qualify) is pure; this is where a run's knowledge meets it: which stage a
CRM holds that a person (not syncer) set, which owner a record already has, and who can
still take people today.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone

from syncer.domain.config import LoadedConfig
from syncer.domain.connector_config import ConnectorConfig
from syncer.domain.json_values import text_or_none
from syncer.domain.types import Activity, Decision, Person, Profile, Reason, Stage
from syncer.domain.values import canonical
from syncer.qualify import Model, qualify
from syncer.qualify.routing import Assignment, RoutingState, account_keys, assign_owner
from syncer.run.diff import OwnerDirectory, existing_owner, stage_from_crm
from syncer.run.sla import SlaReview
from syncer.store import routing as routing_store
from syncer.store import written as written_store
from syncer.store.repository import Store


class Decider:
    """Decides people one after another for one run."""

    def __init__(self, loaded: LoadedConfig, store: Store, model: Model, now: datetime,
                 run_id: str) -> None:
        self.loaded = loaded
        self.store = store
        self.model = model
        self.now = now
        self.run_id = run_id
        self.connector_order = [c.name for c in loaded.config.connectors]
        #: per connector: its users (set once the connectors' owners are read)
        self.directories: dict[str, OwnerDirectory] = {}
        #: per connector, (record id, field) -> (value syncer last wrote, origin); set per
        #: chunk by the pipeline
        self.written: dict[str, written_store.WrittenState] = {}
        self.positions: dict[str, int] = {}
        #: account index entries this run gained, by the person who gave them: (person
        #: key, account, owner), taken by syncer/run/decided_so_far.py as it saves
        self.indexed: list[tuple[str, str, str]] = []
        #: the account index a resumed deciding starts from (see carry_accounts)
        self.carried_accounts: dict[str, str] | None = None
        self.assigned_today: Counter[str] = Counter()
        self.account_owners: dict[str, str] = {}
        #: the (owner email, name) of a person's CRM account, when accounts are pulled
        #: (run/accounts.py sets it)
        self.account_of: Callable[[Sequence[Person]], tuple[str, str] | None] | None = None
        #: assignments made since the pipeline last stored them
        self.new_assignments: list[dict[str, object]] = []
        self.owners_assigned = 0
        #: the last person key decided: routing moves only in ascending key order
        self.last_key: str | None = None
        #: the speed-to-lead SLA (syncer/run/sla.py), when the model's routing has one
        self.sla: SlaReview | None = None

    def _profile(self, key: str, records: list[Person], activities: list[Activity],
                 previous: Decision | None) -> Profile:
        stages: list[Stage] = [previous.stage] if previous else []
        stages.extend(self.crm_stages(records))
        owner: str | None = None
        for record in records:
            directory = self.directories.get(record.source)
            if owner is None and directory is not None:
                config = self.loaded.connector(record.source)
                owner = existing_owner(config, record.crm_values, directory)
        # Routed earlier but not (yet) in any CRM, e.g. the run died before its push: keep
        # that owner rather than rotate again, if they can still take people.
        if (owner is None and previous is not None and previous.owner_email is not None
                and previous.owner_email in self._available_reps(records)):
            owner = previous.owner_email
        return Profile(key=key, records=tuple(records), activities=tuple(activities),
                       current_stage=max(stages, key=lambda s: s.rank) if stages else None,
                       owner_email=owner)

    def crm_stages(self, records: Sequence[Person]) -> list[Stage]:
        """The stages the CRMs hold for these records that a person (or another tool) set,
        not syncer: the CRM's say in the furthest stage known, and the stage history's
        `crm` cause."""
        stages = []
        configured = {c.name for c in self.loaded.config.connectors}
        for record in records:
            if record.source not in configured:  # a form tool, a list: it holds no stage
                continue
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
                lambda fields, key: account_keys(key, text_or_none(fields, "company"), routing),
                {name: self.loaded.connector(name).fields.owner
                 for name in self.connector_order})
        if routing.sla is not None:
            self.sla = SlaReview(self.store, routing, self.now, self.run_id)
        if self.carried_accounts is not None:
            self.account_owners = dict(self.carried_accounts)

    def carry_accounts(self, entries: Mapping[str, str]) -> None:
        """Route with the account index a killed run's deciding had at its mark
        (syncer/run/decided_so_far.py) instead of one built from the CRMs now: the people
        before the mark are not decided again, the killed run's own writes changed what
        the CRMs say, and the people after the mark must be routed as if nothing had
        stopped in between."""
        self.carried_accounts = dict(entries)
        self.account_owners = dict(entries)

    def _record_owner(self, connector: str, crm_values: Mapping[str, object]) -> str | None:
        directory = self.directories.get(connector)
        if directory is None or connector not in self.connector_order:
            return None
        return existing_owner(self.loaded.connector(connector), crm_values, directory)

    def decide(self, key: str, records: list[Person], activities: list[Activity],
               previous: Decision | None) -> Decision:
        """The person's decision, owner included. People must come in ascending key order
        (the pipeline's chunks are slices of a sorted key list): the rotation, the day's
        caps and the account index then advance in an order that no pull order, page size
        or chunk size can change."""
        if self.last_key is not None and key < self.last_key:
            raise ValueError(f"person {key!r} decided after {self.last_key!r}: a run decides "
                             "people in ascending key order, or owners would depend on the "
                             "pull order")
        self.last_key = key
        profile = self._profile(key, records, activities, previous)
        decision = qualify(profile, self.model, self.now)
        account = self.account_of(records) if self.account_of is not None \
            and self.model.routing.account_match.enabled else None
        state = RoutingState(frozenset(self._available_reps(records)), self.account_owners,
                             self.positions, self.assigned_today, account)
        assignment = assign_owner(decision, profile, self.model.routing, state,
                                  self.now.date())
        decision = assignment.decision
        if assignment.assigned:
            self._remember(assignment, profile)
        elif assignment.rule == "kept":
            self._index_account(assignment.decision.owner_email, profile)
            decision = self._explain_kept_owner(assignment.decision, previous)
        if self.sla is not None:
            decision = self.sla.apply(decision, profile, state, self.new_assignments,
                                      self.positions, self.assigned_today)
        return decision

    def _index_account(self, owner: str | None, profile: Profile) -> None:
        """Make this person's owner the owner of their account for the people after them
        in this run, unless the account has one already: the same entry whether the owner
        was given just now or kept from an earlier run.

        Kept owners count too: a run killed or stopped part way leaves people routed whose
        owner never reached a CRM (their writes were still pending), so the index rebuilt
        from the CRMs at the restart lacks their accounts; without this their colleagues
        went to the rotation instead of to the account's owner, and every turn after that
        shifted (45 of 436 owners differed from an uninterrupted run at 1,500 people)."""
        if owner is None:
            return
        company = profile.first("company")
        for account in account_keys(profile.key, str(company) if company else None,
                                    self.model.routing):
            if account not in self.account_owners:
                self.account_owners[account] = owner
                self.indexed.append((profile.key, account, owner))

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
        self.owners_assigned += 1
        if assignment.team is not None and assignment.new_position is not None:
            self.positions[assignment.team] = assignment.new_position
        self.assigned_today[owner] += 1
        self._index_account(owner, profile)
        evidence = [r.evidence_at for r in decision.reasons if r.evidence_at is not None]
        self.new_assignments.append({
            "person_key": decision.key, "owner_email": owner, "team": assignment.team,
            "rule": assignment.rule, "reason": decision.reasons[-1].detail,
            "stage": decision.stage.value,
            "qualified_at": min(max(evidence), self.now) if evidence else self.now,
            "assigned_at": self.now, "owner_written_at": None,
            "run_id": self.run_id})
