"""/healthz and /metrics: real HTTP on 127.0.0.1, real syncs, numbers checked against the
run history in the store."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import ConnectorError
from syncer.observe.metrics import SyncMetrics
from syncer.ops.health import HealthServer
from syncer.ops.scheduler import Daemon
from syncer.run.pipeline import run_sync
from syncer.store.repository import Store
from syncer.store.runs import RunRecord
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config

CONNECTORS = ["hubspot", "salesforce"]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(url: str) -> tuple[int, Any]:
    response = requests.get(url, timeout=10)
    body = response.json() if "json" in response.headers["Content-Type"] else response.text
    return response.status_code, body


def scrape(url: str) -> Samples:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    status, text = get(f"{url}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def summed(runs: list[RunRecord], stat: str) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for run in runs:
        for name, count in run.per_connector(stat).items():
            total[name] += count
    return dict(total)


class FailingPulls:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def people(self, *_args: Any, **_kwargs: Any) -> Iterator[list[Any]]:
        raise ConnectorError("connector hubspot: HubSpot answered 401 INVALID_AUTHENTICATION")

    full_pages = people  # a full pull reads pages by position (run/pull.py)


@pytest.fixture
def served(state_url: str) -> Iterator[tuple[HealthServer, SyncMetrics, Store]]:
    metrics = SyncMetrics()
    metrics.declare(CONNECTORS)
    store = Store.open(state_url)
    server = HealthServer(lambda: store, CONNECTORS, metrics, port=0)
    server.start()
    try:
        yield server, metrics, store
    finally:
        server.stop()
        store.close()


def test_metrics_match_the_run_history_and_healthz_follows_failures(
        sandbox_config: LoadedConfig,
        served: tuple[HealthServer, SyncMetrics, Store]) -> None:
    server, metrics, store = served
    status, body = get(f"{server.url}/healthz")
    assert status == 200 and body == {"status": "ok"}  # nothing more for an anonymous probe
    assert server.last is not None and server.last.store == "ok"
    assert server.last.connectors == {"hubspot": {"last_run": None},
                                      "salesforce": {"last_run": None}}

    with Runtime(sandbox_config) as runtime:
        for only in (None, ["hubspot"]):
            run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                     runtime.model, NOW, only=only, metrics=metrics)
    runs = store.runs()
    assert len(runs) == 2
    samples = scrape(server.url)
    for stat, metric in (("records_pulled", "syncer_records_pulled_total"),
                         ("activities_pulled", "syncer_activities_pulled_total"),
                         ("records_written", "syncer_records_written_total"),
                         ("fields_written", "syncer_fields_written_total")):
        expected = summed(runs, stat)
        assert expected, stat
        for name in CONNECTORS:
            assert value(samples, metric, connector=name) == expected.get(name, 0), stat
    for name in CONNECTORS:
        by_status: dict[str, float] = defaultdict(float)
        for run in runs:
            for status_code, count in run.per_connector("api_calls_by_status").get(
                    name, {}).items():
                by_status[status_code] += count
        scraped = {dict(labels)["status"]: v for (metric, labels), v in samples.items()
                   if metric == "syncer_api_calls_total" and dict(labels)["connector"] == name}
        assert scraped == by_status and sum(scraped.values()) > 0
        assert value(samples, "syncer_dead_letters", connector=name) == 0
        assert value(samples, "syncer_api_rate_limited_total", connector=name) == 0
        assert value(samples, "syncer_last_success_timestamp_seconds", connector=name) == \
            max(r.finished_at.timestamp() for r in runs if name in r.connectors
                and r.finished_at is not None)
    assert value(samples, "syncer_runs_total", connector="hubspot", status="succeeded") == 2
    assert value(samples, "syncer_runs_total", connector="salesforce", status="succeeded") == 1
    assert value(samples, "syncer_decisions_changed_total") == \
        sum(r.total("decisions_changed") for r in runs) > 0
    assert value(samples, "syncer_run_duration_seconds_count",
                 connectors="hubspot,salesforce") == 1
    assert value(samples, "syncer_run_duration_seconds_sum", connectors="hubspot") == \
        pytest.approx(next(r.duration_seconds for r in runs if r.connectors == ("hubspot",)))
    assert value(samples, "syncer_rate_limit_headroom", connector="hubspot") == \
        runs[0].per_connector("rate_limit_headroom")["hubspot"]["remaining_min"]

    # A failed run of one connector makes the daemon unready, and says why.
    with Runtime(sandbox_config) as runtime:
        runtime.connectors["hubspot"] = FailingPulls(runtime.connectors["hubspot"])  # type: ignore[assignment]
        with pytest.raises(ConnectorError):
            run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                     runtime.model, NOW, only=["hubspot"], metrics=metrics)
    failed = store.runs(1)[0]
    status, body = get(f"{server.url}/healthz")
    assert status == 503 and body == {"status": "unavailable"}
    details = server.last.details() if server.last else {}
    assert details["connectors"]["hubspot"]["status"] == "failed"
    assert details["connectors"]["salesforce"]["status"] == "succeeded"
    assert details["problems"] == [f"connector hubspot: last run {failed.run_id} failed "
                                   f"({failed.error})"] and "401" in details["problems"][0]
    samples = scrape(server.url)
    assert value(samples, "syncer_runs_total", connector="hubspot", status="failed") == 1
    assert value(samples, "syncer_last_run_failed", connector="hubspot") == 1

    with Runtime(sandbox_config) as runtime:  # the next good run makes it ready again
        run_sync(sandbox_config, runtime.require_store(), runtime.connectors, runtime.model,
                 NOW, only=["hubspot"], metrics=metrics)
    assert get(f"{server.url}/healthz")[0] == 200
    assert value(scrape(server.url), "syncer_last_run_failed", connector="hubspot") == 0
    assert get(f"{server.url}/nothing")[0] == 404


def test_healthz_flips_when_the_sqlite_store_goes_away_and_back(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    store = Store.open(f"sqlite:///{folder / 'state.db'}")
    metrics = SyncMetrics()
    try:
        with HealthServer(lambda: store, CONNECTORS, metrics, port=0) as server:
            assert get(f"{server.url}/healthz")[0] == 200
            folder.rename(tmp_path / "moved")
            store.engine.dispose()  # pooled connections would still reach the moved file
            status, body = get(f"{server.url}/healthz")
            assert status == 503 and body == {"status": "unavailable"}
            assert server.last is not None and server.last.store == "unreachable"
            assert server.last.problems[0].startswith(
                "state database unreachable (OperationalError")
            assert get(f"{server.url}/metrics")[0] == 200  # metrics need no database
            (tmp_path / "moved").rename(folder)
            assert get(f"{server.url}/healthz")[0] == 200
    finally:
        store.close()


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)
def test_healthz_reports_an_unreachable_postgresql(state_url: str) -> None:
    good = Store.open(state_url)
    down = Store(create_engine("postgresql+psycopg://syncer:hunter2secret@127.0.0.1:1/none"))
    current = [good]
    try:
        with HealthServer(lambda: current[0], CONNECTORS, SyncMetrics(), port=0) as server:
            assert get(f"{server.url}/healthz")[0] == 200
            current[0] = down
            status, body = get(f"{server.url}/healthz")
            assert status == 503 and body == {"status": "unavailable"}  # no host, no port
            assert server.last is not None
            assert "state database unreachable" in server.last.problems[0]
            assert "hunter2secret" not in str(server.last.details())
            current[0] = good
            assert get(f"{server.url}/healthz")[0] == 200
    finally:
        good.close()
        down.close()


def test_the_daemon_serves_health_and_metrics_while_it_runs(
        sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    loaded = write_config(tmp_path / "syncer.yaml", data)
    with Runtime(loaded) as runtime:
        daemon = Daemon(runtime, first_run_delay=0, health_port=0)
        thread = threading.Thread(target=daemon.run_forever, kwargs={
            "install_signal_handlers": False})
        thread.start()
        try:
            samples: Samples = {}
            deadline = time.monotonic() + 900  # stops a hung daemon; a slow one is waited for
            while time.monotonic() < deadline:  # until both connectors have run once
                if daemon.health is not None and daemon.health.running:
                    samples = scrape(daemon.health.url)
                    if all(samples.get(("syncer_runs_total", (("connector", n),
                                                              ("status", "succeeded"))))
                           for n in CONNECTORS):
                        break
                time.sleep(0.1)
            assert daemon.health is not None
            url = daemon.health.url
            status, body = get(f"{url}/healthz")
            assert status == 200 and body == {"status": "ok"}
            assert set(daemon.health.last.connectors if daemon.health.last else ()) == \
                set(CONNECTORS)
            runs = runtime.require_store().runs()
            expected = summed(runs, "records_pulled")
            for name in CONNECTORS:
                assert value(samples, "syncer_records_pulled_total", connector=name) == \
                    expected[name] > 0
        finally:
            daemon.request_stop()
            thread.join(timeout=60)
    assert not thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=5)


def test_identity_events_and_creations_are_exported_per_connector() -> None:
    metrics = SyncMetrics()
    run = RunRecord(run_id="r1", connectors=("hubspot", "salesforce"), started_at=NOW,
                    finished_at=NOW, status="succeeded", dry_run=False, error=None,
                    stats={"identity": {"salesforce.converted": 2, "hubspot.merged": 1,
                                        "salesforce.duplicates": 3},
                           "created": {"salesforce": 5}, "linked": {"salesforce": 1},
                           "create_failed": {"hubspot": 1}})
    metrics.observe_run(run)
    text = metrics.render().decode()
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples
             if s.name in ("syncer_identity_events_total", "syncer_people_created_total")}
    assert found == {
        ("syncer_identity_events_total", (("connector", "salesforce"), ("event", "converted"))): 2,
        ("syncer_identity_events_total", (("connector", "hubspot"), ("event", "merged"))): 1,
        ("syncer_identity_events_total",
         (("connector", "salesforce"), ("event", "duplicates"))): 3,
        ("syncer_people_created_total", (("connector", "salesforce"), ("outcome", "created"))): 5,
        ("syncer_people_created_total", (("connector", "salesforce"), ("outcome", "linked"))): 1,
        ("syncer_people_created_total", (("connector", "hubspot"), ("outcome", "failed"))): 1,
    }
