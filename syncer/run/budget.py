"""A daily API budget per connector that a sync never exceeds.

CRMs cap requests per day (HubSpot 250k-1M by tier, Salesforce 100k + 1k per licence) and
the allowance is shared with every other integration of the account, so an admin gives
syncer a share (`daily_api_budget`). Calls are counted in the store per UTC day, so the
budget holds across runs and restarts; before a call that could cross it, the sync stops
cleanly, says so, and resumes in the next day's window.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from syncer.store.repository import Store


class BudgetExhausted(Exception):
    """The connector's daily budget would be exceeded; the run stops here."""

    def __init__(self, connector: str, used: int, budget: int, resumes_at: datetime) -> None:
        super().__init__(f"connector {connector}: daily API budget reached ({used} of "
                         f"{budget} calls used today); syncing resumes after "
                         f"{resumes_at:%Y-%m-%d %H:%M} UTC")
        self.connector = connector
        self.used = used
        self.budget = budget
        self.resumes_at = resumes_at


class DailyBudget:
    """Tracks one connector's calls today against its budget (None: unlimited)."""

    def __init__(self, store: Store, connector: str, budget: int | None, now: datetime,
                 api_calls: int = 0) -> None:
        """`api_calls`: the connector's call total now (calls before it are not ours)."""
        self.store = store
        self.connector = connector
        self.budget = budget
        day = now.astimezone(timezone.utc).date()
        self.counter = f"api_calls.{connector}.{day.isoformat()}"
        self.resumes_at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) \
            + timedelta(days=1)
        self.used = store.counter(self.counter)
        self._seen = api_calls

    def record(self, api_calls: int) -> None:
        """Persist calls made since the last record (`api_calls` is the connector's total)."""
        spent = api_calls - self._seen
        if spent > 0:
            self._seen = api_calls
            self.used += spent
            with self.store.transaction() as tx:
                self.store.set_counter(tx, self.counter, self.used)

    def ensure(self, api_calls: int, upcoming: int) -> None:
        """Raise BudgetExhausted unless `upcoming` more calls still fit today."""
        self.record(api_calls)
        if self.budget is not None and self.used + upcoming > self.budget:
            raise BudgetExhausted(self.connector, self.used, self.budget, self.resumes_at)
