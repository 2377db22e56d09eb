"""Scale-out on procrastinate, as a user runs it: worker and dispatcher processes on one
PostgreSQL database, tenants on sandbox CRMs of their own. What must hold: no two runs of
one tenant-connector overlap (checked from run history, by a check that the negative test
shows can fail), nothing is created twice in any CRM, and a worker killed mid-run leaves
the CRMs exactly as an uninterrupted run does."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.tenants import load_tenant
from syncer.run.pipeline import run_sync
from syncer.store.repository import Store
from syncer.store.run_history import overlapping_runs
from tests.conftest import NOW, Sandboxes, _postgres_url, running_sandboxes
from tests.test_kill_restart import KillPoint, state_of
from tests.waiting import wait_until
from tests.worker_helpers import (
    HoldFirst,
    child_env,
    defer_sync,
    dispatcher,
    job_statuses,
    reap_one,
    scratch_database,
    start,
    stop,
    worker,
    write_tenant,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

GATE = {"salesforce": {"min_stage": "mql", "create_as": "lead"}}


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database(_postgres_url()) as url:
        yield url


def tenant_store(tenants: Path, tenant: str) -> Store:
    return Store.open(load_tenant(tenants, tenant).state_url)


def succeeded(store: Store, connector: str) -> int:
    return len(store.runs(None, connector=connector, status="succeeded"))


def emails(boxes: Sandboxes) -> Counter[str]:
    return Counter((r.get("Email") or "").lower() for r in boxes.salesforce.records())


def alive(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:4]} exited with {process.returncode}")


def test_three_workers_twenty_tenants_never_overlap_and_create_nothing_twice(
        database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenants_dir, env = tmp_path / "tenants", {}
    names = [f"t{i:02d}" for i in range(20)]
    with ExitStack() as stack:
        boxes = {name: stack.enter_context(running_sandboxes(World(100 + i, 24, NOW)))
                 for i, name in enumerate(names)}
        before = {name: emails(box) for name, box in boxes.items()}
        for name in names:  # every 3 s: far more often than a run of this size takes
            write_tenant(tenants_dir, name, boxes[name], database, env, monkeypatch,
                         every_minutes=0.05, create=GATE)
        children = [worker(tenants_dir, database, env, tmp_path / f"w{n}.log", f"w{n}")
                    for n in range(3)]
        children.append(dispatcher(tenants_dir, database, env, tmp_path / "dispatch.log"))
        stores = {name: tenant_store(tenants_dir, name) for name in names}
        try:
            # A few rounds of every tenant-connector, with runs waiting behind each other.
            wait_until(lambda: all(succeeded(store, c) >= 3 for store in stores.values()
                                   for c in ("hubspot", "salesforce")),
                       "three runs of every pair", lambda: alive(*children))
        finally:
            codes = [stop(child) for child in children]
        assert codes == [0, 0, 0, 0]
        for name, store in stores.items():
            assert overlapping_runs(store) == [], name
            runs = store.runs(None)  # "stopped": running when the worker was told to stop
            assert {r.status for r in runs} <= {"succeeded", "skipped", "stopped"}, name
            store.close()
        created = {name: {email: n - before[name][email]
                          for email, n in emails(box).items() if n - before[name][email] > 0}
                   for name, box in boxes.items()}
    assert any(created.values())  # the gate did create people...
    twice = {name: {e: n for e, n in made.items() if n > 1} for name, made in created.items()}
    assert twice == {name: {} for name in names}  # ...and none of them twice
    statuses = job_statuses(database)
    assert statuses.get("failed", 0) == 0
    assert statuses["succeeded"] >= 3 * 40


def test_a_worker_killed_mid_run_is_reaped_and_the_crm_ends_as_after_one_run(
        database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def world() -> World:
        return World(seed=11, size=120, now=NOW)

    env: dict[str, str] = {}
    with running_sandboxes(world()) as reference:  # the uninterrupted run, one process
        write_tenant(tmp_path / "reference", "solo", reference,
                     f"sqlite:///{tmp_path / 'ref.db'}", env, monkeypatch, every_minutes=60)
        loaded = load_tenant(tmp_path / "reference", "solo")
        with Runtime(loaded) as runtime:
            run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model, NOW,
                     only=["hubspot"], full=True)
        expected = state_of(reference)

    tenants_dir = tmp_path / "tenants"
    with running_sandboxes(world()) as boxes:
        original = state_of(boxes)
        write_tenant(tenants_dir, "solo", boxes, database, env, monkeypatch, every_minutes=60)
        point = HoldFirst(boxes.hubspot, "/batch/update")  # the run is mid-write
        first = worker(tenants_dir, database, env, tmp_path / "first.log", "first")
        defer_sync(database, "solo", "hubspot", as_of=NOW.isoformat(), full=True)
        wait_until(point.reached.is_set, "the run's middle", lambda: alive(first))
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=120) == -signal.SIGKILL
        point.release()
        second = worker(tenants_dir, database, env, tmp_path / "second.log", "second")
        store = tenant_store(tenants_dir, "solo")
        try:
            reap_one(database, 3, lambda: alive(second))
            wait_until(lambda: succeeded(store, "hubspot") >= 1, "the reaped job's run",
                       lambda: alive(second))
        finally:
            codes = [stop(second)]
        got = state_of(boxes)
        runs = store.runs(None)
        trail = store.audit_rows()
        store.close()
    assert codes == [0]
    assert expected != original
    assert got == expected
    assert sorted(r.status for r in runs) == ["interrupted", "succeeded"]
    # The dead run's write reached the CRM after it died: its intents closed as recovered.
    assert any((r["error"] or "").startswith("recovered") for r in trail)


@pytest.mark.parametrize("fenced", [True, False], ids=["locked", "lock_off"])
def test_a_paused_worker_past_the_stall_timeout(
        fenced: bool, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker paused (SIGSTOP) mid-run past the stall timeout: the queue thinks it dead
    and hands its job to another worker. With the run lock, the second run is skipped (the
    paused one still holds the lock) and the run history shows no overlap. With the lock
    turned off, the two runs overlap and the same check finds it: the check can fail."""
    env: dict[str, str] = {}
    tenants_dir = tmp_path / "tenants"
    with running_sandboxes(World(seed=12, size=60, now=NOW)) as boxes:
        write_tenant(tenants_dir, "solo", boxes, database, env, monkeypatch, every_minutes=60)
        point = KillPoint(boxes, 3)
        paused = worker(tenants_dir, database, env, tmp_path / "paused.log", "paused",
                        no_lock=not fenced)
        defer_sync(database, "solo", "hubspot", as_of=NOW.isoformat(), full=True)
        wait_until(point.reached.is_set, "the run's third request", lambda: alive(paused))
        paused.send_signal(signal.SIGSTOP)
        point.release()  # answered into the paused process's socket
        other = worker(tenants_dir, database, env, tmp_path / "other.log", "other",
                       no_lock=not fenced)
        store = tenant_store(tenants_dir, "solo")
        try:
            reap_one(database, 3, lambda: alive(other))
            wait_until(lambda: len(store.runs(None, connector="hubspot", finished=True)) >= 1,
                       "the re-queued job's run", lambda: alive(other))
            paused.send_signal(signal.SIGCONT)
            wait_until(lambda: len(store.runs(None, connector="hubspot", finished=True)) >= 2,
                       "the paused run's end", lambda: alive(paused, other))
        finally:
            codes = [stop(paused), stop(other)]
        overlaps = overlapping_runs(store)
        statuses = sorted(r.status for r in store.runs(None))
        store.close()
    assert codes == [0, 0]
    if fenced:
        assert statuses == ["skipped", "succeeded"]
        assert overlaps == []
    else:
        assert statuses == ["succeeded", "succeeded"]
        assert len(overlaps) == 1


def test_processes_starts_that_many_workers_and_stops_them_all(
        database: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    tenants_dir = tmp_path / "tenants"
    tenants_dir.mkdir()
    parent = start(["worker", "--processes", "2", "--tenants", str(tenants_dir),
                    "--queue-url", database, "--heartbeat", "0.5"], child_env({}),
                   tmp_path / "workers.log")
    engine = create_engine(database)

    def registered() -> int:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('procrastinate_workers')")
                                  ).scalar() is None:
                return 0
            return int(connection.execute(text(
                "SELECT count(*) FROM procrastinate_workers")).scalar_one())

    try:
        wait_until(lambda: registered() == 2, "two registered workers", lambda: alive(parent))
    finally:
        code = stop(parent)
    assert code == 0
    assert registered() == 0  # each unregistered itself on the way out
    engine.dispose()
