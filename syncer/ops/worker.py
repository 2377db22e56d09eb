"""`syncer worker`: a procrastinate worker that runs the sync jobs of every tenant.

Each job is one `run_sync` of one tenant's connector, through the same locked, fenced and
audited path as `syncer sync --once` (syncer/run/pipeline.py): the queue decides who runs
what, the run lock still decides whether it may. A worker keeps one Runtime (store,
connectors, model) per tenant it has served, rebuilt when the tenant's file changes, so a
job does not reconnect to the database and sign in to both CRMs every time.

A worker never serves built-in sandboxes (`sandbox: true`): each worker would sync against
a CRM of its own. Point the tenants at shared CRMs (or one `syncer sandbox`).

Stopping: SIGTERM or SIGINT stops fetching jobs and asks the running sync to stop after its
current batch (its cursor where the last committed page left it), then the worker exits.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import structlog
from procrastinate import App, JobContext
from procrastinate.app import WorkerOptions as ProcrastinateOptions
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.config import LoadedConfig
from syncer.domain.config_base import ConfigError
from syncer.domain.tenants import load_tenant
from syncer.observe.logs import log_context, redact_text
from syncer.ops.alerts import Alerts
from syncer.ops.queue import ARCHIVE_TASK, SYNC_TASK, install_schema
from syncer.run.ledger import record_unreachable, unreachable_message
from syncer.run.pipeline import run_sync
from syncer.run.runtime import OpenRuntime, SyncRuntime
from syncer.store.audit_archive import apply_retention
from syncer.store.runs import SKIPPED

log = structlog.get_logger(__name__)


@dataclass
class TenantRuntime:
    stamp: float
    runtime: SyncRuntime
    alerts: Alerts | None


class TenantRuntimes:
    """The runtimes of the tenants this worker has served (one job at a time uses them)."""

    def __init__(self, directory: Path, open_runtime: OpenRuntime) -> None:
        """`open_runtime`: the wiring's Runtime (syncer/cli/runtime.py), handed in."""
        self.directory = directory
        self.open_runtime = open_runtime
        self._open: dict[str, TenantRuntime] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> TenantRuntime:
        """The tenant's runtime, (re)built if its file is new or changed. Raises ConfigError
        for a tenant whose file is gone or does not validate."""
        path = self.directory / f"{tenant}.yaml"
        stamp = path.stat().st_mtime if path.exists() else -1.0
        with self._lock:
            current = self._open.get(tenant)
            if current is not None and current.stamp == stamp:
                return current
            if current is not None:
                self._close(current)
                del self._open[tenant]
            loaded = load_tenant(self.directory, tenant)
            refuse_sandboxes(loaded)
            runtime = self.open_runtime(loaded)
            try:
                built = TenantRuntime(stamp, runtime, Alerts.from_config(loaded))
            except BaseException:
                runtime.close()
                raise
            self._open[tenant] = built
            return built

    def release_connections(self, tenant: str) -> None:
        """Close the tenant's idle database connections after its job. A worker serves
        hundreds of tenants; a pooled connection kept per tenant would exhaust the
        server's `max_connections` (seen at 100 tenants on 2 workers). The runtime itself
        (config, model, CRM sessions) stays cached; the next job reconnects."""
        with self._lock:
            current = self._open.get(tenant)
        if current is not None and current.runtime.store is not None:
            current.runtime.store.engine.dispose()

    def drop(self, tenant: str) -> None:
        """Forget a tenant's runtime (after its database went away, say)."""
        with self._lock:
            current = self._open.pop(tenant, None)
        if current is not None:
            self._close(current)

    @staticmethod
    def _close(current: TenantRuntime) -> None:
        if current.alerts is not None:
            current.alerts.close()
        current.runtime.close()

    def close(self) -> None:
        for tenant in list(self._open):
            self.drop(tenant)


def refuse_sandboxes(loaded: LoadedConfig) -> None:
    built_in = [c.name for c in loaded.config.connectors if c.sandbox]
    if built_in:
        raise ConfigError([f"{loaded.path}: connectors {', '.join(built_in)} use `sandbox: "
                           "true`, which a worker cannot serve (every worker would sync a "
                           "CRM of its own). Fix: give them base_url and credentials (one "
                           "`syncer sandbox` can serve every worker)"])


