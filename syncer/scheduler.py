"""`syncer run`: one APScheduler job per connector at its configured interval.

Jobs share one worker thread, so runs never overlap (two runs writing the same person at
once could interleave) and a connector never runs twice at once; missed runs are coalesced
into one. SIGTERM or SIGINT asks the running sync to stop after its current batch, then the
scheduler shuts down and the process exits cleanly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import FrameType

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from syncer.pipeline import run_sync
from syncer.runtime import Runtime

log = structlog.get_logger(__name__)


class Daemon:
    """The long-running process: schedules syncs until asked to stop."""

    def __init__(self, runtime: Runtime, *, first_run_delay: float = 1.0) -> None:
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        start = datetime.now(timezone.utc) + timedelta(seconds=first_run_delay)
        for connector in runtime.loaded.config.connectors:
            self.scheduler.add_job(
                self._job(connector.name), "interval", id=f"sync:{connector.name}",
                name=f"sync {connector.name}", minutes=connector.schedule.every_minutes,
                next_run_time=start)

    def _job(self, name: str) -> Callable[[], None]:
        def job() -> None:
            if self.stop_event.is_set():
                return
            runtime = self.runtime
            try:
                run_sync(runtime.loaded, runtime.require_store(), runtime.connectors,
                         runtime.model, datetime.now(timezone.utc), only=[name],
                         should_stop=self.stop_event.is_set)
            except Exception as error:  # a failed run must not kill the daemon
                log.error("sync.failed", connector=name, error=type(error).__name__,
                          message=str(error))
        return job

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        log.info("daemon.stopping", signal=signum)
        self.stop_event.set()

    def run_forever(self, install_signal_handlers: bool = True) -> None:
        """Block until SIGTERM/SIGINT (or request_stop), then finish the current batch."""
        if install_signal_handlers:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.scheduler.start()
        log.info("daemon.started", jobs=[job.id for job in self.scheduler.get_jobs()])
        self.stop_event.wait()
        self.scheduler.shutdown(wait=True)
        log.info("daemon.stopped")
