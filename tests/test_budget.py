"""The daily API budget: a sync stops before crossing it, says so, and resumes next day."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from syncer.cli import main
from syncer.cli.runtime import Runtime
from syncer.run.pipeline import run_sync
from tests.conftest import NOW, Sandboxes, sandbox_config_data, write_config


def hubspot_requests(sandboxes: Sandboxes) -> int:
    counts = sandboxes.hubspot.call_counts  # type: ignore[attr-defined]
    return sum(counts.values())


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_sync_never_exceeds_the_daily_budget(sandboxes: Sandboxes, state_url: str,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = sandbox_config_data(sandboxes, state_url, monkeypatch)
    data["connectors"][0]["daily_api_budget"] = 6
    loaded = write_config(tmp_path / "budget.yaml", data)
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        first = run_sync(loaded, store, runtime.connectors, runtime.model, NOW)
        after_first = hubspot_requests(sandboxes)
        again = run_sync(loaded, store, runtime.connectors, runtime.model, NOW)
        runs = {r.run_id: r for r in store.runs()}
    assert 0 < after_first <= 6
    same_day = hubspot_requests(sandboxes)
    assert same_day <= 6  # the budget holds across runs of the same day
    for summary in (first, again):
        assert runs[summary.run_id].status == "budget_exhausted"
        assert summary.error is not None
        assert "daily API budget reached" in summary.error and "resumes after" in summary.error
    with Runtime(loaded) as runtime:  # the next UTC day has a fresh allowance
        run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                 NOW + timedelta(days=1))
    assert same_day < hubspot_requests(sandboxes) <= same_day + 6


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_sync_once_says_why_it_stopped_early(sandboxes: Sandboxes, state_url: str,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A clean early stop exits 0 (the next run goes on from the cursors) and says why."""
    data = sandbox_config_data(sandboxes, state_url, monkeypatch)
    data["connectors"][0]["daily_api_budget"] = 6
    config = tmp_path / "budget.yaml"
    write_config(config, data)
    code = main(["sync", "--once", "--as-of", NOW.isoformat(), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 0
    assert "sync stopped early (budget_exhausted): " in err and "daily API budget reached" in err
