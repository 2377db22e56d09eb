"""`syncer run`: one APScheduler job per connector at its configured interval.

Jobs share one worker thread, so runs never overlap (two runs writing the same person at
once could interleave) and a connector never runs twice at once; missed runs are coalesced
into one. Across processes (a manual `syncer sync --once`, a second daemon) the run lock
does the same: a job whose connector another process is syncing is recorded as skipped.
A job that cannot reach the state database is still recorded (syncer/run/ledger.py), and
/healthz stays unready until every connector has had a run succeed since start-up.
SIGTERM or SIGINT asks the running sync to stop after its current batch, then the
scheduler shuts down and the process exits cleanly.

Beside the jobs the daemon serves /healthz and /metrics (syncer/ops/health.py), sends alerts
after failed runs (syncer/ops/alerts.py) and, when `audit.retention_days` is set, archives old
audit rows once a day in the same worker, so archiving never races a sync.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from syncer.observe.logs import log_context, redact_text
from syncer.observe.metrics import SyncMetrics, dead_letter_counts
from syncer.ops.alerts import Alerts
from syncer.ops.health import HealthServer, HealthServerError
from syncer.run.ledger import record_unreachable, unreachable_message
from syncer.run.pipeline import run_sync
from syncer.run.runtime import SyncRuntime
from syncer.store.audit import AuditError
from syncer.store.audit_archive import apply_retention
from syncer.store.runs import SKIPPED

log = structlog.get_logger(__name__)


class Daemon:
    """The long-running process: schedules syncs until asked to stop."""

    def __init__(self, runtime: SyncRuntime, *, first_run_delay: float = 1.0,
                 metrics: SyncMetrics | None = None, alerts: Alerts | None = None,
                 health_port: int | None = None) -> None:
        """`alerts` defaults to the config's webhook (ConfigError if its secret is unset);
        `health_port` overrides `health.port` (tests pass 0 for a free port)."""
        self.runtime = runtime
        config = runtime.loaded.config
        self.connector_names = [c.name for c in config.connectors]
        self.stop_event = threading.Event()
        self.metrics = metrics or SyncMetrics()
        self.metrics.declare(self.connector_names)
        self.alerts = alerts if alerts is not None else Alerts.from_config(runtime.loaded)
        self.health: HealthServer | None = None
        if config.health.enabled:
            self.health = HealthServer(
                runtime.require_store, self.connector_names, self.metrics,
                host=config.health.host,
                port=config.health.port if health_port is None else health_port,
                before_scrape=self._refresh_dead_letters,
                require_success_since=datetime.now(timezone.utc))
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        start = datetime.now(timezone.utc) + timedelta(seconds=first_run_delay)
        for connector in config.connectors:
            self.scheduler.add_job(
                self._job(connector.name), "interval", id=f"sync:{connector.name}",
                name=f"sync {connector.name}", minutes=connector.schedule.every_minutes,
                next_run_time=start)
        if config.audit.retention_days is not None:
            self.scheduler.add_job(self.archive_audit, "interval", id="audit:archive",
                                   name="archive old audit rows", hours=24,
                                   next_run_time=start + timedelta(minutes=1))

    def _job(self, name: str) -> Callable[[], None]:
        def job() -> None:
            if self.stop_event.is_set():
                return
            runtime = self.runtime
            with log_context(connector=name):
                error: Exception | None = None
                try:
                    model = runtime.refresh_model().model  # edits, publishes, rollbacks
                except SQLAlchemyError as unreachable:  # no run started: record one anyway
                    record_unreachable(runtime.loaded, [name], unreachable, self.metrics)
                    log.error("sync.failed", error=type(unreachable).__name__,
                              message=unreachable_message(unreachable))
                    self.after_run([name], unreachable)
                    return
                try:
                    summary = run_sync(
                        runtime.loaded, runtime.require_store(), runtime.connectors, model,
                        datetime.now(timezone.utc), only=[name],
                        should_stop=self.stop_event.is_set, metrics=self.metrics)
                    if summary.status == SKIPPED:  # nothing ran: nothing new to alert on
                        return
                except Exception as failure:  # a failed run must not kill the daemon
                    error = failure
                    log.error("sync.failed", error=type(failure).__name__,
                              message=redact_text(str(failure)))
                self.after_run([name], error)
        return job

    def after_run(self, connectors: Sequence[str], error: BaseException | None) -> None:
        """Alerts and gauges after a run; nothing here may stop the daemon."""
        store = self.runtime.require_store()
        if self.alerts is not None:
            try:
                self.alerts.after_run(store, connectors, error)
            except Exception as failure:
                log.error("alert.check_failed", error=type(failure).__name__)
        self._refresh_dead_letters()

    def _refresh_dead_letters(self) -> None:
        self.metrics.set_dead_letters(dead_letter_counts(self.runtime.require_store()))

    def archive_audit(self) -> None:
        """The retention job: archive audit rows older than `audit.retention_days`."""
        audit = self.runtime.loaded.config.audit
        if audit.retention_days is None:
            return
        try:
            result = apply_retention(self.runtime.require_store().audit_log,
                                     audit.retention_days, Path(audit.archive_path))
        except (AuditError, OSError, SQLAlchemyError) as error:
            log.error("audit.archive_failed", error=type(error).__name__,
                      message=redact_text(str(error))[:500])
            if self.alerts is not None:
                self.alerts.sender.send(f"syncer: archiving the audit log failed: "
                                        f"{redact_text(str(error))[:300]}", "audit_archive")
            return
        if result is not None:
            log.info("audit.archived", rows=result.rows, first_id=result.first_id,
                     last_id=result.last_id, path=str(result.path))

    def _start_health(self) -> None:
        if self.health is None:
            return
        try:
            self.health.start()
        except HealthServerError as error:  # syncing matters more than the endpoint
            log.error("health.not_started", message=str(error))
            self.health = None
            return
        try:
            self.metrics.load_history(
                self.runtime.require_store().last_runs(self.connector_names))
        except SQLAlchemyError as error:
            log.warning("metrics.history_unavailable", error=type(error).__name__)

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        log.info("daemon.stopping", signal=signum)
        self.stop_event.set()

    def run_forever(self, install_signal_handlers: bool = True) -> None:
        """Block until SIGTERM/SIGINT (or request_stop), then finish the current batch."""
        if install_signal_handlers:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self._start_health()
        try:
            self.scheduler.start()
            log.info("daemon.started", jobs=[job.id for job in self.scheduler.get_jobs()],
                     health=self.health.url if self.health is not None else None)
            self.stop_event.wait()
            self.scheduler.shutdown(wait=True)
        finally:
            if self.health is not None:
                self.health.stop()
            if self.alerts is not None:
                self.alerts.close()
        log.info("daemon.stopped")
