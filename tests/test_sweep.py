"""The reconciliation sweep (issue 18, item 3): a record stamped behind the cursor, which
no incremental pull reads again, is found by the next sweep and decided; a sweep whose
call budget runs out resumes where it stopped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, inspect, select
from structlog.testing import capture_logs

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig, parse_config
from syncer.domain.config_base import ConfigError
from syncer.store import sweep as sweep_store
from syncer.store.echo import echo_windows
from syncer.store.migrations import LATEST, migrate
from syncer.store.repository import Store
from syncer.store.sweep import sweeps
from syncer.store.tables import schema_version
from tests.conftest import NOW, Sandboxes, sandbox_config_data, sync_once, write_config
from tests.sandbox_control import control
from tests.test_echo import people_cursor, vp_candidates

LATER = NOW + timedelta(hours=25)


def stored_title(loaded: LoadedConfig, connector: str, record_id: str) -> str | None:
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        (key,) = store.person_keys_of(connector, [record_id])
        records = store.load_people([key])[key][0]
    return next(p.title for p in records if p.record_id == record_id)


def sweep_mark(loaded: LoadedConfig, connector: str) -> sweep_store.SweepMark:
    with Runtime(loaded) as runtime, runtime.require_store().engine.connect() as connection:
        return sweep_store.mark(connection, connector)


def test_a_record_stamped_half_an_hour_behind_the_cursor_is_found_by_the_next_sweep(
        sandbox_config: LoadedConfig, sandboxes: Sandboxes) -> None:
    sync_once(sandbox_config)
    assert sweep_mark(sandbox_config, "hubspot").done_at == NOW  # a full pull is a pass
    contact_id, lead_id = vp_candidates(sandboxes)
    behind = people_cursor(sandbox_config, "hubspot") - timedelta(minutes=30)
    edited = control(  # as a tester drives a running sandbox: the control API
        sandboxes.hubspot, "edit", id=contact_id, field="jobtitle", value="VP Sales",  # type: ignore[arg-type]
        stamp=behind.isoformat())
    assert edited["lastmodifieddate"].startswith(behind.strftime("%Y-%m-%dT%H:%M"))
    control(sandboxes.salesforce, "edit", id=lead_id, field="Title", value="VP Sales",  # type: ignore[arg-type]
            stamp=(people_cursor(sandbox_config, "salesforce")
                   - timedelta(minutes=30)).isoformat())

    missed = sync_once(sandbox_config)  # the incremental pull cannot see them; no sweep due
    assert sum(missed.records_pulled.values()) == 0
    assert stored_title(sandbox_config, "hubspot", contact_id) != "VP Sales"

    with capture_logs() as logs:
        swept = sync_once(sandbox_config, now=LATER)  # a day on: the sweep is due
    assert swept.records_pulled["hubspot"] == 1 and swept.records_pulled["salesforce"] == 1
    done = {e["connector"]: (e["found"], e["read"]) for e in logs if e["event"] == "sweep.done"}
    assert done["hubspot"][0] == done["salesforce"][0] == 1  # of every record read
    assert done["hubspot"][1] > 1 and done["salesforce"][1] > 1
    assert stored_title(sandbox_config, "hubspot", contact_id) == "VP Sales"
    assert stored_title(sandbox_config, "salesforce", lead_id) == "VP Sales"
    with Runtime(sandbox_config) as runtime:
        store = runtime.require_store()
        (key,) = store.person_keys_of("hubspot", [contact_id])
        decision = store.decisions([key])[key]
    assert any("vp" in r.rule_id for r in decision.reasons)
    for name in ("hubspot", "salesforce"):
        mark = sweep_mark(sandbox_config, name)
        assert mark.done_at == LATER and not mark.under_way

    again = sync_once(sandbox_config, now=LATER + timedelta(hours=1))  # not due again yet
    assert sum(again.records_pulled.values()) == 0 and again.people == 0


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_sweep_out_of_budget_resumes_where_it_stopped(
        sandboxes: Sandboxes, state_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = sandbox_config_data(sandboxes, state_url, monkeypatch)
    for connector in data["connectors"]:
        connector["sweep_calls_per_run"] = 1  # one listing page per run
    loaded = write_config(tmp_path / "syncer.yaml", data)
    sync_once(loaded)
    contact = next(r for r in sandboxes.salesforce.records()
                   if str(r["Id"]).startswith("003"))
    control(sandboxes.salesforce, "edit", id=str(contact["Id"]), field="Title",  # type: ignore[arg-type]
            value="VP Sales",
            stamp=(people_cursor(loaded, "salesforce") - timedelta(minutes=30)).isoformat())

    first = sync_once(loaded, now=LATER)  # lists the Leads, then the budget is spent
    assert first.records_pulled["salesforce"] == 0
    mark = sweep_mark(loaded, "salesforce")
    assert mark.under_way and mark.position == "Contact:" and mark.started_at == LATER

    second = sync_once(loaded, now=LATER + timedelta(minutes=10))  # goes on with Contacts
    assert second.records_pulled["salesforce"] == 1
    assert stored_title(loaded, "salesforce", str(contact["Id"])) == "VP Sales"
    mark = sweep_mark(loaded, "salesforce")
    assert not mark.under_way and mark.done_at == LATER + timedelta(minutes=10)


def test_sweep_settings_are_checked() -> None:
    def connector(**extra: Any) -> dict[str, Any]:
        return {"connectors": [{"name": "hubspot", "kind": "hubspot", "sandbox": True,
                                "fields": {"score": "syncer_score"}, **extra}]}
    with pytest.raises(ConfigError, match="sweep_every_hours") as error:
        parse_config(connector(sweep_every_hours=-1, sweep_calls_per_run=0),
                     Path("syncer.yaml"))
    assert "sweep_calls_per_run" in str(error.value)
    loaded = parse_config(connector(sweep_every_hours=0), Path("syncer.yaml"))
    assert loaded.config.connectors[0].sweep_every_hours == 0
    assert loaded.config.connectors[0].sweep_calls_per_run == 50


def test_a_state_of_schema_10_migrates_to_echo_windows_and_sweeps(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    with store.engine.begin() as connection:
        echo_windows.drop(connection)
        sweeps.drop(connection)
        connection.execute(delete(schema_version))
        connection.execute(schema_version.insert(), [{"version": 10, "applied_at": NOW}])
    assert migrate(store.engine) == LATEST
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        versions = set(connection.execute(select(schema_version.c.version)).scalars())
    assert {"echo_windows", "sweeps"} <= tables
    assert 12 in versions
    store.close()
