"""The reconciliation sweep: find records that slipped behind the cursor.

An incremental pull reads what was stamped since its cursor. A record whose stamp lands
behind it (a late commit, a restored backup, an integration with a skewed clock, an edit
made while syncer's own writes were landing) is never read again by that. The sweep reads
every record, a page per call in id order, and stores those whose content differs from the
state's, as a pull would, so their people are decided in this run; the rest change nothing.

It compares content, not only stamps: a record edited behind the cursor and then written
by syncer (the daily re-score writes many) carries the stamp of our own write, so a list of
ids and stamps would take it for our echo and never see the edit. Both CRMs page whole
records as cheaply as ids and stamps (HubSpot's search 200 and Salesforce's query 2,000 per
call, whatever the fields), so the content costs no extra call.

A pass starts when the last one is older than `sweep_every_hours` (a full pull counts as a
pass) and spends at most `sweep_calls_per_run` calls per run; its position is in the state,
so the next run resumes where this one stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog

from syncer.domain.config import LoadedConfig
from syncer.domain.connector import Connector
from syncer.domain.connector_config import ConnectorConfig
from syncer.domain.types import Person
from syncer.observe.logs import log_context
from syncer.run.budget import DailyBudget
from syncer.run.pull import Pulled, Puller, SyncStopped
from syncer.store import sweep as sweep_store
from syncer.store.repository import Store
from syncer.store.sweep import SweepMark

log = structlog.get_logger(__name__)


@runtime_checkable
class Sweepable(Protocol):
    """What a connector offers the sweep."""

    def sweep_page(self, position: str | None) -> tuple[list[Person], str | None]:
        """One page (one call) of live records from `position`, and the next position
        (None: the listing is done)."""
        ...


@dataclass(frozen=True)
class SweepPolicy:
    """How often a pass starts (None: never) and how many calls one run may spend on it."""

    every: timedelta | None
    calls_per_run: int

    @classmethod
    def of(cls, config: ConnectorConfig) -> SweepPolicy:
        hours = config.sweep_every_hours
        return cls(timedelta(hours=hours) if hours > 0 else None, config.sweep_calls_per_run)

    def due(self, mark: SweepMark, now: datetime) -> bool:
        if self.every is None or self.calls_per_run < 1:
            return False
        return mark.under_way or mark.done_at is None or now - mark.done_at >= self.every


def sweep(puller: Puller, policy: SweepPolicy) -> Pulled:
    """Run (or go on with) this connector's sweep within the policy's call budget; what
    it found is in the returned Pulled (`touched`: the people to decide)."""
    connector, store, name = puller.connector, puller.store, puller.name
    with store.engine.connect() as connection:
        mark = sweep_store.mark(connection, name)
    if not policy.due(mark, puller.now) or not isinstance(connector, Sweepable):
        return puller.pulled
    if not mark.under_way:
        mark = SweepMark(None, puller.now, mark.done_at)
    first, pages = connector.api_calls, 0
    while connector.api_calls - first < policy.calls_per_run:
        puller.budget.ensure(connector.api_calls, 1)
        page, following = connector.sweep_page(mark.position)
        puller.pulled.read += len(page)
        if page:
            puller.store_page(page, drop_unchanged=True)
        mark = (SweepMark(following, mark.started_at, mark.done_at) if following is not None
                else SweepMark(None, None, puller.now))
        with store.transaction() as tx:
            sweep_store.save(tx, name, mark)
        pages += 1
        if following is None:
            break
        if puller.should_stop():
            raise SyncStopped
    log.info("sweep.done" if not mark.under_way else "sweep.paused", connector=name,
             pages=pages, calls=connector.api_calls - first, read=puller.pulled.read,
             found=puller.pulled.records, position=mark.position)
    return puller.pulled


def sweep_connectors(loaded: LoadedConfig, store: Store, connectors: Mapping[str, Connector],
                     names: Sequence[str], *, now: datetime, run_id: str, model_version: str,
                     budgets: Mapping[str, DailyBudget],
                     should_stop: Callable[[], bool]) -> dict[str, Pulled]:
    """The run's sweep stage, after the pulls: each pulled connector's sweep, when due."""
    found: dict[str, Pulled] = {}
    for name in names:
        with log_context(connector=name):
            puller = Puller(store, connectors[name], now=now, run_id=run_id,
                            model_version=model_version, budget=budgets[name],
                            should_stop=should_stop)
            found[name] = sweep(puller, SweepPolicy.of(loaded.connector(name)))
    return found