def sync_job(runtimes: TenantRuntimes, stop: threading.Event, tenant: str, connector: str,
             as_of: str | None = None, full: bool = False) -> str:
    """One sync of `tenant`'s `connector`; returns the run's status. Raises when the run
    failed, so that procrastinate marks the job failed (it is never retried by itself)."""
    with log_context(tenant=tenant, connector=connector):
        current = runtimes.get(tenant)
        runtime = current.runtime
        loaded = runtime.loaded
        if connector not in runtime.connectors:
            raise ConfigError([f"{loaded.path}: tenant {tenant} has no connector {connector}"])
        try:
            model = runtime.refresh_model().model
        except SQLAlchemyError as unreachable:  # recorded in the tenant's spool
            record_unreachable(loaded, [connector], unreachable)
            log.error("sync.failed", message=unreachable_message(unreachable))
            runtimes.drop(tenant)
            raise
        now = datetime.fromisoformat(as_of) if as_of else datetime.now(timezone.utc)
        error: Exception | None = None
        try:
            summary = run_sync(loaded, runtime.require_store(), runtime.connectors, model, now,
                               only=[connector], full=full, should_stop=stop.is_set)
        except Exception as failure:
            error = failure
            log.error("sync.failed", error=type(failure).__name__,
                      message=redact_text(str(failure))[:500])
            if isinstance(failure, SQLAlchemyError):
                runtimes.drop(tenant)
        else:
            if summary.status == SKIPPED:
                return summary.status
        if current.alerts is not None:
            try:
                current.alerts.after_run(runtime.require_store(), [connector], error)
            except Exception as failure:
                log.error("alert.check_failed", error=type(failure).__name__)
        if error is not None:
            raise error
        return summary.status


def archive_job(runtimes: TenantRuntimes, tenant: str) -> int:
    """The tenant's audit retention; the number of rows archived. Runs under the tenant's
    queue lock, so never beside one of its syncs."""
    runtime = runtimes.get(tenant).runtime
    audit = runtime.loaded.config.audit
    if audit.retention_days is None:
        return 0
    archive = Path(audit.archive_path)
    if not archive.is_absolute():
        archive = runtime.loaded.folder / archive / tenant
    result = apply_retention(runtime.require_store().audit_log, audit.retention_days, archive)
    return 0 if result is None else result.rows


@dataclass(frozen=True)
class WorkerOptions:
    queues: list[str] | None
    concurrency: int = 1
    heartbeat_seconds: float = 10.0
    stall_seconds: float = 30.0
    name: str | None = None


def register_tasks(app: App, runtimes: TenantRuntimes, stop: threading.Event) -> None:
    """The worker's tasks; no automatic retry (syncer/ops/queue.py says why)."""

    @app.task(name=SYNC_TASK, pass_context=True)
    def sync(context: JobContext, tenant: str, connector: str, as_of: str | None = None,
             full: bool = False) -> str:
        job = context.job
        log.info("job.started", job_id=job.id, tenant=tenant, connector=connector,
                 worker=context.worker_name)
        try:
            return sync_job(runtimes, stop, tenant, connector, as_of, full)
        finally:
            runtimes.release_connections(tenant)

    @app.task(name=ARCHIVE_TASK)
    def archive(tenant: str) -> int:
        try:
            return archive_job(runtimes, tenant)
        finally:
            runtimes.release_connections(tenant)


async def run_worker(app: App, runtimes: TenantRuntimes, options: WorkerOptions) -> None:
    """Take jobs until SIGTERM/SIGINT; then finish (or stop after its batch) the running
    sync and return."""
    stop = threading.Event()
    register_tasks(app, runtimes, stop)
    loop = asyncio.get_running_loop()
    async with app.open_async():
        await install_schema(app)
        settings: ProcrastinateOptions = {
            "concurrency": options.concurrency, "install_signal_handlers": False,
            "update_heartbeat_interval": options.heartbeat_seconds,
            "stalled_worker_timeout": options.stall_seconds, "delete_jobs": "never"}
        if options.name:
            settings["name"] = options.name
        if options.queues:
            settings["queues"] = options.queues
        worker: asyncio.Task[None] = asyncio.create_task(app.run_worker_async(**settings))

        def on_signal(signum: int) -> None:
            log.info("worker.stopping", signal=signum)
            stop.set()
            worker.cancel()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        log.info("worker.started", queues=options.queues or "all", tenants=str(runtimes.directory))
        try:
            await worker
        except asyncio.CancelledError:
            pass
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    log.info("worker.stopped")
