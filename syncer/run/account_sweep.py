"""The accounts' reconciliation sweep: find companies that slipped behind the accounts cursor.

The accounts pull (syncer/run/accounts.py) reads the companies stamped since its cursor,
so one whose stamp lands behind it (a late commit, a restored backup, an integration with
a skewed clock, an edit made while syncer's company writes were landing) is never read
again by it. As the people's sweep does (syncer/run/sweep.py), a pass reads every company,
a page per call in id order, and keeps those whose content differs from the state's as
the pull keeps them, so their companies (and the people of a company that moved) are
decided in this run; the rest change nothing. It compares content, not stamps: a company
edited behind the cursor and then written by syncer carries our write's stamp.

When: the connector's `sweep_every_hours`, as for people; a full accounts pull counts as
a pass (`finished_by_full_pull`). How much: up to `sweep_calls_per_run` calls per run,
a budget of its own beside the people's sweep. The people's sweep runs later in the run
(syncer/run/pipeline.py), so a shared budget spent here first would stall its pass
whenever an accounts pass is under way; companies are few beside people (a pass costs
ceil(companies / 200) HubSpot or ceil(Accounts / 2,000) Salesforce calls, 10,000
companies: one run's default 50), and the daily API budget still bounds every call.
Where a pass stands is a row of the `sweeps` table under `sweep_key(connector)`, saved
in the transaction that stores its page, so the next run resumes after the last page
stored and reads no page twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import structlog
from sqlalchemy import Connection

from syncer.domain.accounts import Account
from syncer.domain.connector import Connector
from syncer.run.budget import DailyBudget
from syncer.run.pull import SyncStopped
from syncer.run.sweep import SweepPolicy
from syncer.store import sweep as sweep_store
from syncer.store.repository import Store
from syncer.store.sweep import SweepMark

log = structlog.get_logger(__name__)

#: what follows the connector's name in its accounts sweep's row (a connector name has
#: no dot, so the row never names a connector's people sweep)
SUFFIX = ".accounts"
#: the `sweeps.connector` column's length
KEY_LENGTH = 40

#: stores the accounts of a page that differ from the state's, in the caller's
#: transaction, and returns them
KeepPage = Callable[[Connection, Sequence[Account]], list[Account]]


@runtime_checkable
class SweepsAccounts(Protocol):
    """What a connector offers the accounts' sweep."""

    def account_sweep_page(self, position: str | None) -> tuple[list[Account], str | None]:
        """One page (one call) of account records in id order from `position`, and the
        next position (None: the listing is done)."""
        ...


def sweep_key(connector: str) -> str:
    """The `sweeps` row of a connector's accounts sweep: "<connector>.accounts", or when
    that is longer than the column (a connector name may have 40 characters) the name cut
    short with 8 hex digits of its hash, so two long names sharing a beginning keep rows
    of their own."""
    key = connector + SUFFIX
    if len(key) <= KEY_LENGTH:
        return key
    digest = hashlib.sha256(connector.encode()).hexdigest()[:8]
    return f"{connector[:KEY_LENGTH - len(SUFFIX) - 9]}~{digest}{SUFFIX}"


def finished_by_full_pull(tx: Connection, connector: str, now: datetime) -> None:
    """Record that a full accounts pull read every company (in its transaction): a pass,
    so the next one is due `sweep_every_hours` from now."""
    sweep_store.save(tx, sweep_key(connector), SweepMark(done_at=now))


def sweep_accounts(store: Store, connector: Connector, name: str, policy: SweepPolicy, *,
                   now: datetime, budget: DailyBudget, should_stop: Callable[[], bool],
                   keep: KeepPage) -> list[Account]:
    """Run (or go on with) the connector's accounts sweep when due, within the policy's
    calls; each page's differing accounts are stored by `keep` in the transaction that
    moves the position. Returns them (none when not due or the connector cannot sweep).
    SyncStopped between pages when the run is asked to stop; what is stored stays."""
    if not isinstance(connector, SweepsAccounts):
        return []
    key = sweep_key(name)
    with store.engine.connect() as connection:
        mark = sweep_store.mark(connection, key)
    if not policy.due(mark, now):
        return []
    if not mark.under_way:
        mark = SweepMark(None, now, mark.done_at)
    found: list[Account] = []
    first, pages, read = connector.api_calls, 0, 0
    while connector.api_calls - first < policy.calls_per_run:
        budget.ensure(connector.api_calls, 1)
        page, following = connector.account_sweep_page(mark.position)
        mark = (SweepMark(following, mark.started_at, mark.done_at) if following is not None
                else SweepMark(None, None, now))
        with store.transaction() as tx:
            if page:
                found.extend(keep(tx, page))
            sweep_store.save(tx, key, mark)
        pages, read = pages + 1, read + len(page)
        if following is None:
            break
        if should_stop():
            raise SyncStopped
    log.info("accounts.sweep.done" if not mark.under_way else "accounts.sweep.paused",
             connector=name, pages=pages, calls=connector.api_calls - first, read=read,
             found=len(found), position=mark.position)
    return found
