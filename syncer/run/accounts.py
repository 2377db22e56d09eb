"""The accounts stage of one run (issue 20): pull companies, decide them, write them back.

Only a model with an `accounts:` section runs it (`AccountStage.wanted`); without one a run
makes no account call and writes no account field. In a run, in order:

1. `pull`: each connector's accounts changed since its accounts cursor (all on a full
   run), stored when they differ from the stored copy; the cursor advances after the
   pull is stored, as the people cursor does (syncer/run/pull.py). The stretches of
   syncer's own account writes (echo windows, syncer/run/echo.py) are left out, so a
   quiet run reads no company back; the written values are stored with the write
   (run/push.py), so the one second of a Salesforce window read back is unchanged.
   Then, when due, the accounts' reconciliation sweep goes on (syncer/run/account_sweep.py):
   a page at a time of every company in id order, the ones that differ kept as the pull
   keeps them, so a company stamped behind the cursor is found.
2. `note`: as each chunk of people is decided, each person's company (account_match.py)
   and buying role are remembered; their companies, and the companies pulled, are the
   ones this run re-decides.
3. `decide`: each such company is decided from its records and the stored decisions of
   all its people (qualify/accounts.py), the decision is stored, and the changed account
   fields of every CRM record of the company become writes, which go through the same
   audited write-ahead path as people's (run/push.py `Writer`): the intent first, then
   the push, then the outcome rows. A company whose fields already hold the decision is not
   written, so a quiet re-run writes nothing.

Who is decided so that everyone is placed in their company (`people_to_place`): everyone
once when accounts are turned on, and the people at the domain of a company that is new
or changed (a Lead belongs by its domain alone). Routing asks `owner_of` for a person's
company owner. A dry run places and decides in memory and lists the writes as planned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Connection

from syncer.domain.accounts import ACCOUNT_OBJECT_BY_KIND, Account, AccountDecision
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.types import Decision, Person, Stage
from syncer.qualify import Model
from syncer.qualify.account_match import AccountIndex, clean_domain, index_accounts
from syncer.qualify.accounts import (
    AccountMember,
    account_summary,
    buying_role,
    decide_account,
)
from syncer.run.account_sweep import finished_by_full_pull, sweep_accounts
from syncer.run.budget import DailyBudget
from syncer.run.diff import record_update
from syncer.run.echo import EchoTails, LeavesOutAccountEchoes
from syncer.run.pull import CURSOR_OVERLAP, MAX_ECHO_WINDOWS, SyncStopped
from syncer.run.push import Item
from syncer.run.sweep import SweepPolicy
from syncer.store import accounts as account_store
from syncer.store import echo as echo_store
from syncer.store import undecided
from syncer.store.echo import EchoWindow
from syncer.store.repository import Store

log = structlog.get_logger(__name__)

#: counter set once a run placed every person in their company (accounts turned on)
PLACED = "accounts.placed"


class AccountStage:
    """The accounts part of one run; `Sync` (run/chunk.py) drives it."""

    def __init__(self, loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                 model: Model, now: datetime, budgets: Mapping[str, DailyBudget],
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.loaded = loaded
        self.store = store
        self.connectors = connectors
        self.model = model
        self.now = now
        self.budgets = budgets
        self.should_stop = should_stop
        self.order = [c.name for c in loaded.config.connectors]
        #: company keys to re-decide this run
        self.touched: set[str] = set()
        #: (connector, record id) of the account records pulled with a change this run
        self.pulled: set[tuple[str, str]] = set()
        #: domains of account records that are new or whose own fields changed this run
        self.moved_domains: set[str] = set()
        #: this run decides everyone: once its companies are decided, all are placed
        self.placing_everyone = False
        #: a dry run's people (company, role) and decisions, which it does not store
        self.unsaved: dict[str, tuple[str | None, str | None]] = {}
        self.unsaved_decisions: dict[str, Decision] = {}
        self.accounts_pulled: dict[str, int] = {}
        self._index: AccountIndex | None = None

    @staticmethod
    def wanted(model: Model) -> bool:
        """Whether runs under this model deal with accounts at all."""
        return model.accounts is not None

    # -- 1. pull ---------------------------------------------------------------------------
    def pull(self, name: str, full: bool) -> None:
        """Store one connector's changed accounts; its accounts cursor moves afterwards to
        the newest modification time seen (the CRM's clock), or past the end of the
        stretches of our own account writes the pull left out (syncer/run/echo.py): their
        echo is not read back, while the overlap still re-reads others' changes. Then the
        accounts' sweep, when due (`sweep`; a pull that read every company is a pass)."""
        connector = self.connectors[name]
        cursor = None if full else self.store.cursor(name, account_store.ACCOUNTS_STREAM)
        since = cursor - CURSOR_OVERLAP if cursor else None
        skip = self._echo_windows(name, since)
        newest = cursor
        budget = self.budgets[name]
        budget.ensure(connector.api_calls, 1)
        pages = (connector.accounts(since, [(w.start, w.end) for w in skip])
                 if skip and isinstance(connector, LeavesOutAccountEchoes)
                 else connector.accounts(since))
        tails = EchoTails(skip)
        count = read = 0
        for page in pages:
            read += len(page)
            stamps = [a.updated_at for a in page if a.updated_at is not None]
            if stamps:
                newest = max([*stamps, *([newest] if newest else [])])
            with self.store.transaction() as tx:
                fresh = self._keep(tx, page)
            changed = {a.record_id for a in fresh}
            tails.note(page, [a for a in page if a.record_id not in changed])
            count += len(fresh)
            if self.should_stop():  # what is stored stays; the cursor is not moved
                raise SyncStopped
            budget.ensure(connector.api_calls, 1)
        ends = [w.end for w in skip]
        if newest is not None or ends:
            newest = max([*([newest] if newest is not None else []), *ends])
        with self.store.transaction() as tx:
            if newest is not None:
                self.store.set_cursor(tx, name, account_store.ACCOUNTS_STREAM, newest)
            for end, new_end in tails.grown():
                echo_store.grow(tx, name, end, new_end, echo_store.ACCOUNTS)
            if since is None:  # every company read: a sweep pass of its own
                finished_by_full_pull(tx, name, self.now)
        self.accounts_pulled[name] = count
        self._index = None
        log.info("accounts.pulled", connector=name, accounts=count, read=read,
                 incremental=cursor is not None, echo_windows_skipped=len(skip))
        self.sweep(name)

    def sweep(self, name: str) -> None:
        """Go on with the connector's accounts sweep when it is due, within its calls per
        run (syncer/run/account_sweep.py); what differs is kept as the pull keeps it."""
        found = sweep_accounts(self.store, self.connectors[name], name,
                               SweepPolicy.of(self.loaded.connector(name)), now=self.now,
                               budget=self.budgets[name], should_stop=self.should_stop,
                               keep=self._keep)
        if found:
            self.accounts_pulled[name] = self.accounts_pulled.get(name, 0) + len(found)
            self._index = None

    def _keep(self, tx: Connection, page: Sequence[Account]) -> list[Account]:
        """Store the accounts of a page that differ from the stored copy (in the caller's
        transaction) and return them: their companies are re-decided this run, and the
        people at the domains of those new or moved are placed again."""
        fresh = account_store.changed(tx, page)
        moved = {(a.source, a.record_id): clean_domain(a.domain)
                 for a in account_store.moved(tx, fresh)}
        self.moved_domains.update(d for d in moved.values() if d is not None)
        account_store.save(tx, fresh, self.now)
        refs = [(a.source, a.record_id) for a in fresh]
        # to be decided even if this run dies before it decides them
        undecided.note_accounts(tx, {ref: moved.get(ref) for ref in refs}, self.now)
        self.pulled.update(refs)
        return fresh

    def take_waiting(self) -> None:
        """Add the account records an earlier run stored and did not decide (it died, or
        was a dry run) to this run's, as if pulled now (syncer/store/undecided.py)."""
        with self.store.engine.connect() as connection:
            waiting = undecided.accounts(connection)
        if waiting:
            self.pulled.update(waiting)
            self.moved_domains.update(d for d in waiting.values() if d is not None)
            self._index = None

    def forget_decided(self, tx: Connection) -> None:
        """The account records this run pulled or took over are decided, their writes
        sent: no longer waiting (in the run's last transaction)."""
        undecided.forget_accounts(tx, self.pulled)

    def _echo_windows(self, name: str, since: datetime | None) -> list[EchoWindow]:
        """The stretches of our own account writes to leave out of an incremental pull
        (none on a full pull, or when the connector cannot leave any out)."""
        if since is None or not isinstance(self.connectors[name], LeavesOutAccountEchoes):
            return []
        with self.store.engine.connect() as connection:
            return echo_store.merged(echo_store.windows(connection, name, since,
                                                        echo_store.ACCOUNTS),
                                     MAX_ECHO_WINDOWS)

    def people_to_place(self, everyone: bool) -> tuple[list[str], bool]:
        """(person keys to decide so they are placed in their company, everyone?). A run
        that decides everyone anyway (`everyone`) places everyone. Otherwise: everyone
        once, the first run after accounts are turned on (PLACED is unset); else the
        people at the domains of companies that are new or changed this run (a Lead joins
        a company by its domain alone, so no change of theirs would bring them)."""
        self.take_waiting()
        self.placing_everyone = everyone or self.store.counter(PLACED) == 0
        if self.placing_everyone:
            return [], True
        if not self.moved_domains:
            return [], False
        with self.store.engine.connect() as connection:
            return sorted(account_store.person_keys_at(connection,
                                                       sorted(self.moved_domains))), False

    def index(self) -> AccountIndex:
        """Every stored account grouped into companies (built once per run, after the
        pulls); the key each record is grouped under is stored with it."""
        if self._index is None:
            with self.store.engine.connect() as connection:
                records = account_store.load(connection)
            kinds = {c.name: c.kind for c in self.loaded.config.connectors}
            self._index = index_accounts(records, kinds, self.order)
            with self.store.transaction() as tx:
                account_store.set_keys(tx, self._index.key_of)
            self.touched.update(self._index.key_of[ref] for ref in self.pulled
                                if ref in self._index.key_of)
        return self._index

    def owner_of(self, records: Sequence[Person]) -> tuple[str, str] | None:
        """(owner email, account name) of the CRM account a person (their records in
        precedence order) belongs to, when a record of it has an owner: routing sends
        the people of an owned account to its owner."""
        index = self.index()
        key = index.person_account(records)
        if key is None:
            return None
        group = index.groups[key]
        owner = next((a.owner_email for a in group if a.owner_email), None)
        if owner is None:
            return None
        return owner.strip().lower(), next((a.name for a in group if a.name),
                                           key.partition(":")[2])

    # -- 2. note the people of a chunk -----------------------------------------------------
    def note(self, decided: Sequence[tuple[list[Person], Decision]], dry_run: bool) -> None:
        """Remember the company and buying role of each person just decided (their records
        in precedence order); their companies, old and new, are re-decided this run. A
        dry run keeps them (and the decisions, which it does not store) in memory."""
        plan = self.model.account_plan
        if plan is None or not decided:
            return
        index = self.index()
        members: dict[str, tuple[str | None, str | None]] = {}
        for records, decision in decided:
            title = next((r.title for r in records if r.title), None)
            members[decision.key] = (index.person_account(records), buying_role(title, plan))
        with self.store.transaction() as tx:
            before = account_store.member_keys(tx, list(members))
            if not dry_run:
                account_store.save_members(tx, members)
        if dry_run:
            self.unsaved.update(members)
            self.unsaved_decisions.update((d.key, d) for _, d in decided)
        self.touched.update(before.values())
        self.touched.update(key for key, _ in members.values() if key is not None)

    # -- 3. decide and write ---------------------------------------------------------------
    def decide(self, dry_run: bool) -> tuple[list[AccountDecision], dict[str, list[Item]]]:
        """Decide every touched company, store the decisions (unless `dry_run`) and return
        them with the writes they imply, per connector."""
        index = self.index()
        keys = sorted(k for k in self.touched if k in index.groups)
        if not keys:
            if self.placing_everyone and not dry_run:
                with self.store.transaction() as tx:
                    self.store.set_counter(tx, PLACED, 1)
            return [], {}
        with self.store.engine.connect() as connection:
            people = self._with_unsaved(account_store.members_of(connection, keys))
        stored = self.store.decisions(sorted({p for found in people.values()
                                              for p, _ in found}), scores=False)
        stored.update(self.unsaved_decisions)
        decided = [decide_account(key, index.groups[key], [
            AccountMember(person, stored[person].engagement_points, role)
            for person, role in people[key] if person in stored], self.model) for key in keys]
        if not dry_run:
            with self.store.transaction() as tx:
                account_store.save_decisions(tx, decided, self.now)
                if self.placing_everyone:
                    self.store.set_counter(tx, PLACED, 1)
        writes: dict[str, list[Item]] = {}
        for decision in decided:
            for record in index.groups[decision.key]:
                item = self._write(record, decision)
                if item is not None:
                    writes.setdefault(record.source, []).append(item)
        log.info("accounts.decided", accounts=len(decided),
                 mqa=sum(d.is_mqa for d in decided),
                 writes=sum(len(items) for items in writes.values()))
        return decided, writes

    def _with_unsaved(self, people: dict[str, list[tuple[str, str | None]]]
                      ) -> dict[str, list[tuple[str, str | None]]]:
        """The companies' people as stored, with what a dry run noted in their place."""
        if not self.unsaved:
            return people
        merged = {key: [(p, role) for p, role in found if p not in self.unsaved]
                  for key, found in people.items()}
        for person, (key, role) in self.unsaved.items():
            if key in merged:
                merged[key].append((person, role))
        return {key: sorted(found) for key, found in merged.items()}

    def _write(self, record: Account, decision: AccountDecision) -> Item | None:
        """The changed account fields of one CRM record, as an item of the people's write
        path: the record as a Person (its object type names the account object), and the
        decision as the audit rows cite it."""
        if record.source not in self.connectors:
            return None
        config = self.loaded.connector(record.source)
        fields = config.account_fields
        if fields is None:
            return None
        values = account_values(fields.score, fields.grade, fields.mqa, fields.reasons,
                                decision, config.reasons_max_length)
        as_person = Person(source=record.source, record_id=record.record_id,
                           object_type=self.object_type(record.source), email=None,
                           company=record.name, crm_values=dict(record.crm_values))
        update = record_update(as_person, values)
        return None if update is None else (update, as_person, as_decision(decision))

    def object_type(self, name: str) -> str:
        """The object a connector's account records are (its RecordUpdate.object_type)."""
        return ACCOUNT_OBJECT_BY_KIND[self.loaded.connector(name).kind]


def account_values(score: str | None, grade: str | None, mqa: str | None,
                   reasons: str | None, decision: AccountDecision,
                   max_length: int) -> dict[str, str | None]:
    """CRM field -> value for the configured account fields (None: not written)."""
    values: dict[str, str | None] = {}
    if score is not None:
        values[score] = str(decision.score)
    if grade is not None:
        values[grade] = decision.grade
    if mqa is not None:
        values[mqa] = "true" if decision.is_mqa else "false"
    if reasons is not None:
        values[reasons] = account_summary(decision, max_length)
    return values


def as_decision(decision: AccountDecision) -> Decision:
    """An account decision in the shape the write path and its audit rows take: the key
    is the company key, the stage says MQA (`mql`) or not (`lead`)."""
    return Decision(key=decision.key, score=decision.score, fit_points=decision.fit,
                    engagement_points=decision.engagement, fit_grade=decision.grade,
                    stage=Stage.MQL if decision.is_mqa else Stage.LEAD, owner_email=None,
                    reasons=decision.reasons, model_version=decision.model_version)


def role_values(role_field: str | None, records: Sequence[Person], model: Model
                ) -> dict[str, str | None]:
    """The person's buying role for the `buying_role` write-back field ({} when the
    connector maps none or the model has no accounts section)."""
    plan = model.account_plan
    if role_field is None or plan is None:
        return {}
    title = next((r.title for r in records if r.title), None)
    return {role_field: buying_role(title, plan)}


