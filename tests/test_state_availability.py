"""The state database at the edges: two processes migrating an empty one at once, one
migrated by a newer syncer, and runs that could not reach it (spooled, then replayed; counted
in the metrics; /healthz unready until a run has succeeded)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from syncer.cli.runtime import Runtime
from syncer.observe.metrics import SyncMetrics
from syncer.ops.health import HealthServer
from syncer.ops.scheduler import Daemon
from syncer.run.ledger import RunSpool
from syncer.run.pipeline import run_sync
from syncer.store import tables as t
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config
from tests.lock_helpers import LineWatch, child_env, run_syncer

MIGRATE = ("import sys\nfrom syncer.store.repository import Store\n"
           "print('ready', flush=True)\nsys.stdin.readline()\n"
           "Store.open(sys.argv[1]).close()\nprint('migrated', flush=True)\n")
CLOSED_PORT = "postgresql+psycopg://syncer:hunter2secret@127.0.0.1:1/nowhere"


def test_two_processes_migrate_an_empty_database_at_once(state_url: str) -> None:
    children = [subprocess.Popen([sys.executable, "-c", MIGRATE, state_url],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE) for _ in range(2)]
    watches = []
    for child in children:
        assert child.stdout is not None and child.stdin is not None
        watches.append(LineWatch(child.stdout, "ready"))
    for watch in watches:  # both are loaded and about to open the store: let them go
        assert watch.seen.wait(timeout=60)
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    for child, watch in zip(children, watches, strict=True):
        assert child.stdin is not None and child.stderr is not None
        child.stdin.close()
        errors = child.stderr.read().decode()
        child.stderr.close()
        assert child.wait(timeout=120) == 0, errors
        assert "migrated" in watch.join()
    store = Store.open(state_url)
    try:
        with store.engine.connect() as connection:
            versions = list(connection.execute(select(t.schema_version.c.version)).scalars())
        assert versions == [LATEST]
    finally:
        store.close()


def test_a_schema_newer_than_the_code_refuses_to_start(state_url: str, tmp_path: Path) -> None:
    store = Store.open(state_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(t.schema_version.insert(),
                               [{"version": LATEST + 1, "applied_at": NOW}])
    finally:
        store.close()
    done = run_syncer(["runs", "--state", state_url], child_env(tmp_path / "spool.jsonl"),
                      tmp_path)
    assert done.returncode == 3
    assert done.stderr.strip() == (
        f"syncer: the state database is at schema version {LATEST + 1}, this syncer knows up "
        f"to {LATEST}: upgrade syncer (or point it at another state database)")
    assert "Traceback" not in done.stderr


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def healthz(server: HealthServer) -> tuple[int, list[str]]:
    """The probe's status, and the reasons the server kept (the probe itself says only
    ok or unavailable)."""
    response = requests.get(f"{server.url}/healthz", timeout=10)
    assert set(response.json()) == {"status"}
    return response.status_code, server.last.problems if server.last else []


def test_a_sync_that_cannot_reach_the_state_is_recorded_once_it_can(
        tmp_path: Path, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    """`syncer sync --once` against a closed port: exit 3, the run spooled; once the config
    points at a reachable state, the next sync replays it and `syncer runs` shows it."""
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    good = f"sqlite:///{tmp_path / 'state.db'}"
    config = tmp_path / "syncer.yaml"
    write_config(config, sandbox_config_data(sandboxes, CLOSED_PORT, monkeypatch))
    env = child_env(tmp_path / "spool.jsonl")  # with the sandbox secrets just set
    down = run_syncer(["sync", "--once", "--config", str(config)], env, tmp_path)
    assert down.returncode == 3
    assert "cannot reach the state database at postgresql+psycopg://syncer@127.0.0.1:1/" \
        "nowhere (connection refused). Fix: " in down.stderr
    assert "Traceback" not in down.stderr
    assert "hunter2secret" not in down.stderr
    assert len((tmp_path / "spool.jsonl").read_text().splitlines()) == 1

    write_config(config, sandbox_config_data(sandboxes, good, monkeypatch))
    up = run_syncer(["sync", "--once", "--as-of", NOW.isoformat(), "--config", str(config)],
                    env, tmp_path)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "spool.jsonl").read_text() == ""
    listed = run_syncer(["runs", "--config", str(config)], env, tmp_path)
    lines = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split()[4] for line in lines[1:]] == ["succeeded", "failed"]
    assert "error: state database unreachable: OperationalError" in listed.stdout


def test_the_daemon_counts_unreachable_runs_and_stays_unready_until_one_succeeds(
        tmp_path: Path, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.setenv("SYNCER_SPOOL", str(tmp_path / "spool.jsonl"))
    loaded = write_config(tmp_path / "syncer.yaml", sandbox_config_data(
        sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch))
    metrics = SyncMetrics()
    with Runtime(loaded) as runtime:
        daemon = Daemon(runtime, first_run_delay=3600, metrics=metrics, health_port=0)
        daemon._start_health()
        assert daemon.health is not None
        url = daemon.health.url
        try:
            samples = scrape(url)
            for name in ("hubspot", "salesforce"):  # exported before any run
                assert samples[("syncer_runs_total", (("connector", name),
                                                      ("status", "failed")))] == 0
            status, problems = healthz(daemon.health)
            assert status == 503
            assert any("no run has succeeded since start-up" in p for p in problems)

            good = runtime.require_store()
            runtime.store = Store(create_engine(CLOSED_PORT))  # the database goes away
            daemon._job("hubspot")()
            assert healthz(daemon.health)[0] == 503
            samples = scrape(url)
            assert samples[("syncer_runs_total", (("connector", "hubspot"),
                                                  ("status", "failed")))] == 1
            assert samples[("syncer_last_run_failed", (("connector", "hubspot"),))] == 1
            runtime.store.close()

            runtime.store = good  # it is back; the failure is not in run history yet
            status, problems = healthz(daemon.health)
            assert status == 503
            assert "connector hubspot: its last run failed (not yet in run history)" in problems
            daemon._job("salesforce")()  # replays the spool first, then succeeds
            failed = good.runs(status="failed")
            assert len(failed) == 1 and failed[0].connectors == ("hubspot",)
            assert failed[0].error is not None and "unreachable" in failed[0].error
            assert "hunter2secret" not in failed[0].error
            status, problems = healthz(daemon.health)
            assert status == 503 and all("hubspot" in p for p in problems)

            daemon._job("hubspot")()
            assert healthz(daemon.health) == (200, [])
            samples = scrape(url)
            assert samples[("syncer_last_run_failed", (("connector", "hubspot"),))] == 0
            assert samples[("syncer_runs_total", (("connector", "hubspot"),
                                                  ("status", "succeeded")))] == 1
        finally:
            daemon.health.stop()
            if daemon.alerts is not None:
                daemon.alerts.close()


def test_a_run_that_loses_the_state_mid_way_is_spooled_counted_and_replayed(
        tmp_path: Path, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.setenv("SYNCER_SPOOL", str(tmp_path / "spool.jsonl"))
    folder = tmp_path / "state"
    loaded = write_config(tmp_path / "syncer.yaml", sandbox_config_data(
        sandboxes, f"sqlite:///{folder / 'state.db'}", monkeypatch))
    metrics = SyncMetrics()
    gone: list[bool] = []
    with Runtime(loaded) as runtime:
        store = runtime.require_store()

        once = threading.Lock()

        def database_goes_away() -> bool:  # between pages of the pulls (side by side)
            with once:
                if not gone:
                    folder.rename(tmp_path / "moved")
                    store.engine.dispose()
                    gone.append(True)
            return False

        with pytest.raises(SQLAlchemyError):
            run_sync(loaded, store, runtime.connectors, runtime.model, NOW, metrics=metrics,
                     should_stop=database_goes_away)
        spooled = RunSpool(tmp_path / "spool.jsonl").path.read_text().splitlines()
        assert len(spooled) == 1 and '"status": "failed"' in spooled[0]
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(metrics.render().decode())
                   for s in family.samples}
        for name in ("hubspot", "salesforce"):
            assert samples[("syncer_runs_total", (("connector", name),
                                                  ("status", "failed")))] == 1
            assert samples[("syncer_last_run_failed", (("connector", name),))] == 1

        (tmp_path / "moved").rename(folder)
        assert RunSpool(tmp_path / "spool.jsonl").replay(store) == 1
        [run] = store.runs()
        assert run.status == "failed" and run.finished_at is not None  # no longer "running"
        assert run.error is not None and run.error.startswith("OperationalError")
