"""Every run ends up in run history, including one that could not reach the state database.

A run records itself in the store (`runs`). When the store cannot be reached (the database
is down, the file unreadable), the run's record goes to a small local spool instead: JSON
lines in `$SYNCER_SPOOL`, else `.syncer/run-spool.jsonl` beside the config file. The next
run that reaches the store (and `syncer runs`) replays the spool into run history first, so
`syncer runs`, alerts and /healthz see the failure once the database is back. Metrics count
the run either way (`syncer_runs_total{status="failed"}`, `syncer_last_run_failed`).

The spool is appended to and emptied under a file lock, and replay is an upsert by run id,
so several processes (a daemon and a manual sync) can share one spool.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import structlog
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.config import LoadedConfig
from syncer.domain.json_values import as_list, as_object, strings
from syncer.observe.logs import redact_text
from syncer.observe.metrics import SyncMetrics
from syncer.store.locks import LockHeld
from syncer.store.repository import Store
from syncer.store.run_history import save_runs
from syncer.store.runs import SKIPPED, RunRecord

log = structlog.get_logger(__name__)

SPOOL_ENV = "SYNCER_SPOOL"


def spool_path(loaded: LoadedConfig) -> Path:
    """Where runs that could not be recorded wait: $SYNCER_SPOOL, else beside the config;
    a tenant's in a file of its own (`run-spool.acme.jsonl`), so its runs return to its
    own state."""
    configured = os.environ.get(SPOOL_ENV)
    path = Path(configured) if configured else loaded.path.parent / ".syncer" / "run-spool.jsonl"
    if loaded.tenant is None:
        return path
    return path.with_name(f"{path.stem}.{loaded.tenant}{path.suffix}")


def unreachable_message(error: BaseException) -> str:
    """What a run that could not reach the state database says (first line, redacted)."""
    inner = getattr(error, "orig", None) or error
    line = (str(inner).strip().splitlines() or [""])[0]
    return redact_text(f"state database unreachable: {type(inner).__name__}: {line}")[:2000]


@dataclass(frozen=True)
class RunSpool:
    """The local file of runs waiting to be written to run history."""

    path: Path

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, run: RunRecord) -> bool:
        """Keep `run` for later; False (and an error log) if even the spool is unwritable."""
        line = json.dumps({
            "run_id": run.run_id, "connectors": list(run.connectors),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "status": run.status, "dry_run": run.dry_run, "stats": dict(run.stats),
            "error": run.error}, sort_keys=True)
        try:
            with self._locked() as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            log.error("run.spool_failed", run_id=run.run_id, path=str(self.path),
                      error=type(error).__name__)
            return False
        log.warning("run.spooled", run_id=run.run_id, path=str(self.path), status=run.status)
        return True

    def replay(self, store: Store) -> int:
        """Write every spooled run to run history and empty the spool; returns how many.
        Raises SQLAlchemyError (spool kept) when the store is still unreachable."""
        try:
            if not self.path.exists() or self.path.stat().st_size == 0:
                return 0
            with self._locked() as handle:
                handle.seek(0)
                runs = [_from_json(line) for line in handle.read().splitlines()
                        if line.strip()]
                save_runs(store, [run for run in runs if run is not None])
                handle.truncate(0)
        except OSError as error:  # a spool we cannot read must not stop the sync
            log.error("run.spool_unreadable", path=str(self.path), error=type(error).__name__)
            return 0
        log.info("run.spool_replayed", runs=len(runs), path=str(self.path))
        return len(runs)


def _from_json(line: str) -> RunRecord | None:
    try:
        data = as_object(json.loads(line), "spool line")
        started, finished, error = (data["started_at"], data.get("finished_at"),
                                    data.get("error"))
        if not isinstance(started, str) or not isinstance(finished, str | None):
            raise TypeError("started_at and finished_at: expected ISO times")
        return RunRecord(
            run_id=str(data["run_id"]),
            connectors=tuple(strings(as_list(data["connectors"], "connectors"))),
            started_at=datetime.fromisoformat(started),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            status=str(data["status"]), dry_run=bool(data.get("dry_run")),
            stats=as_object(data.get("stats") or {}, "stats"),
            error=error if isinstance(error, str) else None)
    except (ValueError, KeyError, TypeError):
        log.error("run.spool_line_unreadable")
        return None


class RunLedger:
    """Where one run's history row goes: the store, or the spool when it is unreachable;
    and the metrics, either way."""

    def __init__(self, loaded: LoadedConfig, store: Store | None, run_id: str,
                 connectors: Sequence[str], dry_run: bool, metrics: SyncMetrics | None,
                 started: datetime | None = None) -> None:
        self.spool = RunSpool(spool_path(loaded))
        self.store = store
        self.run_id = run_id
        self.connectors = tuple(connectors)
        self.dry_run = dry_run
        self.metrics = metrics
        self.started = started or datetime.now(timezone.utc)

    def replay_spool(self) -> None:
        """Before the run: earlier runs that could not be recorded go first."""
        if self.store is not None:
            self.spool.replay(self.store)

    def _record(self, status: str, stats: Mapping[str, object], error: str | None
                ) -> RunRecord:
        return RunRecord(self.run_id, self.connectors, self.started,
                         datetime.now(timezone.utc), status, self.dry_run, stats, error)

    def _observe(self, run: RunRecord) -> RunRecord:
        if self.metrics is not None:
            self.metrics.observe_run(run)
        return run

    def skipped(self, busy: LockHeld) -> RunRecord:
        """The run did not start: another run holds the lock (who, in `error` and stats)."""
        holder = busy.holder
        held_by = {"connector": busy.name} | ({
            "host": holder.host, "pid": holder.pid, "run_id": holder.run_id,
            "since": holder.since.isoformat() if holder.since else None} if holder else {})
        run = self._record(SKIPPED, {"held_by": held_by}, f"{busy}; skipped")
        try:
            if self.store is None:
                raise SQLAlchemyError("no store")
            save_runs(self.store, [run])
        except SQLAlchemyError:
            self.spool.append(run)
        return self._observe(run)

    def finish(self, status: str, stats: Mapping[str, object], error: str | None
               ) -> RunRecord:
        """Record how the run ended; spooled if the store is unreachable now."""
        try:
            if self.store is None:
                raise SQLAlchemyError("no store")
            run = self.store.finish_run(self.run_id, datetime.now(timezone.utc), status,
                                        stats, error)
        except SQLAlchemyError as failure:  # the run's own outcome stands; say why late
            run = self._record(status, {**stats, "recorded_late": unreachable_message(failure)},
                               error)
            self.spool.append(run)
        return self._observe(run)

    def unrecorded(self, error: BaseException) -> RunRecord:
        """The run failed before it could record itself (the store unreachable)."""
        run = self._record("failed", {}, unreachable_message(error))
        self.spool.append(run)
        return self._observe(run)


def record_unreachable(loaded: LoadedConfig, connectors: Sequence[str], error: BaseException,
                       metrics: SyncMetrics | None = None) -> RunRecord:
    """A run that could not even open the state database (at start-up, or a daemon job
    before its sync): spooled as failed, counted in `metrics`."""
    ledger = RunLedger(loaded, None, new_run_id(), connectors, False, metrics)
    return ledger.unrecorded(error)


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]
