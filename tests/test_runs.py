"""Run history: every run with what it pulled, changed, wrote and spent, checked against
what the sandbox CRMs themselves counted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.settings import FaultConfig
from connectors.sandbox.world import World
from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, connector_settings
from syncer.domain.connector import ConnectorError
from syncer.qualify import load_model
from syncer.run.pipeline import run_sync
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL, NOW, Sandboxes, sync_once, write_config

SECRET = "pat-na1-0f8e2c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"


def test_each_run_records_what_it_did(sandbox_config: LoadedConfig, sandboxes: Sandboxes,
                                      state_url: str, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    first = sync_once(sandbox_config)
    hubspot_calls = {str(s): sandboxes.hubspot.calls(statuses={s}) for s in (200, 207, 429)}
    salesforce_calls = Counter(str(status) for (_m, _r, status), n
                               in sandboxes.salesforce.call_counts.items() for _ in range(n))
    second = sync_once(sandbox_config)

    store = Store.open(state_url)
    try:
        runs = store.runs()
    finally:
        store.close()
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]  # newest first
    latest, earliest = runs
    for run, summary in ((earliest, first), (latest, second)):
        assert run.status == "succeeded" and run.error is None and not run.dry_run
        assert run.connectors == ("hubspot", "salesforce")
        assert run.finished_at is not None and run.finished_at >= run.started_at
        assert run.per_connector("records_pulled") == dict(summary.records_pulled)
        assert run.per_connector("fields_written") == dict(summary.fields_written)
        assert run.per_connector("failures") == {}
        assert run.total("decisions_changed") == summary.decisions_changed
        calls = run.per_connector("api_calls_by_status")
        assert {n: sum(c.values()) for n, c in calls.items()} == dict(summary.api_calls)
        assert run.per_connector("api_retries") == {"hubspot": 0, "salesforce": 0}
        assert run.per_connector("api_rate_limited") == {"hubspot": 0, "salesforce": 0}
    # The first run decided every person for the first time; the second changed nothing.
    assert earliest.total("decisions_changed") == first.people > 100
    assert latest.total("decisions_changed") == 0 and latest.total("fields_written") == 0
    # API calls by status are what the sandboxes answered.
    assert earliest.per_connector("api_calls_by_status")["hubspot"] == \
        {s: n for s, n in hubspot_calls.items() if n}
    assert earliest.per_connector("api_calls_by_status")["salesforce"] == dict(salesforce_calls)
    # The lowest headroom seen: HubSpot's 10-second window, Salesforce's daily allocation.
    headroom = latest.per_connector("rate_limit_headroom")
    assert headroom["hubspot"]["limit"] == 190 and 0 < headroom["hubspot"]["remaining_min"] < 190
    salesforce = sandboxes.salesforce
    assert headroom["salesforce"] == {"remaining_min": salesforce.daily_api_limit -
                                      salesforce.api_used, "limit": salesforce.daily_api_limit}

    capsys.readouterr()  # the syncs' own log lines
    assert main(["runs", "--state", state_url]) == 0
    out = capsys.readouterr().out
    assert out.index(second.run_id) < out.index(first.run_id)
    assert f"decisions changed {first.people}" in out and "decisions changed 0" in out
    assert "hubspot 200x" in out and "lowest rate-limit headroom hubspot:" in out
    assert main(["runs", "--json", "--limit", "1", "--state", state_url]) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["run_id"] == second.run_id and record["status"] == "succeeded"
    assert record["stats"]["records_pulled"] == dict(second.records_pulled)


class FailingPulls:
    """The real connector, except that pulling people fails the way an expired token does."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def people(self, *_args: Any, **_kwargs: Any) -> Iterator[list[Any]]:
        raise ConnectorError(f"connector hubspot: HubSpot answered 401 with token={SECRET}")

    full_pages = people  # a full pull reads pages by position (run/pull.py)


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_failed_run_is_recorded_with_its_error_and_counted(
        sandbox_config: LoadedConfig, state_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    sync_once(sandbox_config, only=["hubspot"])
    with Runtime(sandbox_config) as runtime:
        runtime.connectors["hubspot"] = FailingPulls(runtime.connectors["hubspot"])  # type: ignore[assignment]
        for _ in range(2):
            with pytest.raises(ConnectorError):
                run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                         runtime.model, NOW, only=["hubspot"])
        store = runtime.require_store()
        failed = store.runs(status="failed")
        assert len(failed) == 2
        assert all(r.error is not None and r.error.startswith("ConnectorError: ")
                   and "401" in r.error and SECRET not in r.error for r in failed)
        assert store.failure_streak("hubspot") == 2
        assert store.failure_streak("salesforce") == 0
        assert store.last_runs(["hubspot", "salesforce"])["hubspot"].run_id == failed[0].run_id
        assert "salesforce" not in store.last_runs(["hubspot", "salesforce"])
        assert len(store.runs(connector="hubspot")) == 3
        assert store.runs(connector="salesforce") == []
    capsys.readouterr()
    assert main(["runs", "--status", "failed", "--state", state_url]) == 0
    out = capsys.readouterr().out
    assert out.count("failed") >= 2 and "error: ConnectorError" in out and SECRET not in out


def test_retries_and_429s_are_counted(world: World, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Every fifth request is refused as over the limit: 429s whatever the machine's speed
    # (a rate window in seconds gives none when requests come slower than it).
    sandbox = HubSpotSandbox(world, requests_per_10s=None,
                             faults=FaultConfig(burst_every=5, burst_length=1))
    sandbox.start()
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    data["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    data["connectors"] = [c for c in data["connectors"] if c["kind"] == "hubspot"]
    data["connectors"][0].pop("sandbox")
    data["connectors"][0] |= {"base_url": sandbox.base_url,
                              "credentials": {"access_token": {"env": "TEST_HS_TOKEN"}}}
    monkeypatch.setenv("TEST_HS_TOKEN", sandbox.credentials["access_token"])
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    loaded = write_config(tmp_path / "syncer.yaml", data)
    settings = connector_settings(loaded, loaded.config.connectors[0])
    connector = HubSpotConnector(replace(settings, options={
        "retry_policy": RetryPolicy(attempts=10, initial=0.05, maximum=0.5),
        "respect_rate_limit_headers": False}))
    store = Store.open(loaded.state_url)
    try:
        summary = run_sync(loaded, store, {"hubspot": connector}, load_model(EXAMPLE_MODEL), NOW)
        run = store.runs(1)[0]
    finally:
        store.close()
        connector.close()
        sandbox.stop()
    rejected = sandbox.calls(statuses={429})
    assert rejected > 0 and run.status == "succeeded"
    assert run.per_connector("api_rate_limited") == {"hubspot": rejected}
    assert run.per_connector("api_retries") == {"hubspot": rejected}
    assert run.per_connector("api_calls_by_status") == {"hubspot": {
        str(s): sandbox.calls(statuses={s}) for s in (200, 207, 429)
        if sandbox.calls(statuses={s})}}
    assert summary.api_calls["hubspot"] == sandbox.calls()
