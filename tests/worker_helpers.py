"""Helpers for the scale-out tests: a PostgreSQL database of their own (queue and tenant
schemas, dropped at the end), tenant files on sandbox CRMs, and syncer's worker and
dispatcher as real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncer.ops.queue import SYNC_TASK, build_app, sync_keys
from tests.conftest import Sandboxes, sandbox_config_data
from tests.waiting import wait_until

#: a syncer whose runs take no run lock: the fence turned off, for the negative test that
#: proves the overlap check can fail. Test code only; no production path can do this.
NO_LOCK = """
import sys
import syncer.run.pipeline as pipeline

class NoLock:
    def check(self, connection):
        pass
    def release(self):
        pass

pipeline.acquire_run_lock = lambda *args, **kwargs: NoLock()
from syncer.cli import main
sys.exit(main(sys.argv[1:]))
"""


@contextmanager
def scratch_database(base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `base_url` (its SQLAlchemy URL)."""
    name = f"syncer_q_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name, query={}).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_tenant(directory: Path, tenant: str, boxes: Sandboxes, state_url: str,
                 env: dict[str, str], monkeypatch: Any, *, every_minutes: float,
                 create: dict[str, dict[str, str]] | None = None) -> Path:
    """tenants/<tenant>.yaml: the example config on `boxes`, with secrets in environment
    variables of the tenant's own (put in `env` for the children)."""
    data = sandbox_config_data(boxes, state_url, monkeypatch)
    data["health"] = {"enabled": False}
    for connector in data["connectors"]:
        connector["schedule"] = {"every_minutes": every_minutes}
        if create and connector["name"] in create:
            connector["create"] = create[connector["name"]]
        credentials = {}
        for key, ref in connector["credentials"].items():
            variable = f"{tenant.upper()}_{connector['name'].upper()}_{key.upper()}"
            env[variable] = os.environ[ref["env"]]
            monkeypatch.setenv(variable, env[variable])  # for in-process runs of the test
            credentials[key] = {"env": variable}
        connector["credentials"] = credentials
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{tenant}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path, *,
          no_lock: bool = False) -> subprocess.Popen[bytes]:
    """`syncer ARGS` as a child writing its log lines to `log`."""
    prefix = [sys.executable, "-c", NO_LOCK] if no_lock else [sys.executable, "-m", "syncer.cli"]
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([*prefix, *args], env=env, stdout=handle,
                                stderr=subprocess.STDOUT)


def worker(tenants: Path, queue_url: str, env: dict[str, str], log: Path, name: str, *,
           no_lock: bool = False, queues: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    args = ["worker", "--tenants", str(tenants), "--queue-url", queue_url, "--name", name,
            "--heartbeat", "0.5", "--stall-timeout", "3"]
    for queue in queues:
        args += ["--queue", queue]
    return start(args, env, log, no_lock=no_lock)


def dispatcher(tenants: Path, queue_url: str, env: dict[str, str], log: Path
               ) -> subprocess.Popen[bytes]:
    return start(["dispatch", "--tenants", str(tenants), "--queue-url", queue_url,
                  "--tick", "0.3", "--stall-timeout", "3"], env, log)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit code (the timeout bounds a hung test, it measures nothing)."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def defer_sync(queue_url: str, tenant: str, connector: str, **kwargs: Any) -> None:
    """Queue one sync job as the dispatcher would (tests pin `as_of`)."""
    async def go() -> None:
        app = build_app(queue_url)
        async with app.open_async():
            from syncer.ops.queue import install_schema
            await install_schema(app)
            lock, queueing_lock = sync_keys(tenant, connector)
            await app.configure_task(SYNC_TASK, lock=lock, queueing_lock=queueing_lock
                                     ).defer_async(tenant=tenant, connector=connector, **kwargs)
    asyncio.run(go())


def reap_one(queue_url: str, stall_seconds: float,
             alive: Callable[[], None] = lambda: None) -> None:
    """The dispatcher's reaper alone (its schedule would queue new jobs beside the reaped
    one), run until it has put one stalled job back in the queue."""
    from syncer.ops.dispatcher import reap_stalled

    async def once() -> int:
        app = build_app(queue_url)
        async with app.open_async():
            return await reap_stalled(app, stall_seconds)

    reaped = [0]

    def done() -> bool:
        reaped[0] += asyncio.run(once())
        return reaped[0] > 0

    wait_until(done, "the reaper to find the stalled job", alive)


def job_statuses(queue_url: str) -> dict[str, int]:
    engine = create_engine(queue_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
        return {str(status): int(n) for status, n in rows}
    finally:
        engine.dispose()


class HoldFirst:
    """Holds the first request to a route ending in `endpoint` (e.g. "batch/update") of
    `sandbox` unanswered until `release()`:
    a worker making it is mid-write (its write-ahead intents committed, the CRM not yet
    answered), whatever the speed of the machine."""

    def __init__(self, sandbox: Any, endpoint: str) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()
        self._sandbox, self._endpoint = sandbox, endpoint
        plan = sandbox.faults.plan

        def planned(method: str, name: str) -> Any:
            if name.endswith(endpoint) and not self.reached.is_set():
                self.reached.set()
                self._released.wait()
            return plan(method, name)

        sandbox.faults.plan = planned

    def release(self) -> None:
        self._released.set()
        del self._sandbox.faults.plan  # the class's own again
