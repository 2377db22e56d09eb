"""Full Salesforce pulls through Bulk API 2.0 query jobs (issue 18, item 7): the same people
as REST query, and every job closed or aborted: read to the end, failed, stopped, closed
while polling, and left by a killed process (the next run aborts it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.retry import RetryPolicy
from connectors.salesforce.bulk import BulkQueryFailed
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, connector_settings
from syncer.domain.config_base import ConfigError
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.domain.types import Person
from syncer.run.pipeline import run_sync
from syncer.store.bulk_jobs import StoredQueryJobs
from syncer.store.repository import Store
from tests.conftest import (
    EXAMPLE_CONFIG,
    EXAMPLE_MODEL,
    Sandboxes,
    running_sandboxes,
    sandbox_config_data,
    write_config,
)

NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
WRITEBACK = ("Syncer_Stage__c", "Syncer_Score__c", "Syncer_Fit_Grade__c",
             "Syncer_Reasons__c", "OwnerId")
#: every full pull goes to Bulk 2.0; polls do not wait; small result sets (paging)
BULK = {"bulk_query_threshold": 0, "bulk_poll_seconds": 0.0, "bulk_max_records": 60}
#: safety net only: each wait returns as soon as its event is set
EVENT_TIMEOUT = 60


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=5, size=400, now=NOW)


@pytest.fixture
def sandbox(world: World) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(world) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def settings_for(sandbox: SalesforceSandbox, **options: Any) -> ConnectorSettings:
    return ConnectorSettings(
        name="sf", kind="salesforce", base_url=sandbox.base_url,
        credentials=dict(sandbox.credentials), writeback_fields=WRITEBACK,
        ca_file=sandbox.ca_file, timeout_seconds=10.0, options=options)


def connector_for(sandbox: SalesforceSandbox, store: Store | None = None,
                  **options: Any) -> SalesforceConnector:
    built = SalesforceConnector(settings_for(sandbox, **options), retry=NO_WAIT)
    if store is not None:
        built.keep_query_jobs(StoredQueryJobs(store, "sf"))
    return built


def pull(connector: SalesforceConnector, since: datetime | None = None) -> list[Person]:
    return [person for page in connector.people(since) for person in page]


def assert_all_closed(sandbox: SalesforceSandbox, store: Store | None = None) -> None:
    """The sandbox's job table: every job deleted, none left running; nothing remembered."""
    jobs = list(sandbox.bulk.jobs.values())
    assert jobs and all(job.deleted for job in jobs), [(j.id, j.state) for j in jobs]
    assert not sandbox.bulk.open_jobs()
    if store is not None:
        assert StoredQueryJobs(store, "sf").open_jobs() == []


def test_full_pull_above_threshold_reads_by_bulk_the_people_rest_reads(
        sandbox: SalesforceSandbox, store: Store) -> None:
    with connector_for(sandbox) as rest_connector:
        by_rest = pull(rest_connector)
    assert not sandbox.bulk.jobs  # 400 people: far below the default 10,000
    with connector_for(sandbox, store, **BULK) as bulk_connector:
        by_bulk = pull(bulk_connector)
    assert by_bulk == by_rest and len(by_bulk) > 100
    assert {job.object for job in sandbox.bulk.jobs.values()} == {"Lead", "Contact"}
    assert all(job.state == "JobComplete" for job in sandbox.bulk.jobs.values())
    assert_all_closed(sandbox, store)


def test_incremental_and_small_pulls_stay_on_rest_query(sandbox: SalesforceSandbox) -> None:
    with connector_for(sandbox, **BULK) as connector:
        assert pull(connector, since=NOW - timedelta(days=3650))
    with connector_for(sandbox, bulk_query_threshold=100_000) as connector:
        assert pull(connector)
    assert not sandbox.bulk.jobs


def test_result_sets_are_paged_by_the_sforce_locator(sandbox: SalesforceSandbox) -> None:
    with connector_for(sandbox, **{**BULK, "bulk_max_records": 25}) as connector:
        pages = list(connector.people())
    assert all(0 < len(page) <= 25 for page in pages)
    for job in sandbox.bulk.jobs.values():
        locators = [locator for locator, _ in job.result_sets]
        assert locators[0] == "" and len(set(locators)) == len(locators) > 1
        assert sum(size for _, size in job.result_sets) == job.info(NOW)[
            "numberRecordsProcessed"]
    assert_all_closed(sandbox)


def test_stopping_mid_pull_closes_the_job(sandbox: SalesforceSandbox, store: Store) -> None:
    with connector_for(sandbox, store, **BULK) as connector:
        pages = connector.people()
        assert next(pages)  # the first result set of the Lead job
        [job] = sandbox.bulk.jobs.values()
        assert not job.deleted and StoredQueryJobs(store, "sf").open_jobs() == [job.id]
        pages.close()  # what the pipeline's stop does: the page iterator is dropped
    assert_all_closed(sandbox, store)


