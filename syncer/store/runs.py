"""Run history: a run is inserted when it starts and updated when it ends; the scheduler,
alerts, metrics and the admin read it back as `RunRecord`s.

`RunQueries` is mixed into `Store` (syncer/store/repository.py), so callers keep writing
`store.runs(...)`; runs saved whole (skipped, spooled) are syncer/store/run_history.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, RowMapping, select, update

from syncer.domain.json_values import JSONObject
from syncer.store import tables as t

#: The status of a run that did not start because another run held the lock.
SKIPPED = "skipped"


def utc_or_none(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything in syncer is aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@dataclass(frozen=True)
class RunRecord:
    """One row of run history. `stats` holds the counters the pipeline reports, mostly as
    {connector: number}; `total` adds them up."""

    run_id: str
    connectors: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None
    status: str
    dry_run: bool
    stats: Mapping[str, object]
    error: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> RunRecord:
        started = utc_or_none(row["started_at"])
        assert started is not None
        connectors: str = row["connectors"]
        return cls(run_id=row["run_id"], connectors=tuple(filter(None, connectors.split(","))),
                   started_at=started, finished_at=utc_or_none(row["finished_at"]),
                   status=row["status"], dry_run=bool(row["dry_run"]),
                   stats=dict(row["stats"] or {}), error=row["error"])

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def per_connector(self, name: str) -> dict[str, object]:
        """The stat `name` as {connector: value} (empty when the run did not report it)."""
        value = self.stats.get(name)
        return dict(value) if isinstance(value, Mapping) else {}

    def counts(self, name: str) -> dict[str, int]:
        """The stat `name` as {connector: count} (or {kind: count} for a run-wide one such
        as `sla`), its numbers only: a value of another kind is left out, not misread."""
        return _numbers(self.per_connector(name))

    def nested_counts(self, name: str) -> dict[str, dict[str, int]]:
        """A stat of counts per connector and key, e.g. api_calls_by_status."""
        return {connector: _numbers(value) for connector, value in
                self.per_connector(name).items() if isinstance(value, Mapping)}

    def objects(self, name: str) -> dict[str, JSONObject]:
        """A stat of one object per connector, e.g. rate_limit_headroom."""
        return {connector: value for connector, value in self.per_connector(name).items()
                if isinstance(value, dict)}

    def total(self, name: str) -> int:
        """A stat summed over connectors (or the number itself for run-wide stats)."""
        value = self.stats.get(name, 0)
        if isinstance(value, Mapping):
            return int(sum(v for v in value.values() if isinstance(v, (int, float))))
        return int(value) if isinstance(value, (int, float)) else 0


def _numbers(values: Mapping[str, object]) -> dict[str, int]:
    return {key: int(value) for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


class RunQueries:
    """The run-history half of `Store`."""

    engine: Engine

    def start_run(self, run_id: str, connectors: Sequence[str], at: datetime,
                  dry_run: bool) -> None:
        # Not fenced (nor is finish_run): a run's own history row is no shared state, and
        # a run that lost its lock must still say so.
        with self.engine.begin() as connection:
            connection.execute(t.runs.insert(), [{
                "run_id": run_id, "connectors": ",".join(connectors), "started_at": at,
                "status": "running", "dry_run": int(dry_run), "stats": {}}])

    def finish_run(self, run_id: str, at: datetime, status: str,
                   stats: Mapping[str, object], error: str | None = None) -> RunRecord:
        """Record how a run ended; returns the run as stored (what metrics observe)."""
        with self.engine.begin() as connection:
            connection.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(
                finished_at=at, status=status, stats=dict(stats), error=error))
            row = connection.execute(select(t.runs).where(t.runs.c.run_id == run_id)
                                     ).mappings().one()
        return RunRecord.from_row(row)

    def run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(t.runs).where(t.runs.c.run_id == run_id)
                                     ).mappings().one_or_none()
        return RunRecord.from_row(row) if row is not None else None

    def runs(self, limit: int | None = 20, *, connector: str | None = None,
             status: str | None = None, finished: bool = False,
             skipped: bool = True) -> list[RunRecord]:
        """Runs newest first; only those that included `connector` / ended in `status` /
        have finished / (`skipped=False`) were not skipped, when given."""
        query = select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.run_id.desc())
        if connector is not None:
            query = query.where(t.runs.c.connectors.contains(connector, autoescape=True))
        if status is not None:
            query = query.where(t.runs.c.status == status)
        if finished:
            query = query.where(t.runs.c.finished_at.is_not(None))
        if not skipped:
            query = query.where(t.runs.c.status != SKIPPED)
        found: list[RunRecord] = []
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            for row in result.mappings():
                record = RunRecord.from_row(row)
                if connector is None or connector in record.connectors:
                    found.append(record)
                    if limit is not None and len(found) >= limit:
                        break
            result.close()
        return found

    def last_runs(self, connectors: Iterable[str]) -> dict[str, RunRecord]:
        """The latest finished run of each connector that has one; runs skipped because
        another held the lock say nothing about the connector and are passed over."""
        latest: dict[str, RunRecord] = {}
        for name in connectors:
            runs = self.runs(1, connector=name, finished=True, skipped=False)
            if runs:
                latest[name] = runs[0]
        return latest

    def failure_streak(self, connector: str, cap: int = 1000) -> int:
        """How many of the connector's latest finished runs failed in a row."""
        streak = 0
        for run in self.runs(cap, connector=connector, finished=True, skipped=False):
            if run.status != "failed":
                break
            streak += 1
        return streak
