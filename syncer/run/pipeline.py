"""One sync run: take the lock, record it, then pull, qualify, diff, push, audit.

`run_sync` is a plain function of (config, store, connectors, model, now) so the in-process
scheduler today and a PostgreSQL task queue later can both call it; every piece of state it
needs lives in the store. It knows no CRM by name: connectors translate, the core decides.
This module is the run's frame (lock, ledger, the stages in order, how a run ends); the
stages of one chunk of people live in syncer/run/chunk.py, the tally in syncer/run/summary.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

import structlog
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.api_usage import RATE_LIMITED, RateLimitDeadline, open_usage_windows
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.observe import progress
from syncer.observe.logs import redact_text
from syncer.observe.metrics import SyncMetrics
from syncer.qualify import Model
from syncer.run.budget import BudgetExhausted, DailyBudget
from syncer.run.chunk import RESCORED_PREFIX, Sync, ToQualify
from syncer.run.collector import collector_for_sync
from syncer.run.diff import OwnerDirectory
from syncer.run.echo import WriteWatch
from syncer.run.focused import Focus, pull_focus
from syncer.run.ledger import RunLedger, new_run_id
from syncer.run.pull import SyncStopped
from syncer.run.recovery import reconcile_interrupted_writes
from syncer.run.summary import RunSummary
from syncer.run.sweep import sweep_connectors
from syncer.store import full_pulls
from syncer.store.cursor_marks import cursor_marks, rewind_cursors
from syncer.store.locks import LockHeld, LostLock, OnWait
from syncer.store.locks import acquire as acquire_run_lock
from syncer.store.repository import Store
from syncer.store.runs import SKIPPED

__all__ = ["CHUNK", "LOST_LOCK", "RESCORED_PREFIX", "RunSummary", "Sync", "run_sync"]

log = structlog.get_logger(__name__)

#: Profiles are qualified and pushed in chunks of this many, bounding memory.
CHUNK = 500
#: The status of a run that lost its lock part way (it wrote nothing after that).
LOST_LOCK = "lost_lock"


def run_sync(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
             model: Model, now: datetime, *, only: Sequence[str] | None = None,
             dry_run: bool = False,
             should_stop: Callable[[], bool] = lambda: False, full: bool = False,
             metrics: SyncMetrics | None = None, wait: bool = False,
             on_wait: OnWait | None = None, tenant: str | None = None,
             focus: Focus | None = None) -> RunSummary:
    """Pull the `only` connectors (all when None), then qualify every person they hold and
    push the changed fields to every CRM that person lives in. With `focus` the pull reads
    only the records and hand-raises it names (syncer/run/focused.py) and only their people
    are qualified; every other stage is the same.

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
        with collector_for_sync():
            return _run(loaded, store, connectors, model, now, selected, ledger, summary,
                        dry_run=dry_run, should_stop=should_stop, full=full, wait=wait,
                        on_wait=on_wait, tenant=tenant or loaded.tenant, focus=focus)
    finally:
        structlog.contextvars.reset_contextvars(**context)


def _run(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
         model: Model, now: datetime, selected: list[str], ledger: RunLedger,
         summary: RunSummary, *, dry_run: bool, should_stop: Callable[[], bool], full: bool,
         wait: bool, on_wait: OnWait | None, tenant: str | None,
         focus: Focus | None = None) -> RunSummary:
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
                               dry_run=dry_run, should_stop=should_stop, full=full,
                               focus=focus)
    finally:
        lock.release()


def _locked_run(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                model: Model, now: datetime, selected: list[str], ledger: RunLedger, *,
                dry_run: bool, should_stop: Callable[[], bool], full: bool,
                focus: Focus | None = None) -> RunSummary:
    """The run itself, under its lock."""
    watch = WriteWatch()
    connectors = watch.wrap(connectors)  # the echo window of the run's writes (run/echo.py)
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
        if focus is not None:  # a webhook's or an import's people, read now
            sync.touched |= pull_focus(focus, store, connectors, now, sync.budgets,
                                       summary.records_pulled, summary.activities_pulled)
        if focus is None:
            sync.pull(selected)
        if focus is None and not full:  # a full pull is a sweep pass of its own
            for name, swept in sweep_connectors(
                    loaded, store, connectors, selected, now=now, run_id=summary.run_id,
                    model_version=model.version, budgets=sync.budgets,
                    should_stop=should_stop).items():
                sync.touched |= swept.touched
                summary.records_pulled[name] += swept.records
        if not dry_run:
            reconcile_interrupted_writes(
                store, selected, {n: loaded.connector(n).fields.owner for n in selected}, now,
                summary.run_id)
        if focus is None and model.routing.sla is None:  # who to decide is known already
            keys, everyone = sync.keys_to_qualify(selected)
            if keys.total:  # a run with nobody to decide needs no owners (a quiet run's calls)
                _load_routing(sync, connectors)
        else:  # the SLA review comes with the routing and adds the people it is due for
            _load_routing(sync, connectors)
            keys, everyone = sync.keys_to_qualify(selected) if focus is None \
                else (ToQualify(store, selected, sorted(sync.touched.union(
                    sync.pending_keys()))), False)
        for part in keys.chunks(CHUNK):
            if should_stop():
                raise SyncStopped
            sync.process_chunk(part)
            progress.current().advance("qualify", len(part), total=keys.total)
        sync.decide_accounts()  # after every person: a company reads all its people
        if not dry_run:
            sync.flush(final=True)
            sync.save_shared_bases()
        if not dry_run:
            with store.transaction() as tx:
                sync.forget_decided(tx, keys)  # decided, and every write sent
                if everyone:
                    for name in selected:
                        store.set_counter(tx, RESCORED_PREFIX + name, now.date().toordinal())
                if everyone and focus is None:  # everyone decided and written: no full
                    full_pulls.finish(tx, selected)  # sync to resume
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
        sync.close()  # what is still on the wire is recorded before the run's end
        if not dry_run and status in ("succeeded", "partial", "stopped", "budget_exhausted"):
            # every write of these runs is recorded; after any other end the next pull
            # reads the echo back, which the recovery of interrupted writes needs
            watch.seal(store, connectors, summary.run_id)
        summary.owners_assigned = sync.decider.owners_assigned
        if sync.decider.sla is not None:
            summary.sla.update(sync.decider.sla.counts)
        for name, connector in connectors.items():
            summary.api_calls[name] = connector.api_calls - calls_before[name]
            _record_budget(sync.budgets[name], connector.api_calls)
        summary.api_usage = {name: window.close() for name, window in usage.items()}
        summary.status = ledger.finish(status, summary.stats(), summary.error).status
        log.info("sync.done", run_id=summary.run_id, status=summary.status, dry_run=dry_run,
                 **summary.stats())
    return summary


def _load_routing(sync: Sync, connectors: Mapping[str, Connector]) -> None:
    """Every CRM's owners, then what routing needs for the run (syncer/run/decide.py)."""
    for name, connector in connectors.items():
        sync.budgets[name].ensure(connector.api_calls, 2)
        sync.decider.directories[name] = OwnerDirectory.build(connector.owners())
    sync.decider.prepare_routing()


def _record_budget(budget: DailyBudget, api_calls: int) -> None:
    """Count the calls made; a run that lost its lock or the database counts them no more
    (the run is over either way, and its own end must still be recorded)."""
    try:
        budget.record(api_calls)
    except (LostLock, SQLAlchemyError) as error:
        log.warning("sync.budget_not_recorded", connector=budget.connector,
                    error=type(error).__name__)