def test_closing_the_connector_while_a_job_runs_aborts_it(sandbox: SalesforceSandbox,
                                                         store: Store) -> None:
    sandbox.bulk.hold()  # the job stays InProgress
    connector = connector_for(sandbox, store, **{**BULK, "bulk_poll_seconds": 0.01})
    raised: list[BaseException] = []

    def run() -> None:
        try:
            pull(connector)
        except BaseException as error:  # the test inspects it
            raised.append(error)
    thread = threading.Thread(target=run)
    thread.start()
    assert sandbox.bulk.polled.wait(EVENT_TIMEOUT)
    connector.close()  # e.g. the daemon shutting down
    thread.join(EVENT_TIMEOUT)
    assert not thread.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ConnectorError)
    [job] = sandbox.bulk.jobs.values()
    assert job.state == "Aborted"
    assert_all_closed(sandbox, store)


def test_a_failed_job_is_a_clear_error_and_is_deleted(sandbox: SalesforceSandbox,
                                                      store: Store) -> None:
    sandbox.bulk.fail_next_job("Job failed: query timed out")
    with connector_for(sandbox, store, **BULK) as connector, \
            pytest.raises(BulkQueryFailed) as failed:
        pull(connector)
    [job] = sandbox.bulk.jobs.values()
    message = str(failed.value)
    assert job.id in message and "ended Failed: Job failed: query timed out" in message
    assert "bulk_query_threshold" in message  # what the admin can do about it
    assert job.state == "Failed"
    assert_all_closed(sandbox, store)


_KILLED_RUN = """
import json, os, sys
from connectors.salesforce.connector import SalesforceConnector
from syncer.domain.connector import ConnectorSettings
from syncer.store.bulk_jobs import StoredQueryJobs
from syncer.store.repository import Store
settings = ConnectorSettings(**json.loads(os.environ["BULK_SETTINGS"]))
store = Store.open(os.environ["BULK_STATE"])
connector = SalesforceConnector(settings)
connector.keep_query_jobs(StoredQueryJobs(store, settings.name))
for page in connector.people():
    pass
"""


def test_a_job_left_by_a_killed_run_is_aborted_by_the_next_run(
        sandbox: SalesforceSandbox, store: Store, tmp_path: Path) -> None:
    sandbox.bulk.hold()  # the killed run's job is still InProgress when it dies
    settings = settings_for(sandbox, **{**BULK, "bulk_poll_seconds": 0.05})
    environment = {**os.environ, "BULK_STATE": f"sqlite:///{tmp_path / 'state.db'}",
                   "BULK_SETTINGS": json.dumps({
                       "name": settings.name, "kind": settings.kind,
                       "base_url": settings.base_url, "credentials": dict(settings.credentials),
                       "writeback_fields": list(settings.writeback_fields),
                       "ca_file": settings.ca_file, "options": dict(settings.options)})}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_RUN], env=environment,
                             cwd=Path(__file__).resolve().parents[1])
    try:
        assert sandbox.bulk.polled.wait(EVENT_TIMEOUT)  # remembered before the first poll
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(EVENT_TIMEOUT)
    [left] = sandbox.bulk.open_jobs()
    assert StoredQueryJobs(store, "sf").open_jobs() == [left.id]
    sandbox.bulk.release(keep_held=True)  # new jobs run; the dead run's still runs
    with connector_for(sandbox, store, **BULK) as connector:
        people = pull(connector)
    assert people and left.state == "Aborted"
    assert_all_closed(sandbox, store)


def test_a_remembered_job_the_org_no_longer_has_is_forgotten(sandbox: SalesforceSandbox,
                                                              store: Store) -> None:
    StoredQueryJobs(store, "sf").remember("7508c0000000999AAA")  # deleted, never forgotten
    with connector_for(sandbox, store) as connector:
        assert pull(connector)
    assert StoredQueryJobs(store, "sf").open_jobs() == []


