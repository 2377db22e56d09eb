"""One sync per connector at a time, whatever starts it: two real `syncer sync --once`
processes on one state (SQLite file and PostgreSQL), `--wait`, and the fence that stops a
run which lost its lock from writing anything more."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.observe.metrics import SyncMetrics
from syncer.ops.scheduler import Daemon
from syncer.run.pipeline import LOST_LOCK, run_sync
from syncer.run.replay import replay_dead_letters
from syncer.store import tables as t
from syncer.store.locks import FileRunLock, LockHeld, LostLock, RunLock, acquire
from syncer.store.pg_locks import PostgresRunLock
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config
from tests.lock_helpers import GatedProxy, LineWatch, child_env, run_syncer, syncer_command

GATE = {"salesforce": {"min_stage": "mql", "create_as": "lead"}}


def config_data(boxes: Sandboxes, state_url: str, monkeypatch: pytest.MonkeyPatch
                ) -> dict[str, Any]:
    """The example config on the sandboxes, creating qualified people in Salesforce."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(boxes, state_url, monkeypatch)
    for connector in data["connectors"]:
        if connector["name"] in GATE:
            connector["create"] = GATE[connector["name"]]
    return data


def salesforce_emails(boxes: Sandboxes) -> Counter[str]:
    return Counter((r.get("Email") or "").lower() for r in boxes.salesforce.records())


def created_twice(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {email: n - before[email] for email, n in after.items() if n - before[email] > 1}


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)
                                      ).scalar_one())


