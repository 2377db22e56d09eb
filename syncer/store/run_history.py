"""Run history rows written whole: skipped runs and runs replayed from the local spool.

A normal run is inserted when it starts and updated when it ends (Store.start_run and
finish_run); a run that was skipped, or whose end could not reach the state database at
the time (syncer/run/ledger.py), is saved here in one go. Saving is an upsert by run id, so
replaying a spool twice (a crash between the replay and emptying the file) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import func, select

from syncer.store import tables as t
from syncer.store.repository import Store
from syncer.store.runs import RunRecord


def save_runs(store: Store, runs: Sequence[RunRecord]) -> None:
    """Insert or overwrite these runs (not fenced: a run's own history is no shared state)."""
    rows = [{"run_id": run.run_id, "connectors": ",".join(run.connectors),
             "started_at": run.started_at, "finished_at": run.finished_at,
             "status": run.status, "dry_run": int(run.dry_run), "stats": dict(run.stats),
             "error": run.error} for run in runs]
    if not rows:
        return
    with store.engine.begin() as connection:
        store._upsert(connection, t.runs, rows, ("run_id",))


def completed_since(store: Store, connector: str, statuses: Sequence[str]) -> RunRecord | None:
    """The connector's latest finished run that ended in one of `statuses`, if any."""
    found = [run for status in statuses
             for run in store.runs(1, connector=connector, status=status, finished=True)]
    return max(found, key=lambda run: run.finished_at or run.started_at, default=None)


def overlapping_runs(store: Store) -> list[tuple[RunRecord, RunRecord]]:
    """Pairs of runs that shared a connector and ran at the same time: what the run lock
    exists to prevent, so an empty list is the check that it held. Skipped runs never ran;
    a run still `running` counts as running until now; a killed run (`interrupted`, no end
    recorded) is left out, its end being unknown (the lock of its dead session was free the
    moment it died). The intervals are compared in SQL, the connectors in Python (they are
    kept as one comma-separated column)."""
    a, b = t.runs.alias("a"), t.runs.alias("b")
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    ran = ("skipped", "interrupted")
    query = select(a.c.run_id, b.c.run_id).where(
        a.c.run_id < b.c.run_id, a.c.status.not_in(ran), b.c.status.not_in(ran),
        a.c.dry_run == 0, b.c.dry_run == 0,
        a.c.started_at < func.coalesce(b.c.finished_at, far),
        b.c.started_at < func.coalesce(a.c.finished_at, far))
    with store.engine.connect() as connection:
        pairs = connection.execute(query).all()
    found: list[tuple[RunRecord, RunRecord]] = []
    for first_id, second_id in pairs:
        first, second = store.run(first_id), store.run(second_id)
        if first and second and set(first.connectors) & set(second.connectors):
            found.append((first, second))
    return found