def test_the_job_ledger_lives_in_the_state(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        ledger, other = StoredQueryJobs(store, "sf"), StoredQueryJobs(store, "sf-eu")
        ledger.remember("750A")
        ledger.remember("750B")
        ledger.remember("750A")  # remembered again: still once
        other.remember("750C")
        assert sorted(ledger.open_jobs()) == ["750A", "750B"]
        ledger.forget("750A")
        assert ledger.open_jobs() == ["750B"] and other.open_jobs() == ["750C"]
    finally:
        store.close()


# -- a whole sync both ways ---------------------------------------------------------------

def _bulk_runtime(runtime: Runtime, **options: Any) -> None:
    """Swap the Salesforce connector for one pulling by Bulk 2.0, its jobs in the state
    (as the wiring hands the runtime's store to it)."""
    old = runtime.connectors["salesforce"]
    assert isinstance(old, SalesforceConnector)
    settings = replace(old.settings, options={**old.settings.options, **BULK, **options})
    old.close()
    bulk = SalesforceConnector(settings)
    bulk.keep_query_jobs(StoredQueryJobs(runtime.require_store(), "salesforce"))
    runtime.connectors["salesforce"] = bulk


def _sync(sandboxes: Sandboxes, loaded: LoadedConfig, bulk: bool,
          **run: Any) -> dict[str, Any]:
    with Runtime(loaded) as runtime:
        if bulk:
            _bulk_runtime(runtime)
        store = runtime.require_store()
        summary = run_sync(loaded, store, runtime.connectors, runtime.model, NOW,
                           full=True, **run)
        keys = store.person_keys()
        return {"status": summary.status, "people": store.load_people(keys),
                "decisions": store.decisions(keys),
                "salesforce": _crm_state(sandboxes.salesforce.records()),
                "hubspot": _crm_state(sandboxes.hubspot.records())}


def _crm_state(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record's fields but the wall-clock stamps of the writes."""
    stamps = {"lastmodifieddate", "systemmodstamp", "updatedat", "hs_lastmodifieddate",
              "lastmodifiedbyid"}
    return sorted(({k: v for k, v in record.items() if k.lower() not in stamps}
                   for record in records), key=lambda r: json.dumps(r, sort_keys=True,
                                                                   default=str))


def test_a_sync_by_bulk_ends_where_a_sync_by_rest_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ends = {}
    for bulk in (False, True):
        with running_sandboxes(World(seed=7, size=160, now=NOW)) as sandboxes:
            data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / f'{bulk}.db'}",
                                       monkeypatch)
            loaded = write_config(tmp_path / f"syncer-{bulk}.yaml", data)
            ends[bulk] = _sync(sandboxes, loaded, bulk)
            if bulk:
                assert_all_closed(sandboxes.salesforce)  # type: ignore[arg-type]
    assert ends[True]["status"] == ends[False]["status"] == "succeeded"
    for part in ("salesforce", "hubspot", "people", "decisions"):
        assert ends[True][part] == ends[False][part], part


def test_a_sync_stopped_mid_pull_closes_its_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_sandboxes(World(seed=7, size=160, now=NOW)) as sandboxes:
        data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}",
                                   monkeypatch)
        loaded = write_config(tmp_path / "syncer.yaml", data)
        jobs = sandboxes.salesforce.bulk  # type: ignore[attr-defined]
        # stop as soon as the Bulk job exists: after the page the pull is reading
        with Runtime(loaded) as runtime:
            _bulk_runtime(runtime)
            store = runtime.require_store()
            summary = run_sync(loaded, store, runtime.connectors, runtime.model, NOW,
                               full=True, should_stop=jobs.created.is_set,
                               only=["salesforce"])
            assert summary.status == "stopped"
            assert StoredQueryJobs(store, "salesforce").open_jobs() == []
        assert_all_closed(sandboxes.salesforce)  # type: ignore[arg-type]


# -- the setting --------------------------------------------------------------------------

def _config_with(tmp_path: Path, **salesforce: Any) -> LoadedConfig:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    for connector in data["connectors"]:
        connector.update(salesforce.get(connector["kind"], {}))
    return write_config(tmp_path / "syncer.yaml", data)


def test_bulk_query_threshold_reaches_the_connector(tmp_path: Path) -> None:
    loaded = _config_with(tmp_path, salesforce={"bulk_query_threshold": 50_000})
    [salesforce] = [c for c in loaded.config.connectors if c.kind == "salesforce"]
    settings = connector_settings(loaded, salesforce, None)
    assert settings.options["bulk_query_threshold"] == 50_000
    [hubspot] = [c for c in loaded.config.connectors if c.kind == "hubspot"]
    assert "bulk_query_threshold" not in connector_settings(loaded, hubspot, None).options


@pytest.mark.parametrize("kind, value, message", [
    ("salesforce", -1, "-1 is not a usable record count. Fix: from 0 to 1000000000"),
    ("salesforce", "many", "bulk_query_threshold"),
    ("hubspot", 5000, "`bulk_query_threshold` is a Salesforce setting"),
])
def test_a_bad_bulk_query_threshold_is_a_clear_error(tmp_path: Path, kind: str, value: Any,
                                                     message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _config_with(tmp_path, **{kind: {"bulk_query_threshold": value}})
    assert message in str(refused.value)


def test_the_runtime_hands_the_state_to_the_salesforce_connector(
        sandbox_config: LoadedConfig) -> None:
    """The wiring (syncer/cli/runtime.py) gives the connector the state's job ledger, so a
    job a SIGKILLed process left open is found and aborted by the next run."""
    with Runtime(sandbox_config) as runtime:
        ledger = runtime.connectors["salesforce"]._ledger  # type: ignore[attr-defined]
        assert isinstance(ledger, StoredQueryJobs)
        assert ledger.store is runtime.store and ledger.connector == "salesforce"
        ledger.remember("750TEST")
        assert StoredQueryJobs(runtime.require_store(), "salesforce").open_jobs() == ["750TEST"]