@pytest.fixture
def gated_hubspot(sandboxes: Sandboxes) -> Iterator[GatedProxy]:
    port = urlsplit(sandboxes.hubspot.base_url).port
    assert port is not None
    proxy = GatedProxy(port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.slow
@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
def test_a_second_sync_is_skipped_and_names_the_one_running(
        tmp_path: Path, sandboxes: Sandboxes, state_url: str,
        monkeypatch: pytest.MonkeyPatch, gated_hubspot: GatedProxy) -> None:
    data = config_data(sandboxes, state_url, monkeypatch)
    direct = tmp_path / "direct.yaml"
    write_config(direct, data)
    gated = copy.deepcopy(data)
    for connector in gated["connectors"]:
        if connector["kind"] == "hubspot":  # the first process blocks on its first pull
            parts = urlsplit(connector["base_url"])
            connector["base_url"] = f"{parts.scheme}://127.0.0.1:{gated_hubspot.port}"
    write_config(tmp_path / "gated.yaml", gated)
    env = child_env(tmp_path / "spool.jsonl")
    before = salesforce_emails(sandboxes)

    first = subprocess.Popen(
        syncer_command("sync", "--once", "--as-of", NOW.isoformat(), "--config",
                       str(tmp_path / "gated.yaml")),
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.stdout is not None and first.stderr is not None
    out = LineWatch(first.stdout, "\n")
    locked = LineWatch(first.stderr, "sync.locked")
    try:
        assert locked.seen.wait(timeout=120), locked.join()
        # The first process holds the lock and waits at the gate: start the second.
        second = run_syncer(["sync", "--once", "--as-of", NOW.isoformat(),
                             "--config", str(direct)], env, tmp_path)
    finally:
        gated_hubspot.open()
        assert first.wait(timeout=240) == 0, locked.join()
    out.join()

    assert second.returncode == 0, second.stderr
    host = socket.gethostname()
    assert f"connector hubspot is being synced by {host}:{first.pid} since " in second.stdout
    assert second.stdout.strip().endswith("; skipped")
    store = Store.open(state_url)
    try:
        runs = {run.status: run for run in store.runs()}
        assert set(runs) == {"succeeded", "skipped"}
        skipped = runs["skipped"]
        assert skipped.stats["held_by"]["pid"] == first.pid
        assert skipped.stats["held_by"]["run_id"] == runs["succeeded"].run_id
        assert skipped.run_id != runs["succeeded"].run_id
    finally:
        store.close()
    listed = run_syncer(["runs", "--config", str(direct)], env, tmp_path)
    assert listed.returncode == 0 and "skipped" in listed.stdout
    assert f"{host}:{first.pid}" in listed.stdout

    after = salesforce_emails(sandboxes)
    assert sum((after - before).values()) > 0, "the gate must have created people"
    assert created_twice(before, after) == {}


@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
def test_wait_runs_once_the_holder_releases(
        tmp_path: Path, sandboxes: Sandboxes, state_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "syncer.yaml"
    write_config(config, config_data(sandboxes, state_url, monkeypatch))
    store = Store.open(state_url)
    lock = acquire(store.engine, ["hubspot", "salesforce"], "held-by-test")
    waiting = subprocess.Popen(
        syncer_command("sync", "--once", "--wait", "--as-of", NOW.isoformat(), "--config",
                       str(config)),
        env=child_env(tmp_path / "spool.jsonl"), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    assert waiting.stdout is not None
    said = LineWatch(waiting.stdout, "waiting for it to finish")
    try:
        assert said.seen.wait(timeout=120), said.join()
        assert "(run held-by-test)" in said.line
        assert f"{socket.gethostname()}:{os.getpid()}" in said.line
        assert store.runs() == []  # it has not started
        released_at = datetime.now(timezone.utc)
    finally:
        lock.release()
    assert waiting.wait(timeout=240) == 0, said.join()
    said.join()
    try:
        runs = store.runs()
        assert [run.status for run in runs] == ["succeeded"]
        assert runs[0].started_at >= released_at
    finally:
        store.close()


def take_lock_away(store: Store, takeover: bool) -> RunLock | None:
    """What an outage or an operator can do to a running sync's lock: PostgreSQL ends its
    lock session; on SQLite the lock file is deleted. With `takeover`, another run then
    takes the lock (on PostgreSQL it waits until the ended session has let go)."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as connection:
            pid = connection.execute(select(t.run_locks.c.backend_pid).limit(1)).scalar_one()
            assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}
                                      ).scalar_one()
            # pg_terminate_backend only signals the backend: its locks are held until it
            # has exited, which a busy server may take a while to do. Wait for that event.
            # (pg_stat_activity is a snapshot per transaction: clear it on every look)
            gone = threading.Event()
            while True:
                connection.execute(text("SELECT pg_stat_clear_snapshot()"))
                if connection.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"),
                                      {"p": pid}).first() is None:
                    break
                gone.wait(0.05)
    else:
        database = store.engine.url.database
        assert database is not None
        Path(f"{database}.lock-hubspot").unlink()
    return acquire(store.engine, ["hubspot"], "intruder", wait=True) if takeover else None


@pytest.mark.parametrize(("fenced", "takeover"), [(True, False), (True, True), (False, True)],
                         ids=["lock_ended", "lock_taken_over", "fence_off_control"])
def test_a_run_that_lost_its_lock_writes_nothing_more(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes, state_url: str, fenced: bool,
        takeover: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    def crm_state() -> list[Any]:
        return [sandboxes.hubspot.records(), sandboxes.salesforce.records()]

    crm_before = crm_state()
    if not fenced:  # the negative control: the same scenario with the fence turned off
        monkeypatch.setattr(PostgresRunLock, "check", lambda self, connection: None)
        monkeypatch.setattr(FileRunLock, "check", lambda self, connection=None: None)
    taken: list[RunLock | None] = []
    stored: list[int] = []

    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()

        once = threading.Lock()

        def after_each_page() -> bool:  # called between pages of the pulls (side by side)
            # between two of the store's write transactions: the other pull commits no page
            # between the count and the lock's end
            with once, store._writing:
                if not taken:
                    stored.append(count(store, t.records))
                    taken.append(take_lock_away(store, takeover))
            return False

        summary = run_sync(sandbox_config, store, runtime.connectors, runtime.model, NOW,
                           should_stop=after_each_page)
        try:
            run = store.run(summary.run_id)
            assert run is not None
            records = count(store, t.records)
            cursors = count(store, t.cursors)
            decisions = count(store, t.decisions)
            writes = len(store.audit_rows(outcome="written"))
        finally:
            for other in taken:
                if other is not None:
                    other.release()
    assert taken and stored[0] > 0
    if fenced:
        assert summary.status == run.status == LOST_LOCK
        assert run.error is not None
        assert ("took the lock over" in run.error or "now held by" in run.error) == takeover
        assert (records, cursors, decisions, writes) == (stored[0], 0, 0, 0)
        assert crm_state() == crm_before  # and it wrote nothing to either CRM
    else:
        assert run.status == "succeeded"
        assert records > stored[0] and cursors > 0 and decisions > 0 and writes > 0
        assert crm_state() != crm_before


def test_a_daemon_job_is_skipped_while_another_process_syncs(
        sandbox_config: LoadedConfig, state_url: str) -> None:
    """The scheduled job of one connector is skipped while another process holds the lock
    of any connector it writes to (here Salesforce, where a HubSpot run writes too)."""
    metrics = SyncMetrics()
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        daemon = Daemon(runtime, first_run_delay=3600, metrics=metrics, health_port=0)
        other = acquire(store.engine, ["salesforce"], "another-process")
        try:
            daemon._job("hubspot")()
        finally:
            other.release()
        daemon._job("hubspot")()
        runs = store.runs()
        if daemon.alerts is not None:
            daemon.alerts.close()
    assert [run.status for run in runs] == ["succeeded", "skipped"]
    assert runs[1].error is not None
    assert runs[1].error.startswith("connector salesforce is being synced by ")
    assert runs[1].error.endswith("(run another-process); skipped")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.render().decode())
               for s in family.samples}
    assert samples[("syncer_runs_total", (("connector", "hubspot"), ("status", "skipped")))] == 1
    assert samples[("syncer_runs_total", (("connector", "hubspot"),
                                          ("status", "succeeded")))] == 1
    assert samples[("syncer_last_run_failed", (("connector", "hubspot"),))] == 0


@pytest.mark.parametrize("where", ["memory", "file"])
def test_sqlite_locks_name_the_holder_and_hand_over_to_a_waiter(tmp_path: Path,
                                                               where: str) -> None:
    engine = create_engine("sqlite://" if where == "memory"
                           else f"sqlite:///{tmp_path / 'state.db'}")
    first = acquire(engine, ["hubspot"], "run-1")
    with pytest.raises(LockHeld) as held:
        acquire(engine, ["salesforce", "hubspot"], "run-2")
    assert held.value.name == "hubspot" and held.value.holder is not None
    assert held.value.holder.run_id == "run-1" and held.value.holder.pid == os.getpid()
    acquire(engine, ["salesforce"], "run-3").release()  # run-2 kept none of its locks

    waiting = threading.Event()
    handed: list[RunLock] = []
    waiter = threading.Thread(target=lambda: handed.append(acquire(
        engine, ["hubspot"], "run-4", wait=True, on_wait=lambda busy: waiting.set())))
    waiter.start()
    assert waiting.wait(timeout=300)  # a bound on a hung test, not a measurement
    first.check(None)  # type: ignore[arg-type]
    first.release()
    waiter.join(timeout=300)
    assert handed
    handed[0].check(None)  # type: ignore[arg-type]
    with pytest.raises(LostLock):
        first.check(None)  # type: ignore[arg-type]
    handed[0].release()
    engine.dispose()


def test_a_dead_letter_replay_does_not_run_beside_a_sync(
        sandbox_config: LoadedConfig, state_url: str) -> None:
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        other = acquire(store.engine, ["salesforce"], "a-sync")
        try:
            with pytest.raises(LockHeld, match=r"salesforce is being synced by .*\(run a-sync\)"):
                replay_dead_letters(sandbox_config, store, runtime.connectors, NOW)
        finally:
            other.release()
        run_id, _ = replay_dead_letters(sandbox_config, store, runtime.connectors, NOW)
        run = store.run(run_id)
        assert run is not None and run.status == "succeeded"
