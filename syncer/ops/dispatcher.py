"""`syncer dispatch`: the one scheduling entry point of a scale-out deployment.

Every tick (a second by default) it reads the tenants directory, and for each tenant
connector whose interval (`schedule.every_minutes`) has passed since it was last deferred,
defers a `syncer.sync` job on the tenant's queue; once a day, per tenant with
`audit.retention_days`, an archive job. Then its reaper puts back in the queue the jobs of
workers that stopped sending heartbeats (SIGKILL, a lost machine).

Why a dispatcher and not procrastinate's periodic tasks: periodic tasks are declared in
code, with cron resolution, when the worker starts; syncer's schedule is data (each
tenant's file, added, edited and removed while the deployment runs, with intervals in
minutes that tests shorten to seconds). The dispatcher re-reads it every tick.

Why running two dispatchers is harmless: a deferral for a pair that already has a job
waiting is refused by the queueing lock (syncer/ops/queue.py), so a second dispatcher (a
replica, a restart) adds no job; the reaper's retry of one job by two reapers is one
update that the second finds already done. The schedule's memory (when each pair was last
deferred) is in the process: a restarted dispatcher defers every pair once at start,
which is at most one extra run each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import structlog
from procrastinate import App, exceptions
from procrastinate.jobs import Status

from syncer.domain.config import LoadedConfig
from syncer.domain.config_base import ConfigError
from syncer.domain.tenants import load_tenant, tenant_names
from syncer.ops.queue import ARCHIVE_TASK, SYNC_TASK, install_schema, sync_keys

log = structlog.get_logger(__name__)

ARCHIVE_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class Due:
    """A job to defer: a sync of (tenant, connector), or the tenant's archive job."""

    tenant: str
    connector: str | None
    queue: str


@dataclass
class TenantFiles:
    """The tenants directory, each file loaded again only when it changes; a file that
    does not validate is logged once per change and left out (the others keep running)."""

    directory: Path
    _loaded: dict[str, tuple[float, LoadedConfig | None]] = field(default_factory=dict)

    def current(self) -> dict[str, LoadedConfig]:
        names = tenant_names(self.directory)
        for gone in set(self._loaded) - set(names):
            del self._loaded[gone]
        tenants: dict[str, LoadedConfig] = {}
        for name in names:
            path = self.directory / f"{name}.yaml"
            try:
                stamp = path.stat().st_mtime
            except OSError:
                continue
            cached = self._loaded.get(name)
            if cached is None or cached[0] != stamp:
                try:
                    cached = (stamp, load_tenant(self.directory, name))
                except ConfigError as error:
                    log.error("tenant.invalid", tenant=name, problems=error.problems[:5])
                    cached = (stamp, None)
                self._loaded[name] = cached
            if cached[1] is not None:
                tenants[name] = cached[1]
        return tenants


@dataclass
class Schedule:
    """When each tenant's connectors were last deferred, and what is due now."""

    last: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def due(self, tenants: dict[str, LoadedConfig], now: datetime) -> list[Due]:
        jobs: list[Due] = []
        for tenant, loaded in sorted(tenants.items()):
            queue = loaded.config.worker.queue
            for connector in loaded.config.connectors:
                every = timedelta(minutes=connector.schedule.every_minutes)
                if self._is_due((tenant, connector.name), every, now):
                    jobs.append(Due(tenant, connector.name, queue))
            if loaded.config.audit.retention_days is not None and \
                    self._is_due((tenant, "audit:archive"), ARCHIVE_EVERY, now):
                jobs.append(Due(tenant, None, queue))
        return jobs

    def _is_due(self, key: tuple[str, str], every: timedelta, now: datetime) -> bool:
        last = self.last.get(key)
        if last is not None and now < last + every:
            return False
        self.last[key] = now
        return True


async def defer(app: App, due: Due) -> bool:
    """Put one job in the queue; False when the pair already has one waiting."""
    try:
        if due.connector is None:
            await app.configure_task(
                ARCHIVE_TASK, lock=due.tenant, queue=due.queue,
                queueing_lock=f"{due.tenant}:audit:archive").defer_async(tenant=due.tenant)
        else:
            lock, queueing_lock = sync_keys(due.tenant, due.connector)
            await app.configure_task(
                SYNC_TASK, queue=due.queue, lock=lock, queueing_lock=queueing_lock,
            ).defer_async(tenant=due.tenant, connector=due.connector)
    except exceptions.AlreadyEnqueued:
        return False
    return True


async def reap_stalled(app: App, stall_seconds: float) -> int:
    """Put back in the queue the running jobs of workers silent for `stall_seconds`;
    how many. A job that cannot go back (its pair already has one waiting) is marked
    failed instead: the waiting one will run."""
    reaped = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stall_seconds):
        try:
            await app.job_manager.retry_job(job)
            reaped += 1
            log.warning("job.reaped", job_id=job.id, task=job.task_name, lock=job.lock,
                        worker_id=job.worker_id)
        except exceptions.ConnectorException as error:
            log.warning("job.reap_refused", job_id=job.id, error=type(error).__name__)
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    return reaped


@dataclass
class DispatchTally:
    deferred: int = 0
    already_waiting: int = 0
    reaped: int = 0


async def tick(app: App, files: TenantFiles, schedule: Schedule, stall_seconds: float,
               tally: DispatchTally, now: datetime | None = None) -> list[Due]:
    """One pass: defer what is due, reap stalled jobs. Returns the jobs deferred."""
    tenants = files.current()
    deferred: list[Due] = []
    for due in schedule.due(tenants, now or datetime.now(timezone.utc)):
        if await defer(app, due):
            deferred.append(due)
            tally.deferred += 1
        else:
            tally.already_waiting += 1
    tally.reaped += await reap_stalled(app, stall_seconds)
    return deferred


async def dispatch_forever(app: App, directory: Path, *, tick_seconds: float,
                           stall_seconds: float, stop: asyncio.Event,
                           ticks: int | None = None) -> DispatchTally:
    """Tick until `stop` is set (or `ticks` ticks have run)."""
    files, schedule, tally = TenantFiles(directory), Schedule(), DispatchTally()
    async with app.open_async():
        await install_schema(app)
        log.info("dispatcher.started", tenants=str(directory), tick_seconds=tick_seconds)
        done = 0
        while not stop.is_set():
            try:
                deferred = await tick(app, files, schedule, stall_seconds, tally)
                if deferred:
                    log.info("dispatcher.deferred", jobs=len(deferred),
                             pairs=_pairs(deferred)[:20])
            except ConfigError as error:  # the tenants directory itself is missing
                log.error("dispatcher.no_tenants", problems=error.problems)
            done += 1
            if ticks is not None and done >= ticks:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_seconds)
    log.info("dispatcher.stopped", deferred=tally.deferred, reaped=tally.reaped,
             already_waiting=tally.already_waiting)
    return tally


def _pairs(jobs: Iterable[Due]) -> list[str]:
    return [f"{due.tenant}:{due.connector or 'audit:archive'}" for due in jobs]
